"""``most-allocated``: NodeResourcesFit with the MostAllocated (bin-packing) strategy.

Scored resources: cpu, memory and ``nvidia.com/gpu``, weight 1 each, the way the Kubernetes docs'
"Resource Bin Packing" page configures MostAllocated with an extended resource; the GPU term only counts
for pods that request GPUs (kube-scheduler bypasses extended resources a pod does not request).
Formula: ``node_resources`` (kubernetes ``pkg/scheduler/framework/plugins/noderesources/most_allocated.go``).
NodeResourcesBalancedAllocation is disabled in this profile, as bin-packing setups usually do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_simulator.policies.base import FloatArray, PlacementContext
from lepton_simulator.policies.node_resources import CPU, GPU, MEMORY, resource_fit_scores


@dataclass(frozen=True)
class MostAllocated:
    name: str = "most-allocated"
    resources: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1), (GPU, 1))

    def score(self, ctx: PlacementContext) -> FloatArray:
        out: FloatArray = resource_fit_scores(ctx, self.resources, most_allocated=True).astype(np.float64)
        return out
