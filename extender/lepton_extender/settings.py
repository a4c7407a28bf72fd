"""Extender settings: one grouped, documented object read once at start-up (``lepton extender`` flags).

Neighbours: ``cli`` builds it from the command line; ``app`` and ``service`` read it. Nothing deeper
reads the environment or the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from lepton_core.scoring import ScoringPolicy

DEFAULT_PORT = 8888
DEFAULT_MAX_BODY_BYTES = 64 * 2**20
"""64 MiB: a full-node payload (nodeCacheCapable: false) of 5,000 nodes is ~40 MB of JSON."""


def _positive(value: float, name: str) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name}: must be a positive number (got {value!r})")


@dataclass(frozen=True, slots=True)
class ExtenderSettings:
    host: str = "0.0.0.0"
    """All interfaces: kube-scheduler reaches the extender over the cluster network."""
    port: int = DEFAULT_PORT
    policy: ScoringPolicy = field(default_factory=ScoringPolicy)
    """Preset/weights and the filter thresholds (``lepton_core.scoring``)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Larger request bodies get 413 with a reason."""
    inventory: Path | None = None
    """Static inventory (``kubectl get nodes -o json`` or a v1.List of nodes and pods); None: watch the cluster."""
    profiles: Path | None = None
    """Cost profile file; None: the shipped defaults."""
    prometheus_url: str | None = None
    """Telemetry source; None: no telemetry (every node scored fail-open on its requests)."""
    telemetry_interval_seconds: float = 15.0
    """How often telemetry is polled."""
    telemetry_window_seconds: float = 60.0
    """Rate window of each telemetry poll."""
    assume_ttl_seconds: float = 30.0
    """An assumed placement not bound by then is dropped (kube-scheduler binds within seconds)."""
    settle_seconds: float = 60.0
    """A placement counts as pending until telemetry observed this long after it."""
    maintenance_interval_seconds: float = 0.5
    """Background tick: rebuild arrays after node changes, expire placements, refresh prices."""
    relayout_interval_seconds: float = 60.0
    """How often to check whether the scoring arrays should follow kube-scheduler's candidate order
    (``ClusterSnapshot.relayout``); 0: never. A check costs ~2 ms at 5,000 nodes; relaying out (once the
    order is learned, again only when it changes) holds the loop ~0.2 s at 5,000 nodes."""
    decisions_kept: int = 200
    """How many recent decisions ``/debug/decisions`` keeps."""
    log_top_candidates: int = 3
    """Candidates with their cost breakdown in each decision log line."""
    decision_log_per_second: float = 100.0
    """At most this many decision log lines per second (a token bucket, bursts up to one second's worth);
    beyond it decisions are counted, not logged (each line costs ~0.1 ms of the one core that serves
    requests), and ``/debug/decisions`` still has the latest ones."""
    event_loop: str = "auto"
    """``uvloop`` (libuv's event loop; a bare aiohttp endpoint served 20–30 % more requests/s on it than on
    the standard loop here, docs/notes/extender.md), ``asyncio`` (the standard loop), or ``auto``: uvloop
    where it is installed."""

    def __post_init__(self) -> None:
        if not (0 <= self.port <= 65535):
            raise ValueError(f"port: must be 0-65535 (got {self.port})")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes: must be at least 1024 (got {self.max_body_bytes})")
        for name in (
            "telemetry_interval_seconds",
            "telemetry_window_seconds",
            "assume_ttl_seconds",
            "settle_seconds",
            "maintenance_interval_seconds",
            "decision_log_per_second",
        ):
            _positive(getattr(self, name), name)
        if not (math.isfinite(self.relayout_interval_seconds) and self.relayout_interval_seconds >= 0.0):
            raise ValueError(f"relayout_interval_seconds: must be >= 0 (got {self.relayout_interval_seconds!r})")
        if self.event_loop not in ("auto", "asyncio", "uvloop"):
            raise ValueError(f"event_loop: expected auto, asyncio or uvloop (got {self.event_loop!r})")
        if self.decisions_kept < 1 or self.log_top_candidates < 0:
            raise ValueError("decisions_kept must be >= 1 and log_top_candidates >= 0")
        if self.prometheus_url is not None and not self.prometheus_url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus_url: expected http:// or https:// (got {self.prometheus_url!r})")
