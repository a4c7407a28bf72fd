"""``kube-default``: kube-scheduler's default scoring for resources.

NodeResourcesFit with the LeastAllocated strategy (cpu and memory, weight 1 each: the defaults of
``NodeResourcesFitArgs``) plus NodeResourcesBalancedAllocation (cpu and memory), both with plugin weight
1 in the default profile (kubernetes ``pkg/scheduler/apis/config/v1/default_plugins.go``). The other
default score plugins (affinities, taints, image locality, topology spread) give every node of a trace
without such constraints the same score and do not change the choice. Formulas: ``node_resources``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_simulator.policies.base import FloatArray, PlacementContext
from lepton_simulator.policies.node_resources import (
    CPU,
    MAX_NODE_SCORE,
    MEMORY,
    balanced_allocation_scores,
    resource_fit_scores,
)

_DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))


@dataclass(frozen=True)
class KubeDefault:
    name: str = "kube-default"
    resources: tuple[tuple[str, int], ...] = _DEFAULT_RESOURCES
    fit_weight: int = 1
    balanced_weight: int = 1

    def score(self, ctx: PlacementContext) -> FloatArray:
        if self.resources == _DEFAULT_RESOURCES and self.fit_weight == self.balanced_weight == 1:
            return _default_profile_scores(ctx)
        fit = resource_fit_scores(ctx, self.resources, most_allocated=False)
        balanced = balanced_allocation_scores(ctx, tuple(r for r, _ in self.resources))
        out: FloatArray = (self.fit_weight * fit + self.balanced_weight * balanced).astype(np.float64)
        return out


def _default_profile_scores(ctx: PlacementContext) -> FloatArray:
    """The same formulas as ``node_resources`` for cpu and memory, weight 1 each, without the generic
    resource loop: this runs once per placement for ``kube-default`` and for ``lepton``'s total score."""
    s = ctx.state
    idx = ctx.candidates
    req = ctx.req
    cap_c = s.cap_cpu[idx]
    cap_m = s.cap_mem[idx]
    nz_c = s.alloc_cpu_nonzero[idx] + req.cpu_milli_nonzero
    nz_m = s.alloc_mem_nonzero[idx] + req.memory_mib_nonzero
    least_c = np.where(nz_c > cap_c, 0, (cap_c - nz_c) * MAX_NODE_SCORE // cap_c)
    least_m = np.where(nz_m > cap_m, 0, (cap_m - nz_m) * MAX_NODE_SCORE // cap_m)
    fit = (least_c + least_m) // 2
    f_c = np.minimum((s.alloc_cpu[idx] + req.cpu_milli) / cap_c, 1.0)
    f_m = np.minimum((s.alloc_mem[idx] + req.memory_mib) / cap_m, 1.0)
    balanced = ((1.0 - np.abs(f_c - f_m) / 2.0) * MAX_NODE_SCORE).astype(np.int64)
    out: FloatArray = (fit + balanced).astype(np.float64)
    return out
