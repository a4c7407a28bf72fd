"""kube-scheduler's extender wire format (``k8s.io/kube-scheduler/extender/v1``), parsed and rendered.

The envelope types carry no JSON tags, so their keys are the Go field names: ``ExtenderArgs{Pod,
Nodes, NodeNames}``, ``ExtenderFilterResult{Nodes, NodeNames, FailedNodes, FailedAndUnresolvableNodes,
Error}``, and prioritize answers a bare ``[{"Host": …, "Score": <int>}]``. Go decodes keys
case-insensitively, so ``nodenames`` is accepted like ``NodeNames``; unset fields arrive as ``null``.
With ``nodeCacheCapable: true`` only ``NodeNames`` is sent; with ``false`` a full ``v1.NodeList`` comes
in ``Nodes`` and filter must answer with full nodes too (we echo the objects we were given).

Neighbours: ``app`` calls :func:`parse_args` and the renderers; ``objects`` reads the Pod. Every bad
body raises ``WireError`` with an HTTP status and a reason naming the field, never anything else
(fuzz-tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from lepton_core.compiled import HAVE_NUMBA, jit
from lepton_core.kube.fields import json_kind
from lepton_core.kube.objects import ObjectError, PodInfo, get, read_pod
from lepton_extender.names import NameResolver, Resolved, plain_names, raw_array


class WireError(Exception):
    """A request the extender cannot serve: HTTP ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ExtenderArgs:
    """A parsed ``ExtenderArgs``: the Pod and the candidates, whichever way they came.

    In the plain shape kube-scheduler sends (``names_key`` set) the candidates' names are not decoded
    into Python strings unless something asks for :attr:`names`: the snapshot maps the raw bytes to
    positions, and answers are assembled from pre-encoded rows.
    """

    __slots__ = ("_names", "count", "names_key", "node_names_given", "nodes", "pod", "resolved")

    def __init__(
        self,
        pod: PodInfo,
        *,
        names: list[str] | None = None,
        nodes: list[dict[str, Any]] | None = None,
        node_names_given: bool = True,
        names_key: bytes | None = None,
        count: int | None = None,
        resolved: Resolved | None = None,
    ) -> None:
        self.pod = pod
        self.nodes = nodes
        """``Nodes.items`` (nodeCacheCapable: false), or None."""
        self.node_names_given = node_names_given
        """``NodeNames`` was given (nodeCacheCapable: true)."""
        self.names_key = names_key
        """The raw body from the ``"NodeNames":[`` of its ``NodeNames`` key to the end, when the array is in
        the plain shape (``names.plain_names``): equal keys mean equal ``NodeNames``, so the snapshot reads
        positions from these bytes and caches them by it. None otherwise."""
        self._names = names
        self.count = len(names) if names is not None else int(count or 0)
        """How many candidates the request names."""
        self.resolved = resolved
        """The candidates' snapshot positions, when the parse resolved them (``resolve``)."""

    @property
    def names(self) -> list[str]:
        """The candidates' names in request order (decoded from ``names_key`` on first use)."""
        if self._names is None:
            key = self.names_key
            self._names = [] if key is None else list(orjson.loads(raw_array(key)))
        return self._names

    @property
    def node_names(self) -> list[str] | None:
        """``NodeNames`` (nodeCacheCapable: true), or None."""
        return self.names if self.node_names_given else None


class PodMemo:
    """The last request's Pod, by the raw bytes it was read from: kube-scheduler sends the same Pod to
    filter and then to prioritize (reading it again would cost as much as the rest of the parse). Recent
    candidate lists are remembered by the snapshot's resolver (``ClusterSnapshot.resolve_names``)."""

    __slots__ = ("key", "pod")

    def __init__(self) -> None:
        self.key = b""
        self.pod: PodInfo | None = None


def _node_names(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise WireError(400, f"NodeNames: expected an array of node names or null, got {json_kind(raw)}")
    if set(map(type, raw)) <= {str}:  # the common case, checked without a Python-level loop
        return raw
    for i, n in enumerate(raw):
        if not isinstance(n, str):
            raise WireError(400, f"NodeNames[{i}]: expected a string, got {json_kind(n)}")
    return raw


def _node_list(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if not isinstance(raw, dict):
        raise WireError(400, f"Nodes: expected a v1.NodeList object or null, got {json_kind(raw)}")
    items = get(raw, "items")
    if items is None:
        return [], []
    if not isinstance(items, list):
        raise WireError(400, f"Nodes.items: expected an array, got {json_kind(items)}")
    names: list[str] = []
    for i, node in enumerate(items):
        if not isinstance(node, dict):
            raise WireError(400, f"Nodes.items[{i}]: expected a v1.Node object, got {json_kind(node)}")
        meta = get(node, "metadata")
        name = get(meta, "name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise WireError(400, f"Nodes.items[{i}].metadata.name: expected a node name")
        names.append(name)
    return items, names


def parse_args(body: bytes, memo: PodMemo | None = None, resolve: NameResolver | None = None) -> ExtenderArgs:
    """Parse an ``ExtenderArgs`` body; raise ``WireError`` (400) naming the problem otherwise.

    The plain shape kube-scheduler sends (``…,"NodeNames":["a",…]}``, see ``names.plain_names``) is read
    in two parts: the envelope up to ``NodeNames`` by orjson, closed where that key began, and the names
    by the compiled scanner, which has already proved them valid JSON strings; the body is valid JSON
    exactly when that envelope is, so both parts answer what one parse of the whole body would. ``memo``
    remembers the last Pod by its bytes. ``resolve`` (the snapshot's) maps
    the names to positions in the same pass that proves them plain (``ExtenderArgs.resolved``). Any
    other shape is parsed whole.
    """
    if not body:
        raise WireError(400, "empty body: expected ExtenderArgs JSON")
    plain = plain_names(body, resolve)
    if plain is not None:
        envelope = body[: plain.at - 1]
        if memo is not None and memo.pod is not None and memo.key == envelope:
            # The envelope this Pod was read from, byte for byte: the same answer without parsing it.
            return ExtenderArgs(memo.pod, names_key=plain.key, count=plain.length, resolved=plain.resolved)
        if envelope.rstrip() != b"{":  # "{,"NodeNames"…" is not JSON; the whole parse says why
            try:
                doc = orjson.loads(envelope + b"}")
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict) and get(doc, "Nodes") is None:
                pod = _pod(doc)
                if memo is not None:
                    memo.key, memo.pod = envelope, pod
                return ExtenderArgs(pod, names_key=plain.key, count=plain.length, resolved=plain.resolved)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WireError(400, f"body: expected an ExtenderArgs object, got {json_kind(doc)}")
    pod = _pod(doc)
    names_raw = get(doc, "NodeNames")
    nodes_raw = get(doc, "Nodes")
    node_names = None if names_raw is None else _node_names(names_raw)
    nodes: list[dict[str, Any]] | None = None
    names_from_nodes: list[str] = []
    if nodes_raw is not None:
        nodes, names_from_nodes = _node_list(nodes_raw)
    if node_names is None and nodes is None:
        raise WireError(400, "NodeNames and Nodes are both null: no candidate nodes to filter or score")
    return ExtenderArgs(
        pod,
        names=node_names if node_names is not None else names_from_nodes,
        nodes=nodes,
        node_names_given=node_names is not None,
    )


def _pod(doc: Mapping[str, Any]) -> PodInfo:
    pod_raw = get(doc, "Pod")
    if pod_raw is None:
        raise WireError(400, "Pod: missing (null)")
    try:
        return read_pod(pod_raw)
    except ObjectError as exc:
        raise WireError(400, str(exc)) from None


class PriorityTable:
    """Pre-encoded ``HostPriorityList`` entries for every node of the snapshot, built once per rebuild.

    Each node's entry head ``{"Host":"<name>","Score":`` is kept in a fixed-width row (the longest head,
    rounded up to 8 bytes) with its length; an answer is one compiled pass copying the candidates' rows
    (a fixed-length copy with no array view per candidate; the next entry overwrites the padding) and
    writing their scores (``10`` or one digit) and closing braces — no Python object per candidate.
    Without numba the heads are joined in Python.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._heads = [b'{"Host":' + orjson.dumps(n) + b',"Score":' for n in names]
        self._longest = max(map(len, self._heads), default=0)
        width = max(8, -(-self._longest // 8) * 8)
        self._rows = np.zeros((len(self._heads), width), dtype=np.uint8)
        for i, h in enumerate(self._heads):
            self._rows[i, : len(h)] = np.frombuffer(h, dtype=np.uint8)
        self._lengths = np.array([len(h) for h in self._heads], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._heads)

    def render(self, nodes: NDArray[np.intp], scores: NDArray[np.int64]) -> bytes | None:
        """The answer for the snapshot's ``nodes`` (in request order) with ``scores``; None when a score is
        not an integer 0–10 (the caller then encodes whatever it has)."""
        if HAVE_NUMBA:
            # Room for every entry (head, two digits, "}", ",") and one row's padding past the last.
            out = np.empty(nodes.size * (self._longest + 4) + self._rows.shape[1] + 2, dtype=np.uint8)
            size = _render(self._rows, self._lengths, nodes, scores, out)
            return None if size < 0 else out[:size].tobytes()
        values = scores.tolist()
        if any(not 0 <= s <= 10 for s in values):
            return None
        heads = self._heads
        return b"[" + b",".join(heads[i] + b"%d}" % s for i, s in zip(nodes.tolist(), values, strict=True)) + b"]"


@jit
def _render(  # pragma: no cover - compiled; tested through the HTTP answers and against orjson
    rows: NDArray[np.uint8],
    lengths: NDArray[np.int64],
    nodes: NDArray[np.intp],
    scores: NDArray[np.int64],
    out: NDArray[np.uint8],
) -> int:
    pos = 0
    out[pos] = 91  # "["
    pos += 1
    for k in range(nodes.size):
        s = scores[k]
        if s < 0 or s > 10:
            return -1
        if k:
            out[pos] = 44  # ","
            pos += 1
        node = nodes[k]
        for t in range(rows.shape[1]):  # the whole row: a fixed-length copy; the padding is overwritten
            out[pos + t] = rows[node, t]
        pos += lengths[node]
        if s == 10:
            out[pos] = 49
            out[pos + 1] = 48
            pos += 2
        else:
            out[pos] = 48 + s
            pos += 1
        out[pos] = 125  # "}"
        pos += 1
    out[pos] = 93  # "]"
    return pos + 1


def render_priorities(
    args: ExtenderArgs,
    scores: NDArray[np.int64],
    table: PriorityTable | None = None,
    nodes: NDArray[np.intp] | None = None,
) -> bytes:
    """``HostPriorityList``: a bare array, integer scores 0-10, in request order.

    With ``table`` and the candidates' snapshot positions ``nodes`` (every candidate known) the answer
    is assembled from pre-encoded entries (``PriorityTable``); otherwise each entry is encoded here.
    """
    if table is not None and nodes is not None:
        body = table.render(nodes, scores)
        if body is not None:
            return body
    return orjson.dumps([{"Host": n, "Score": s} for n, s in zip(args.names, scores.tolist(), strict=True)])


_ALL_PASSED_TAIL = b',"FailedNodes":{},"FailedAndUnresolvableNodes":null,"Error":""}'


def render_filter(args: ExtenderArgs, passed: Sequence[int], failed: Mapping[str, str], error: str = "") -> bytes:
    """``ExtenderFilterResult`` answering in the mode(s) the request used; ``passed`` indexes ``args.names``."""
    if args.nodes is None and args.names_key is not None and not failed and not error and len(passed) == args.count:
        # Every node passed: echo the request's own NodeNames bytes rather than encoding them again.
        return b'{"Nodes":null,"NodeNames":' + raw_array(args.names_key) + _ALL_PASSED_TAIL
    node_names = None
    nodes = None
    if args.node_names is not None:
        all_names = args.node_names
        node_names = [all_names[i] for i in passed]
    if args.nodes is not None:
        if not args.node_names_given:
            nodes = {"metadata": {}, "items": [args.nodes[i] for i in passed]}
        else:
            # Both lists given (not something kube-scheduler does): keep the nodes whose names passed.
            keep = set(node_names or ())
            nodes = {"metadata": {}, "items": [n for n in args.nodes if get(get(n, "metadata"), "name") in keep]}
    return orjson.dumps(
        {
            "Nodes": nodes,
            "NodeNames": node_names,
            "FailedNodes": dict(failed),
            "FailedAndUnresolvableNodes": None,
            "Error": error,
        }
    )


def render_filter_error(reason: str) -> bytes:
    """A filter answer that fails the scheduling attempt with ``reason`` (sent with a 4xx status)."""
    return orjson.dumps(
        {"Nodes": None, "NodeNames": None, "FailedNodes": None, "FailedAndUnresolvableNodes": None, "Error": reason}
    )


def render_error(reason: str) -> bytes:
    """Prioritize has no error field (the scheduler ignores failed prioritize calls): a plain object."""
    return orjson.dumps({"Error": reason})
