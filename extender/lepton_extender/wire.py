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
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from lepton_core.kube.objects import ObjectError, PodInfo, get, read_pod
from lepton_extender.names import raw_array


class WireError(Exception):
    """A request the extender cannot serve: HTTP ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ExtenderArgs:
    pod: PodInfo
    node_names: list[str] | None
    """``NodeNames`` (nodeCacheCapable: true), or None."""
    nodes: list[dict[str, Any]] | None
    """``Nodes.items`` (nodeCacheCapable: false), or None."""
    names: list[str]
    """The candidates' names in request order, whichever way they came."""
    names_key: bytes | None = None
    """The raw body from the ``"NodeNames":[`` of its ``NodeNames`` key to the end: equal keys mean equal
    ``NodeNames``, so the snapshot can cache name lookups by it. kube-scheduler encodes ``NodeNames``
    last; the key is the *last* occurrence of those bytes, and a JSON string cannot contain them (its
    quotes would be escaped), so only an object key of that name after the real one — in no Pod or Node
    — could mislead it. None when the key is spelled otherwise (another casing, whitespace)."""


def _node_names(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise WireError(400, f"NodeNames: expected an array of node names or null, got {_kind(raw)}")
    if set(map(type, raw)) <= {str}:  # the common case, checked without a Python-level loop
        return raw
    for i, n in enumerate(raw):
        if not isinstance(n, str):
            raise WireError(400, f"NodeNames[{i}]: expected a string, got {_kind(n)}")
    return raw


def _node_list(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if not isinstance(raw, dict):
        raise WireError(400, f"Nodes: expected a v1.NodeList object or null, got {_kind(raw)}")
    items = get(raw, "items")
    if items is None:
        return [], []
    if not isinstance(items, list):
        raise WireError(400, f"Nodes.items: expected an array, got {_kind(items)}")
    names: list[str] = []
    for i, node in enumerate(items):
        if not isinstance(node, dict):
            raise WireError(400, f"Nodes.items[{i}]: expected a v1.Node object, got {_kind(node)}")
        meta = get(node, "metadata")
        name = get(meta, "name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise WireError(400, f"Nodes.items[{i}].metadata.name: expected a node name")
        names.append(name)
    return items, names


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def parse_args(body: bytes) -> ExtenderArgs:
    """Parse an ``ExtenderArgs`` body; raise ``WireError`` (400) naming the problem otherwise."""
    if not body:
        raise WireError(400, "empty body: expected ExtenderArgs JSON")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WireError(400, f"body: expected an ExtenderArgs object, got {_kind(doc)}")
    pod_raw = get(doc, "Pod")
    if pod_raw is None:
        raise WireError(400, "Pod: missing (null)")
    try:
        pod = read_pod(pod_raw)
    except ObjectError as exc:
        raise WireError(400, str(exc)) from None
    names_raw = get(doc, "NodeNames")
    nodes_raw = get(doc, "Nodes")
    node_names = None if names_raw is None else _node_names(names_raw)
    nodes: list[dict[str, Any]] | None = None
    names_from_nodes: list[str] = []
    if nodes_raw is not None:
        nodes, names_from_nodes = _node_list(nodes_raw)
    if node_names is None and nodes is None:
        raise WireError(400, "NodeNames and Nodes are both null: no candidate nodes to filter or score")
    key = None
    if node_names is not None and "NodeNames" in doc:
        at = body.rfind(b'"NodeNames":[')
        key = body[at:] if at >= 0 else None
    return ExtenderArgs(
        pod=pod,
        node_names=node_names,
        nodes=nodes,
        names=node_names if node_names is not None else names_from_nodes,
        names_key=key,
    )


class PriorityTable:
    """Pre-encoded ``HostPriorityList`` entries for every node of the snapshot, built once per rebuild.

    Each node's entry ``{"Host":"<name>","Score":NN},`` is stored right-aligned in a fixed-width row of
    bytes, padded on the left with spaces (JSON whitespace, allowed before any value); the score sits in
    the last four columns as two characters (``" 7"`` or ``"10"``). An answer is then a few numpy calls
    whatever the candidate count: gather the candidates' rows, write their scores, drop the padding
    every row has, and join. Go's ``encoding/json`` (kube-scheduler) reads it as any other array.
    """

    _DIGITS = np.frombuffer(b"".join(f"{s:>2}".encode() for s in range(11)), dtype=np.uint8).reshape(11, 2)

    def __init__(self, names: Sequence[str]) -> None:
        heads = [b'{"Host":' + orjson.dumps(n) + b',"Score":' for n in names]
        self.lengths = np.array([len(h) + 4 for h in heads], dtype=np.intp)
        width = int(self.lengths.max()) if heads else 4
        table = np.full((len(heads), width), ord(" "), dtype=np.uint8)
        for i, h in enumerate(heads):
            table[i, width - len(h) - 4 : width - 4] = np.frombuffer(h, dtype=np.uint8)
        table[:, -2] = ord("}")
        table[:, -1] = ord(",")
        self.table = table
        self.width = width

    def __len__(self) -> int:
        return int(self.table.shape[0])

    def render(self, nodes: NDArray[np.intp], scores: NDArray[np.int64]) -> bytes:
        """The answer for the snapshot's ``nodes`` (in request order) with ``scores`` (integers 0–10)."""
        if not nodes.size:
            return b"[]"
        rows = self.table.take(nodes, axis=0)
        w = self.width
        rows[:, w - 4 : w - 2] = self._DIGITS.take(scores, axis=0)
        start = w - int(self.lengths.take(nodes).max())
        body = rows[:, start:].tobytes()
        return b"[" + body[:-1] + b"]"


def render_priorities(
    names: Sequence[str],
    scores: NDArray[np.int64],
    table: PriorityTable | None = None,
    nodes: NDArray[np.intp] | None = None,
) -> bytes:
    """``HostPriorityList``: a bare array, integer scores 0-10, in request order.

    With ``table`` and the candidates' snapshot positions ``nodes`` (every candidate known) the answer
    is assembled from pre-encoded entries (``PriorityTable``); otherwise each entry is encoded here.
    """
    if table is not None and nodes is not None and scores.size and scores.min() >= 0 and scores.max() <= 10:
        return table.render(nodes, scores)
    return orjson.dumps([{"Host": n, "Score": s} for n, s in zip(names, scores.tolist(), strict=True)])


_ALL_PASSED_TAIL = b',"FailedNodes":{},"FailedAndUnresolvableNodes":null,"Error":""}'


def render_filter(args: ExtenderArgs, passed: Sequence[int], failed: Mapping[str, str], error: str = "") -> bytes:
    """``ExtenderFilterResult`` answering in the mode(s) the request used; ``passed`` indexes ``args.names``."""
    if args.nodes is None and not failed and not error and len(passed) == len(args.names):
        # Every node passed: echo the request's own NodeNames bytes rather than encoding them again.
        raw = raw_array(args.names_key, len(args.names))
        if raw is not None:
            return b'{"Nodes":null,"NodeNames":' + raw + _ALL_PASSED_TAIL
    node_names = None
    nodes = None
    if args.node_names is not None:
        node_names = [args.node_names[i] for i in passed]
    if args.nodes is not None:
        if args.node_names is None:
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
