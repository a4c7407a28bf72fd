"""kube-scheduler's NodeResourcesFit and NodeResourcesBalancedAllocation scores, in integer arithmetic.

Source: kubernetes/kubernetes ``pkg/scheduler/framework/plugins/noderesources`` (``least_allocated.go``,
``most_allocated.go``, ``balanced_allocation.go``, ``resource_allocation.go``), and the scheduler docs
"Resource Bin Packing" (kubernetes.io/docs/concepts/scheduling-eviction/resource-bin-packing/).

For each scored resource r with node allocatable ``A_r`` and requested ``R_r`` (pods on the node plus
this pod; cpu and memory use ``NonZeroRequested``: a pod without a request counts as 100 m / 200 MiB):

* LeastAllocated: ``s_r = (A_r − R_r) · 100 / A_r`` (0 if R_r > A_r);
* MostAllocated:  ``s_r = min(R_r, A_r) · 100 / A_r``;
* either: ``score = Σ_r s_r · w_r / Σ_r w_r`` over the resources the node has; an extended resource
  (``nvidia.com/gpu``) the pod does not request is left out of both sums;
* BalancedAllocation: fractions ``f_r = min(R_r / A_r, 1)`` with actual requests; ``std = |f_cpu − f_mem| / 2``
  for two resources (the population standard deviation in general); ``score = ⌊(1 − std) · 100⌋``.

All divisions are Go ``int64`` divisions (truncating), as in the source. GPUs are counted in milli-GPUs,
so a shared GPU fills a fraction of a device.

Neighbours: ``policies.kube_default`` and ``policies.most_allocated`` combine these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from lepton_simulator.policies.base import PlacementContext
from lepton_simulator.trace import GPU_MILLI_PER_GPU

IntArray = NDArray[np.int64]
MAX_NODE_SCORE = 100

CPU = "cpu"
MEMORY = "memory"
GPU = "nvidia.com/gpu"


def _requested_allocatable(ctx: PlacementContext, resource: str, nonzero: bool) -> tuple[IntArray, IntArray] | None:
    """(requested incl. the pod, allocatable) on the candidates; None when the resource is bypassed."""
    s = ctx.state
    idx = ctx.candidates
    req = ctx.req
    if resource == CPU:
        if nonzero:
            return s.alloc_cpu_nonzero[idx] + req.cpu_milli_nonzero, s.cap_cpu[idx]
        return s.alloc_cpu[idx] + req.cpu_milli, s.cap_cpu[idx]
    if resource == MEMORY:
        if nonzero:
            return s.alloc_mem_nonzero[idx] + req.memory_mib_nonzero, s.cap_mem[idx]
        return s.alloc_mem[idx] + req.memory_mib, s.cap_mem[idx]
    if resource == GPU:
        if req.num_gpu == 0:
            return None  # extended resource not requested by the pod: not scored
        return s.alloc_gpu_milli[idx] + req.gpu_milli_total, s.gpu_count[idx] * GPU_MILLI_PER_GPU
    raise ValueError(f"resource: unknown resource {resource!r} (have: {CPU}, {MEMORY}, {GPU})")


def _stack(
    ctx: PlacementContext, resources: Sequence[str], nonzero: bool
) -> tuple[IntArray, IntArray, list[int]] | None:
    """(requested, allocatable) as (resources × candidates) arrays, and which resources were kept."""
    req_rows: list[IntArray] = []
    cap_rows: list[IntArray] = []
    kept: list[int] = []
    for i, name in enumerate(resources):
        pair = _requested_allocatable(ctx, name, nonzero)
        if pair is not None:
            req_rows.append(pair[0])
            cap_rows.append(pair[1])
            kept.append(i)
    if not kept:
        return None
    return np.vstack(req_rows), np.vstack(cap_rows), kept


def least_requested(requested: IntArray, allocatable: IntArray) -> IntArray:
    safe = np.maximum(allocatable, 1)
    out: IntArray = np.where(
        (allocatable == 0) | (requested > allocatable), 0, (allocatable - requested) * MAX_NODE_SCORE // safe
    )
    return out


def most_requested(requested: IntArray, allocatable: IntArray) -> IntArray:
    safe = np.maximum(allocatable, 1)
    out: IntArray = np.where(allocatable == 0, 0, np.minimum(requested, allocatable) * MAX_NODE_SCORE // safe)
    return out


def resource_fit_scores(ctx: PlacementContext, resources: Sequence[tuple[str, int]], most_allocated: bool) -> IntArray:
    """NodeResourcesFit score with the LeastAllocated or MostAllocated strategy."""
    stacked = _stack(ctx, [name for name, _ in resources], nonzero=True)
    if stacked is None:
        return np.zeros(ctx.candidates.size, dtype=np.int64)
    requested, allocatable, kept = stacked
    weights = np.array([resources[i][1] for i in kept], dtype=np.int64)[:, None]
    scorer = most_requested if most_allocated else least_requested
    present = allocatable > 0
    total = (scorer(requested, allocatable) * weights * present).sum(axis=0)
    weight_sum = (weights * present).sum(axis=0)
    out: IntArray = np.where(weight_sum > 0, total // np.maximum(weight_sum, 1), 0)
    return out


def balanced_allocation_scores(ctx: PlacementContext, resources: Sequence[str] = (CPU, MEMORY)) -> IntArray:
    n = ctx.candidates.size
    stacked = _stack(ctx, resources, nonzero=False)
    if stacked is None or len(stacked[2]) < 2:
        return np.full(n, MAX_NODE_SCORE, dtype=np.int64)
    requested, allocatable, _ = stacked
    fractions = np.minimum(requested / np.maximum(allocatable, 1), 1.0)
    if fractions.shape[0] == 2:
        std = np.abs(fractions[0] - fractions[1]) / 2.0
    else:
        # Resources a node lacks (allocatable 0) are left out of its standard deviation.
        masked = np.where(allocatable > 0, fractions, np.nan)
        std = np.nan_to_num(np.nanstd(masked, axis=0))
    out: IntArray = ((1.0 - std) * MAX_NODE_SCORE).astype(np.int64)
    return out
