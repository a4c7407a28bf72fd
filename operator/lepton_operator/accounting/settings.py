"""Accounting settings: one grouped, documented object, read once at start-up (kopf's configuration style).

Neighbours: ``loop`` (uses them), ``lepton_operator.cli`` / the operator's start-up hook (builds them
from command-line flags), ``lepton_core.telemetry.prometheus.PrometheusSettings`` (how to reach
Prometheus; ``None`` accounts from the model on requests only, every window estimated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lepton_core.accounting.history import HistoryPolicy
from lepton_core.models.attribution import AttributionPolicy
from lepton_core.telemetry.prometheus import PrometheusSettings


@dataclass(frozen=True, slots=True)
class AccountingSettings:
    interval_seconds: float = 30.0
    """One accounting tick over all nodes and jobs every this many seconds."""
    max_writes_per_second: float = 50.0
    """API writes (status patches, events, budget actions) per second, averaged over a tick; the
    status of a job then lags its live cost by up to ``jobs / rate`` seconds (metrics never lag)."""
    write_burst: float = 100.0
    """Writes that may go out at once after a quiet period (token-bucket capacity beyond one tick)."""
    write_concurrency: int = 8
    """Status patches in flight at once."""
    min_flush_interval_seconds: float = 60.0
    """A running job's status is not rewritten more often than this (budgets and finished jobs excepted)."""
    max_backfill_seconds: float = 6 * 3600.0
    """After a restart, windows since each job's ``observedAt`` are recomputed from Prometheus's history
    up to this far back; older gaps are not charged (and the loss is logged)."""
    backfill_step_seconds: float | None = None
    """Window length when recomputing the past; default ``interval_seconds``."""
    max_backfill_windows: int = 20
    """At most this many windows when recomputing the past (longer gaps get longer windows), so the
    first tick after a long outage costs a bounded number of window accountings."""
    finished_job_metrics_retention_seconds: float = 24 * 3600.0
    """How long a deleted job's final cost stays in ``/metrics`` after the job is gone."""
    prometheus: PrometheusSettings | None = None
    history: HistoryPolicy = field(default_factory=HistoryPolicy)
    attribution: AttributionPolicy = AttributionPolicy.DOMINANT_REQUEST
    """How a node's cost is split among its pods: by their dominant requested share (default), or by
    measured CPU use (cAdvisor cores / allocatable cores; pods without a measurement fall back to
    requests)."""

    def __post_init__(self) -> None:
        if not self.interval_seconds > 0.0:
            raise ValueError("accounting interval_seconds must be positive")
        if not self.max_writes_per_second > 0.0:
            raise ValueError("accounting max_writes_per_second must be positive")
        if self.write_concurrency < 1:
            raise ValueError("accounting write_concurrency must be at least 1")
        if self.max_backfill_seconds < 0.0:
            raise ValueError("accounting max_backfill_seconds must not be negative")
        if self.max_backfill_windows < 1:
            raise ValueError("accounting max_backfill_windows must be at least 1")

    @property
    def step_seconds(self) -> float:
        return self.backfill_step_seconds or self.interval_seconds
