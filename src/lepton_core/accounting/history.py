"""Compact cost history: bounded, multi-resolution buckets whose totals are preserved exactly.

Every accounted window lands in a *level-0* bucket (one per minute by default). When a level holds
more buckets than its capacity, its oldest buckets are merged into the next level's bucket for the same
slot (minute -> hour -> day). At the top level the two oldest buckets merge with each other, so the
bucket count never exceeds the sum of the capacities however long a job runs. Amounts are integers
(``amounts``), so a merge is exact: Σ buckets equals the ledger's total to the last nano-unit.

Capacity is counted, not aged: a job that pauses for a week keeps its last minutes at minute resolution
until newer windows push them up a level. Buckets are kept oldest first and never overlap; a bucket's
``start_ms``/``end_ms`` span the windows merged into it (gaps included).

Pure; neighbours: ``ledger`` (adds the increments it settles), the operator's status module (stores
buckets in ``status.cost.history``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lepton_core.accounting.amounts import Amounts


@dataclass(frozen=True, slots=True)
class HistoryPolicy:
    level_seconds: tuple[int, ...] = (60, 3600, 86400)
    """Bucket width of each level, finest first; each must divide the next."""
    capacities: tuple[int, ...] = (60, 48, 62)
    """How many buckets each level keeps: an hour of minutes, two days of hours, two months of days."""

    def __post_init__(self) -> None:
        if not self.level_seconds or len(self.level_seconds) != len(self.capacities):
            raise ValueError("history: give one capacity per level")
        if any(w <= 0 for w in self.level_seconds) or any(c < 2 for c in self.capacities):
            raise ValueError("history: level widths must be positive and capacities at least 2")
        for a, b in zip(self.level_seconds, self.level_seconds[1:], strict=False):
            if b % a:
                raise ValueError(f"history: level width {b} s is not a multiple of {a} s")

    @property
    def max_buckets(self) -> int:
        return sum(self.capacities)


@dataclass(slots=True)
class Bucket:
    level: int
    slot: int
    """Index of the bucket's period at its level: ``time_ms // (level width in ms)``."""
    start_ms: int
    end_ms: int
    amounts: Amounts
    estimated: bool = False
    """True when any window in the bucket was accounted from the model on requests."""

    def as_list(self) -> list[int]:
        return [
            self.level,
            self.slot,
            self.start_ms,
            self.end_ms,
            *self.amounts.as_list(),
            int(self.estimated),
        ]

    @classmethod
    def from_list(cls, raw: Sequence[object], where: str) -> Bucket:
        if len(raw) != 9 or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            raise ValueError(f"{where}: expected nine integers [level, slot, startMs, endMs, hw, energy, ops, mJ, est]")
        v = [x for x in raw if isinstance(x, int)]
        if v[3] < v[2]:
            raise ValueError(f"{where}: endMs precedes startMs")
        return cls(v[0], v[1], v[2], v[3], Amounts(v[4], v[5], v[6], v[7]), bool(v[8]))


@dataclass(slots=True)
class History:
    """The buckets of one job, oldest first. Mutated in place by ``add`` (the ledger owns it)."""

    policy: HistoryPolicy = field(default_factory=HistoryPolicy)
    buckets: list[Bucket] = field(default_factory=list)
    windows: int = 0
    """How many accounted windows were added: windows / buckets is the compression ratio."""

    def copy(self) -> History:
        return History(
            self.policy,
            [Bucket(b.level, b.slot, b.start_ms, b.end_ms, b.amounts, b.estimated) for b in self.buckets],
            self.windows,
        )

    def total(self) -> Amounts:
        out = Amounts()
        for b in self.buckets:
            out = out + b.amounts
        return out

    @property
    def compression_ratio(self) -> float:
        return self.windows / len(self.buckets) if self.buckets else 1.0

    def add(self, start_ms: int, end_ms: int, amounts: Amounts, estimated: bool = False) -> None:
        """Record one accounted window ``(start_ms, end_ms]``; windows must come in time order."""
        if end_ms < start_ms:
            raise ValueError("a window must not end before it starts")
        if self.buckets and start_ms < self.buckets[-1].end_ms:
            raise ValueError("windows must be added in time order, without overlap")
        width0 = self.policy.level_seconds[0] * 1000
        slot = max(end_ms - 1, start_ms) // width0
        self.windows += 1
        last = self.buckets[-1] if self.buckets else None
        if last is not None and last.level == 0 and last.slot == slot:
            last.amounts = last.amounts + amounts
            last.end_ms = end_ms
            last.estimated = last.estimated or estimated
        else:
            self.buckets.append(Bucket(0, slot, start_ms, end_ms, amounts, estimated))
            self._compact()  # only a new bucket can push a level over its capacity

    def _compact(self) -> None:
        levels = self.policy.level_seconds
        top = len(levels) - 1
        counts = [0] * len(levels)
        for b in self.buckets:
            counts[b.level] += 1
        for level in range(len(levels)):
            while counts[level] > self.policy.capacities[level]:
                # Buckets are ordered coarsest (oldest) first, so this level's oldest bucket sits right
                # after all coarser ones.
                first = sum(counts[level + 1 :])
                oldest = self.buckets[first]
                counts[level] -= 1
                if level == top:
                    nxt = self.buckets[first + 1]
                    nxt.amounts = oldest.amounts + nxt.amounts
                    nxt.start_ms = oldest.start_ms
                    nxt.slot = oldest.slot
                    nxt.estimated = nxt.estimated or oldest.estimated
                    del self.buckets[first]
                    continue
                up_slot = oldest.slot * levels[level] // levels[level + 1]
                prev = self.buckets[first - 1] if first > 0 else None
                if prev is not None and prev.level == level + 1 and prev.slot == up_slot:
                    prev.amounts = prev.amounts + oldest.amounts
                    prev.end_ms = oldest.end_ms
                    prev.estimated = prev.estimated or oldest.estimated
                    del self.buckets[first]
                else:
                    oldest.level = level + 1
                    oldest.slot = up_slot
                    counts[level + 1] += 1

    def as_lists(self) -> list[list[int]]:
        return [b.as_list() for b in self.buckets]

    @classmethod
    def from_lists(cls, raw: Sequence[object], policy: HistoryPolicy, windows: int = 0) -> History:
        buckets: list[Bucket] = []
        for i, item in enumerate(raw):
            if not isinstance(item, list):
                raise ValueError(f"history.buckets[{i}]: expected a list of integers")
            b = Bucket.from_list(item, f"history.buckets[{i}]")
            if not 0 <= b.level < len(policy.level_seconds):
                raise ValueError(f"history.buckets[{i}]: level {b.level} is not one of this policy's levels")
            if buckets and b.start_ms < buckets[-1].end_ms:
                raise ValueError(f"history.buckets[{i}]: overlaps the bucket before it")
            if buckets and b.level > buckets[-1].level:
                raise ValueError(f"history.buckets[{i}]: a coarser bucket after a finer one")
            buckets.append(b)
        h = cls(policy, buckets, windows)
        h._compact()  # a history written under a larger policy shrinks to this one, totals intact
        return h
