"""Typed, time-stamped telemetry values (freshness is data: every value carries its timestamp)."""

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

    def age_seconds(self, now: float) -> float:
        return max(0.0, now - self.observed_at)


@dataclass(frozen=True, slots=True)
class TelemetrySnapshot:
    """One fetch of all nodes' telemetry, with per-query errors kept (partial results are used)."""

    fetched_at: float
    nodes: Mapping[str, NodeTelemetry] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    """Query name -> error message for queries that failed this round."""

    def get(self, node: str) -> NodeTelemetry | None:
        return self.nodes.get(node)
