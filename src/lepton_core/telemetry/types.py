"""Typed, time-stamped telemetry values (freshness is data: every value carries its timestamp).

Neighbours: ``lepton_core.telemetry.prometheus`` builds these from PromQL answers; the extender's
background refresher and the operator's accounting loop (``lepton_operator.accounting``) read them;
tests and the static inventory mode build them directly. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class PowerSource(StrEnum):
    """Where a node's power figure came from."""

    KEPLER = "kepler"
    DCGM = "dcgm"
    KEPLER_DCGM = "kepler+dcgm"
    MODEL = "model"


class Signal(StrEnum):
    """One kind of measurement; the keys of ``NodeTelemetry.sample_times`` and of staleness reports."""

    CPU_UTILIZATION = "cpu_utilization"
    GPU_UTILIZATION = "gpu_utilization"
    GPU_POWER = "gpu_power"
    NODE_POWER = "node_power"
    POD_CPU = "pod_cpu"
    POD_POWER = "pod_power"


@dataclass(frozen=True, slots=True)
class NodeTelemetry:
    """What Prometheus says about one Kubernetes node at one time. ``None`` means "no data"."""

    node: str
    """Kubernetes node name (after relabelling from Prometheus ``instance``/``node`` labels)."""
    observed_at: float
    """Unix time of the newest sample used, seconds."""
    cpu_utilization: float | None = None
    """Busy CPU fraction of the node, [0, 1] (node_exporter)."""
    gpu_utilization: float | None = None
    """Mean GPU duty cycle over the node's GPUs, [0, 1] (DCGM)."""
    measured_power_watts: float | None = None
    """Measured wall or component power where Kepler/DCGM provide it."""
    power_source: PowerSource | None = None
    gpu_power_watts: float | None = None
    """Sum of GPU board power (DCGM), when known."""
    kepler_power_watts: float | None = None
    """Kepler's node power (mean over the query window), before any DCGM GPU power is added."""
    kepler_includes_gpu: bool = True
    """Whether ``kepler_power_watts`` already covers the GPUs (Kepler's legacy *platform* energy does;
    the 0.10+ RAPL *cpu* energy does not, so DCGM's GPU power is added to it)."""
    sample_times: Mapping[Signal, float] = field(default_factory=dict)
    """Unix time of the newest raw sample behind each signal (``timestamp()`` in PromQL)."""

    def age_seconds(self, now: float) -> float:
        return max(0.0, now - self.observed_at)

    def oldest_sample_at(self) -> float:
        """The oldest of the signals' newest samples: how fresh the *whole* record is."""
        return min(self.sample_times.values(), default=self.observed_at)


@dataclass(frozen=True, slots=True)
class PodTelemetry:
    """Per-pod measurements (cAdvisor CPU, Kepler pod energy), keyed by namespace and pod name."""

    namespace: str
    pod: str
    node: str | None
    """Kubernetes node name when the series carries one (after relabelling)."""
    observed_at: float
    cpu_cores: float | None = None
    """Mean CPU cores used over the query window (cAdvisor ``container_cpu_usage_seconds_total``)."""
    power_watts: float | None = None
    """Mean power over the query window (Kepler's pod or container energy counters)."""


@dataclass(frozen=True, slots=True)
class QueryReport:
    """How one named query fared in one fetch: kept so operators can see *why* data is missing."""

    name: str
    """The query constant's name and the metric variant: ``node_power_watts[kepler_node_cpu_joules_total]``."""
    ok: bool
    series: int = 0
    """Number of series the query returned (0 is not an error: the exporter may be absent)."""
    seconds: float = 0.0
    """Wall time of the HTTP round trip."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TelemetrySnapshot:
    """One fetch of all nodes' telemetry, with per-query errors kept (partial results are used)."""

    fetched_at: float
    nodes: Mapping[str, NodeTelemetry] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    """Query name -> error message for queries that failed this round."""
    pods: Mapping[tuple[str, str], PodTelemetry] = field(default_factory=dict)
    """(namespace, pod) -> per-pod measurements."""
    stale: Mapping[str, tuple[Signal, ...]] = field(default_factory=dict)
    """Node -> signals dropped this round because their newest sample was older than the limit."""
    unmatched_identities: tuple[str, ...] = ()
    """Prometheus node label values that no relabelling rule or alias turned into a known node name."""
    queries: tuple[QueryReport, ...] = ()
    window_seconds: float = 0.0
    """The rate window the snapshot's counters were averaged over (its values are means over
    ``[fetched_at - window_seconds, fetched_at]``)."""

    def get(self, node: str) -> NodeTelemetry | None:
        return self.nodes.get(node)

    @property
    def complete_failure(self) -> bool:
        """True when every query failed: Prometheus is unreachable or refuses us."""
        return bool(self.queries) and not any(q.ok for q in self.queries)
