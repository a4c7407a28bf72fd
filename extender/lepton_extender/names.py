"""Node names → snapshot positions, read straight from the request's raw ``NodeNames`` bytes.

Neighbours: ``wire`` finds and validates the raw array (:func:`plain_names`) and keeps its bytes
(``ExtenderArgs.names_key``); ``snapshot`` builds a :class:`NameTable` per rebuild and calls
:meth:`NameTable.lookup` for each request. Why: decoding 500 names into Python strings, checking their
types and mapping each through a dict was the extender's largest cost after aiohttp's own (~0.2 ms per
request on the test machine, more than scoring). Compiled with numba, one pass over the bytes hashes
each name (FNV-1a), finds it in an open-addressing table and confirms it byte by byte: exact.

kube-scheduler sends its candidates in the same order again and again (its node list walked from a
rotating start), so the table also remembers, per node, which node followed it in the last request
(``successor``): the next name is first compared with that node's bytes, next to it in memory, and
only a miss probes the hash table. A prediction is only ever confirmed byte by byte, never trusted.

Only the plain shape kube-scheduler sends is read this way — ``…,"NodeNames":["a","b",…]}`` as the last
key, no whitespace inside the array, names of printable ASCII without escapes; anything else (and a
machine without numba) is left to orjson and a dict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from lepton_core.compiled import HAVE_NUMBA
from lepton_core.compiled import jit as _jit

__all__ = [
    "HAVE_NUMBA",
    "PREFIX",
    "LearnedOrder",
    "NameResolver",
    "NameTable",
    "PlainNames",
    "Resolved",
    "plain_names",
    "raw_array",
    "warm_up",
]

PREFIX = b'"NodeNames":['
"""How kube-scheduler's encoder (Go ``encoding/json``, compact) introduces the candidates' names."""
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_START = len(PREFIX) - 1
"""Where a key's array opens (its ``[``)."""
# The compiled reader's table arguments when it only proves the shape and counts (resolve=False).
_NO_TABLE = np.full(2, -1, dtype=np.int64)
_NO_BLOB = np.zeros(0, dtype=np.uint8)
_NO_OFFSETS = np.zeros(1, dtype=np.int64)
_NO_LINKS = np.full(1, -1, dtype=np.int64)
_NO_OUT = np.zeros(0, dtype=np.intp)


class Resolved(NamedTuple):
    """The candidates' positions in the snapshot, as read from their raw names."""

    positions: NDArray[np.intp]
    """One per name, in request order; -1 for a name the snapshot does not know."""
    unknown: int
    """How many of them are -1 (counted in the same pass, so callers need no scan of their own)."""


class PlainNames(NamedTuple):
    """Where the plain ``NodeNames`` array sits in a request body."""

    at: int
    """Offset of ``"NodeNames":[`` (the envelope's last key)."""
    length: int
    """How many names the array holds."""
    key: bytes
    """The body from ``at`` to its end (``ExtenderArgs.names_key``)."""
    resolved: Resolved | None = None
    """The names' positions in the snapshot, when a resolver was given."""


NameResolver = Callable[[bytes], "Resolved | None"]
"""A plain-shape key (``PlainNames.key``) -> its names' positions, or None when the bytes are not the plain
shape after all (``ClusterSnapshot.resolve_names``; ``NameTable.resolve``)."""


class LearnedOrder(NamedTuple):
    """The candidate order requests use (``NameTable.learned_order``)."""

    order: list[int]
    """Every node's position once, in that order."""
    coverage: float
    """Fraction of nodes whose successor has been seen."""
    in_place: float
    """Fraction of those whose successor already sits right after them in the arrays."""


def plain_names(body: bytes, resolve: NameResolver | None = None) -> PlainNames | None:
    """The ``NodeNames`` array of ``body`` when it is in the plain shape: the envelope's last key, right
    after a comma, an array of printable-ASCII strings without escapes (so valid JSON by construction),
    then ``}`` and only whitespace. None otherwise (or without numba): parse the whole body then.

    Why the last occurrence of ``"NodeNames":[`` is the envelope's key when the tail checks pass: those
    bytes cannot lie inside a JSON string (a quote inside a string is escaped, and a string's closing
    quote cannot be followed by ``N``), so they open an object key; an array followed by ``}`` and the end
    of the body closes the outermost object, so the key is the envelope's.

    ``resolve`` (the snapshot's ``ClusterSnapshot.resolve_names``, which also remembers recent lists):
    proves the shape and maps the names to positions in the same pass over the bytes; the positions come
    back in ``PlainNames.resolved``. Without it the pass only proves the shape and counts the names.
    """
    at = body.rfind(PREFIX)
    if not HAVE_NUMBA or at <= 0 or body[at - 1] != 0x2C:  # ","
        return None
    key = body[at:]
    if resolve is not None:
        resolved = resolve(key)
        return None if resolved is None else PlainNames(at, resolved.positions.size, key, resolved)
    count = _read_names(
        np.frombuffer(key, dtype=np.uint8), _START, _NO_TABLE, _NO_BLOB, _NO_OFFSETS, _NO_LINKS, _NO_OUT, False
    )
    return None if count < 0 else PlainNames(at, count, key)


def raw_array(key: bytes) -> bytes:
    """The ``NodeNames`` array's own bytes (``["a","b",…]``) of a plain-shape ``key``
    (``ExtenderArgs.names_key``): what filter echoes when every node passes, instead of encoding 500
    names again."""
    return key[len(PREFIX) - 1 : key.rindex(b"]") + 1]


class NameTable:
    """The inventory's names as one byte blob with offsets, an open-addressing table (linear probing, at
    most two-thirds full) from each name's hash to its position, and each node's last-seen successor."""

    def __init__(self, names: Sequence[str]) -> None:
        encoded = [n.encode() for n in names]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum([len(e) for e in encoded])
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, dtype=np.uint8)
        size = 1 << max(4, (len(encoded) + len(encoded) // 2).bit_length())
        # One int64 pair per slot: (hash, node), so a probe touches one cache line, not two.
        self.table = np.zeros(2 * size, dtype=np.int64)
        self.table[1::2] = -1
        mask = size - 1
        for i, e in enumerate(encoded):
            h = _fnv1a(e)
            slot = h & mask
            while self.table[2 * slot + 1] >= 0:
                slot = (slot + 1) & mask
            self.table[2 * slot] = np.uint64(h).view(np.int64)
            self.table[2 * slot + 1] = i
        self.successor = np.full(len(encoded) + 1, -1, dtype=np.int64)
        """Node → the node that followed it in the last request (the last slot: the first node)."""

    def learned_order(self) -> LearnedOrder | None:
        """The node order requests have been using, as positions: every node once, the learned chains
        first, then the nodes never seen in place. None before anything was learned."""
        succ = self.successor
        nodes = succ.size - 1
        links = succ[:nodes]
        learned = links >= 0
        count = int(np.count_nonzero(learned))
        if not count:
            return None
        in_place = float(np.count_nonzero(links[learned] == np.flatnonzero(learned) + 1)) / count
        has_pred = np.zeros(nodes, dtype=bool)
        has_pred[links[learned]] = True
        seen = np.zeros(nodes, dtype=bool)
        order: list[int] = []
        # Chains from their heads (nodes no request listed after another), then what is left of cycles
        # (kube-scheduler's rotation wraps around the node list), each followed until it ends or meets
        # a node already placed.
        for start in np.flatnonzero(learned & ~has_pred).tolist() + np.flatnonzero(learned).tolist():
            node = start
            while node >= 0 and not seen[node]:
                seen[node] = True
                order.append(node)
                node = int(succ[node])
        order += np.flatnonzero(~seen).tolist()
        return LearnedOrder(order, count / nodes, in_place)

    def resolve(self, key: bytes) -> Resolved | None:
        """Positions of the names of a plain-shape ``key`` (``PlainNames.key``), -1 for unknown names, read
        in the same pass that proves the shape (see ``plain_names``); None when the bytes are not that
        shape after all (or numba is missing)."""
        if not HAVE_NUMBA or not key.startswith(PREFIX):
            return None
        body = np.frombuffer(key, dtype=np.uint8)
        # At most one name per 3 bytes ("",) after the key's "[", and one slot more for the count of
        # unknown names: the output never overflows.
        out = np.empty((body.size - _START) // 3 + 2, dtype=np.intp)
        count = _read_names(body, _START, self.table, self.blob, self.offsets, self.successor, out, True)
        return None if count < 0 else Resolved(out[:count], int(out[count]))


def warm_up() -> None:
    """Compile (or load from numba's cache) the readers now: the first call compiles for about a second,
    which must not happen inside a request kube-scheduler times out after 5 s (``snapshot.rebuild`` calls
    this before ``/readyz`` answers)."""
    body = b'{"Pod":{},"NodeNames":["a"]}'
    plain_names(body)
    plain_names(body, resolve=NameTable(["a"]).resolve)


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@_jit
def _same(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    blob: NDArray[np.uint8], offsets: NDArray[np.int64], node: int, body: NDArray[np.uint8], first: int, length: int
) -> bool:  # pragma: no cover - compiled
    """Node ``node``'s name is ``body[first:first + length]``."""
    a = offsets[node]
    if offsets[node + 1] - a != length:
        return False
    for t in range(length):  # noqa: SIM110 - compiled: no generators in numba
        if blob[a + t] != body[first + t]:
            return False
    return True


@_jit
def _find(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    body: NDArray[np.uint8],
    first: int,
    length: int,
    prev: int,
    table: NDArray[np.int64],
    blob: NDArray[np.uint8],
    offsets: NDArray[np.int64],
    successor: NDArray[np.int64],
) -> int:  # pragma: no cover - compiled
    """The position of the name ``body[first:first + length]`` (-1: unknown) by the hash table (FNV-1a,
    linear probing, confirmed byte by byte), when the node before it, ``prev``, was not followed by its
    learned successor this time (``_read_names`` checks that first): the successor is updated."""
    h = _FNV_OFFSET
    for t in range(first, first + length):
        h = (h ^ np.uint64(body[t])) * _FNV_PRIME
    # Probe from the hash's slot until an empty one (int64 throughout: numba mixes uint64 and int64 into
    # float); the table stores the same 64 bits as int64.
    mask = np.int64(table.size // 2 - 1)
    slot = np.int64(h & np.uint64(mask))
    hashed = np.int64(h)
    found = -1
    while table[2 * slot + 1] >= 0:
        node = table[2 * slot + 1]
        if table[2 * slot] == hashed and _same(blob, offsets, node, body, first, length):
            found = node
            break
        slot = (slot + 1) & mask
    if prev >= 0:
        successor[prev] = found
    return found


@_jit
def _read_names(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    body: NDArray[np.uint8],
    start: int,
    table: NDArray[np.int64],
    blob: NDArray[np.uint8],
    offsets: NDArray[np.int64],
    successor: NDArray[np.int64],
    out: NDArray[np.intp],
    resolve: bool,
) -> int:  # pragma: no cover - compiled; tested through plain_names and NameTable against the dict
    """One pass over the array opening at ``body[start]`` (its ``[``): how many names it holds when it is
    plain (see ``plain_names``) and followed by ``}`` and whitespace only, else -1. With ``resolve``,
    each name's position (-1: unknown) goes to ``out`` on the way (``_find``), and how many were unknown
    to the slot after the last name's."""
    size = body.size
    pos = start + 1
    count = 0
    unknown = 0
    prev = offsets.size - 1  # successor[nodes]: the node that came first last time
    if pos < size and body[pos] == 93:  # "]": empty array
        pos += 1
    else:
        while True:
            if pos >= size or body[pos] != 34:  # opening quote
                return -1
            pos += 1
            first = pos
            while pos < size and body[pos] != 34:
                c = body[pos]
                if c < 32 or c > 126 or c == 92:  # control, non-ASCII or an escape: not plain
                    return -1
                pos += 1
            if pos >= size:
                return -1
            length = pos - first
            pos += 1  # closing quote
            if resolve:
                if count + 1 >= out.size:
                    return -1
                # The node that followed the previous one last time, confirmed byte by byte (written out
                # here: numba counts a reference for each array passed to a call, and per name that cost
                # more than the comparison); the hash table only when it is not the one.
                guess = successor[prev] if prev >= 0 else -1
                if guess >= 0:
                    at = offsets[guess]
                    if offsets[guess + 1] - at == length:
                        for t in range(length):
                            if blob[at + t] != body[first + t]:
                                guess = -1
                                break
                    else:
                        guess = -1
                prev = guess if guess >= 0 else _find(body, first, length, prev, table, blob, offsets, successor)
                out[count] = prev
                if prev < 0:
                    unknown += 1
            count += 1
            if pos < size and body[pos] == 44:  # ","
                pos += 1
                continue
            if pos < size and body[pos] == 93:  # "]"
                pos += 1
                break
            return -1
    if pos >= size or body[pos] != 125:  # "}"
        return -1
    pos += 1
    while pos < size:
        c = body[pos]
        if c != 32 and c != 9 and c != 10 and c != 13:  # noqa: PLR1714 - compiled: no set literals
            return -1
        pos += 1
    if resolve:
        out[count] = unknown
    return count
