"""The job ledger: accumulated cost and energy that advance only by what lies after ``observedAt``.

The accounting loop produces one ``Increment`` per job per window ``(start, end]``. ``Ledger.settle``
adds to the ledger only the part of each increment that lies after the ledger's watermark
``observed_at_ms`` (pro rata for a window that straddles it) and moves the watermark to the end of the
last increment. So replaying increments, restarting the operator (which recomputes windows from the
stored watermark), or two replicas writing the same job can never count a window twice or skip one —
provided each write is conditional on the watermark it was computed from (the operator's status writer
does that). Nothing is ever subtracted: a window accounted from the model while Prometheus was away
stays as it was when measurements return.

Pure; neighbours: ``amounts`` (exact integers), ``history`` (buckets), ``pipeline`` (produces the
increments), ``lepton_operator.accounting`` (stores ledgers in LeptonJob status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lepton_core.accounting.amounts import ZERO, Amounts
from lepton_core.accounting.history import History, HistoryPolicy


@dataclass(frozen=True, slots=True)
class Increment:
    """What one job accrued over one window ``(start_ms, end_ms]``."""

    start_ms: int
    end_ms: int
    amounts: Amounts
    active_ms: int = 0
    """How long within the window the job had a pod running (for average power)."""
    estimated: bool = False
    """True when the window's power came from the model on requested resources."""

    def __post_init__(self) -> None:
        if self.end_ms < self.start_ms:
            raise ValueError("an increment must not end before it starts")
        if not 0 <= self.active_ms <= self.end_ms - self.start_ms:
            raise ValueError("active time must lie within the window")

    def after(self, watermark_ms: int) -> Increment | None:
        """The part of this increment after ``watermark_ms`` (pro rata), or None if nothing is left."""
        if self.end_ms <= watermark_ms:
            return None
        if self.start_ms >= watermark_ms:
            return self
        fraction = (self.end_ms - watermark_ms) / (self.end_ms - self.start_ms)
        return Increment(
            watermark_ms, self.end_ms, self.amounts.scaled(fraction), round(self.active_ms * fraction), self.estimated
        )


@dataclass(slots=True)
class Ledger:
    """One job's accumulated amounts, watermark and history."""

    amounts: Amounts = ZERO
    observed_at_ms: int | None = None
    """End of the last accounted window; None before the first."""
    active_ms: int = 0
    """Accounted time during which the job had a running pod."""
    estimated_ms: int = 0
    """Running time whose power came from the model on requests (Prometheus away or stale)."""
    estimated: bool = False
    """Whether the latest accounted window was estimated (switches back when measurements return)."""
    history: History = field(default_factory=History)

    @property
    def average_watts(self) -> float:
        return self.amounts.joules / (self.active_ms / 1000.0) if self.active_ms > 0 else 0.0

    def settle(self, increments: Sequence[Increment]) -> Ledger:
        """A new ledger with the parts of ``increments`` after the watermark added (in time order)."""
        out = Ledger(
            self.amounts, self.observed_at_ms, self.active_ms, self.estimated_ms, self.estimated, self.history.copy()
        )
        for inc in sorted(increments, key=lambda i: i.end_ms):
            part = inc if out.observed_at_ms is None else inc.after(out.observed_at_ms)
            if part is None:
                continue
            out.amounts = out.amounts + part.amounts
            out.active_ms += part.active_ms
            if part.estimated:
                out.estimated_ms += part.active_ms
            out.estimated = part.estimated
            out.history.add(part.start_ms, part.end_ms, part.amounts, part.estimated)
            out.observed_at_ms = part.end_ms
        return out

    def pending_after(self, increments: Sequence[Increment]) -> list[Increment]:
        """The increments (or their parts) not yet in this ledger: what a writer still has to add."""
        if self.observed_at_ms is None:
            return list(increments)
        out = []
        for inc in increments:
            part = inc.after(self.observed_at_ms)
            if part is not None:
                out.append(part)
        return out


def new_ledger(policy: HistoryPolicy | None = None) -> Ledger:
    return Ledger(history=History(policy or HistoryPolicy()))
