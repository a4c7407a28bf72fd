"""Simulation settings: one grouped, documented object, built once by the CLI (or a test) and passed down.

Neighbours: ``lepton_simulator.cli`` builds it from the command line; ``lepton_simulator.engine`` reads it.
Nothing deeper reads the environment or the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Lifecycle(StrEnum):
    STATIC = "static"
    """Every node is on for the whole replay (an owned cluster that is never powered down)."""
    AUTOSCALED = "autoscaled"
    """Nodes start released; one is provisioned when a job fits no ready node, released when idle."""


@dataclass(frozen=True, slots=True)
class AutoscalerSettings:
    """How the autoscaled lifecycle behaves (cluster-autoscaler's semantics, simplified)."""

    idle_release_seconds: float = 600.0
    """An empty node is released after being empty this long (cluster-autoscaler's default
    ``--scale-down-unneeded-time`` is 10 minutes)."""
    boot_delay_seconds: float = 300.0
    """From provisioning to Ready. The node is billed and draws idle power while it boots (assumption:
    a cloud VM with GPU drivers takes a few minutes)."""

    def __post_init__(self) -> None:
        for name in ("idle_release_seconds", "boot_delay_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name}: must be a finite, non-negative number of seconds (got {value!r})")


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    lifecycle: Lifecycle = Lifecycle.STATIC
    autoscaler: AutoscalerSettings = field(default_factory=AutoscalerSettings)
    seed: int = 0
    """Seed for tie-breaking: among nodes with the best score one is picked uniformly at random, as
    kube-scheduler's ``selectHost`` does; seeded so that a replay is reproducible."""
    power_samples_max: int = 4000
    """Cluster power is kept at most this many points per policy for the plot (the ledger is exact)."""
