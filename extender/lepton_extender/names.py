"""Node names → snapshot positions, read straight from the request's raw ``NodeNames`` bytes.

Neighbours: ``snapshot`` builds a :class:`NameTable` per rebuild and calls :meth:`NameTable.lookup` for
each request; ``wire`` hands over the raw bytes (``ExtenderArgs.names_key``). Why: mapping 500 names
through a Python dict was the extender's largest cost after aiohttp's own (a dict probe per name,
memory-bound: ~0.1–0.15 ms per request on the test machine, more than scoring). Compiled with numba,
one pass over the bytes hashes each name (FNV-1a), finds it by binary search among the inventory's
open-addressing hash table and confirms it byte by byte against the inventory's names: exact, ~20 µs.

Only the plain shape kube-scheduler sends is read this way — ``"NodeNames":["a","b",…]`` with no
whitespace and no escapes; anything else (and a machine without numba) returns None and the caller
uses the dict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

_Fn = TypeVar("_Fn", bound=Callable[..., Any])
try:
    import numba

    def _jit(fn: _Fn) -> _Fn:
        return cast(_Fn, numba.njit(cache=True, nogil=True)(fn))

    HAVE_NUMBA = True
except ImportError:  # the dict lookup serves

    def _jit(fn: _Fn) -> _Fn:
        return fn

    HAVE_NUMBA = False

_PREFIX = b'"NodeNames":['
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


class NameTable:
    """The inventory's names as one byte blob with offsets, and an open-addressing table (linear probing,
    at most two-thirds full) from each name's hash to its position."""

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

    def lookup(self, key: bytes | None, count: int) -> NDArray[np.intp] | None:
        """Positions of the ``count`` names in ``key`` (``ExtenderArgs.names_key``), -1 for unknown names;
        None when the bytes are not in the plain shape (or numba is missing): use the dict then."""
        if not HAVE_NUMBA or key is None or not key.startswith(_PREFIX):
            return None
        out = np.empty(count, dtype=np.intp)
        ok = _lookup(np.frombuffer(key, dtype=np.uint8), len(_PREFIX), self.table, self.blob, self.offsets, out)
        return out if ok else None


def raw_array(key: bytes | None, count: int) -> bytes | None:
    """The ``NodeNames`` array's own bytes (``["a","b",…]``) from ``key`` (``ExtenderArgs.names_key``) when
    it holds ``count`` plain names — what filter echoes when every node passes, instead of encoding 500
    names again. None in any other shape (or without numba)."""
    if not HAVE_NUMBA or key is None or not key.startswith(_PREFIX):
        return None
    start = len(_PREFIX) - 1
    end = _array_end(np.frombuffer(key, dtype=np.uint8), start, count)
    return key[start : end + 1] if end > start else None


@_jit
def _array_end(body: NDArray[np.uint8], start: int, count: int) -> int:  # pragma: no cover - compiled
    """Index of the ``]`` closing the array at ``start`` when it is exactly ``count`` escape-free strings."""
    size = body.size
    pos = start + 1
    for k in range(count):
        if k:
            if pos >= size or body[pos] != 44:
                return -1
            pos += 1
        if pos >= size or body[pos] != 34:
            return -1
        pos += 1
        while pos < size and body[pos] != 34:
            if body[pos] == 92:
                return -1
            pos += 1
        if pos >= size:
            return -1
        pos += 1
    return pos if pos < size and body[pos] == 93 else -1


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@_jit
def _lookup(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    body: NDArray[np.uint8],
    start: int,
    table: NDArray[np.int64],
    blob: NDArray[np.uint8],
    offsets: NDArray[np.int64],
    out: NDArray[np.intp],
) -> bool:  # pragma: no cover - compiled; tested through NameTable against the dict
    n = out.size
    size = body.size
    pos = start
    for k in range(n):
        if k and (pos >= size or body[pos] != 44):  # ","
            return False
        if k:
            pos += 1
        if pos >= size or body[pos] != 34:  # opening quote
            return False
        pos += 1
        first = pos
        h = _FNV_OFFSET
        while pos < size and body[pos] != 34:
            c = body[pos]
            if c == 92:  # an escape: not the plain shape
                return False
            h = (h ^ np.uint64(c)) * _FNV_PRIME
            pos += 1
        if pos >= size:
            return False
        length = pos - first
        pos += 1  # closing quote
        # Probe from the hash's slot until an empty one; confirm byte by byte (hashes may collide).
        mask = np.int64(table.size // 2 - 1)
        slot = np.int64(h & np.uint64(mask))  # int64 throughout: numba mixes uint64 and int64 into float
        hashed = np.int64(h)  # the same 64 bits, as the table stores them
        found = -1
        while table[2 * slot + 1] >= 0:
            node = table[2 * slot + 1]
            if table[2 * slot] == hashed and offsets[node + 1] - offsets[node] == length:
                a = offsets[node]
                same = True
                for t in range(length):
                    if blob[a + t] != body[first + t]:
                        same = False
                        break
                if same:
                    found = node
                    break
            slot = (slot + 1) & mask
        out[k] = found
    return pos < size and body[pos] == 93  # "]": exactly n names
