"""``peaks``: PEAKS, Power Efficiency Aware Kubernetes Scheduler: the node whose power rises least.

Source: kubernetes-sigs/scheduler-plugins ``pkg/trimaran/peaks/peaks.go`` and its KEP
("PEAKS: Power and Energy Aware Scheduling"). Each node's score is the jump in its power from the
current to the predicted utilization, ``ΔP = model(U + pod) − model(U)``; NormalizeScore maps the jumps
onto [0, 100] with the smallest jump best: ``score = 100 − ⌊100 · (ΔP − min) / (max − min)⌋``
(100 for every node when all jumps are equal).

PEAKS lets the operator bring each node's power model; here it is the node's own ``NodePowerModel``
from its cost profile (the same the energy ledger uses). Its published model maps CPU utilization to
power; Lepton's models also have GPU terms, so the jump includes the GPUs the pod takes (a GPU pod would
otherwise look free everywhere). Utilization is allocation-derived, as everywhere in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_simulator.policies.base import FloatArray, PlacementContext

MAX_NODE_SCORE = 100.0


@dataclass(frozen=True)
class Peaks:
    name: str = "peaks"

    def score(self, ctx: PlacementContext) -> FloatArray:
        jump = ctx.power_delta_watts()
        lo = float(jump.min())
        hi = float(jump.max())
        if hi == lo:
            return np.full(jump.size, MAX_NODE_SCORE)
        out: FloatArray = MAX_NODE_SCORE - np.floor(MAX_NODE_SCORE * (jump - lo) / (hi - lo))
        return out
