"""``trimaran-tlp``: Trimaran TargetLoadPacking, target 40 % CPU.

Source: kubernetes-sigs/scheduler-plugins ``pkg/trimaran/targetloadpacking/targetloadpacking.go`` and
KEP 61 "Trimaran: Real Load Aware Scheduling". With the node's measured CPU utilization ``U`` (percent of
capacity) and the pod's predicted usage ``p`` (its CPU limit; else its request × ``defaultRequestsMultiplier``
1.5; else ``defaultRequests`` 1 core), the predicted utilization is ``P = 100 · (U·cap/100 + p) / cap`` and

* ``P > 100``: score 0;
* ``P > x`` (x = target, 40): ``round(x · (100 − P) / (100 − x))``;
* otherwise: ``round((100 − x) · P / x + x)``.

So nodes are filled towards the target, then spread. In the simulator the "measured" utilization is the
allocation-derived one (requests / allocatable: the same assumption the energy model makes), and trace
pods carry requests only, so ``p = round(1.5 × request)`` (1 core for a pod without a CPU request).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_simulator.policies.base import FloatArray, PlacementContext, int_round_half_up


@dataclass(frozen=True)
class TargetLoadPacking:
    name: str = "trimaran-tlp"
    target_utilization_percent: float = 40.0
    default_requests_milli: int = 1000
    requests_multiplier: float = 1.5

    def __post_init__(self) -> None:
        if not (0.0 < self.target_utilization_percent < 100.0):
            raise ValueError(
                f"target_utilization_percent: must be in (0, 100) (got {self.target_utilization_percent!r})"
            )

    def predicted_pod_milli(self, cpu_request_milli: int) -> float:
        if cpu_request_milli <= 0:
            return float(self.default_requests_milli)
        return float(np.floor(cpu_request_milli * self.requests_multiplier + 0.5))

    def score(self, ctx: PlacementContext) -> FloatArray:
        idx = ctx.candidates
        cap = ctx.state.cap_cpu[idx].astype(np.float64)
        used = ctx.state.alloc_cpu[idx].astype(np.float64)
        predicted = 100.0 * (used + self.predicted_pod_milli(ctx.req.cpu_milli)) / cap
        x = self.target_utilization_percent
        below = int_round_half_up((100.0 - x) * predicted / x + x)
        above = int_round_half_up(x * np.maximum(100.0 - predicted, 0.0) / (100.0 - x))
        out: FloatArray = np.where(predicted > 100.0, 0.0, np.where(predicted > x, above, below))
        return out
