"""What a placement policy sees and returns.

Neighbours: ``lepton_simulator.engine`` builds one ``PlacementContext`` per worker to place, after the
fit filter (``ClusterState.feasible``) has chosen the candidates; each policy module in this package
scores them. Higher scores win; among equal best scores the engine picks uniformly at random (seeded),
as kube-scheduler's ``selectHost`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from lepton_simulator.scenario import NodeCatalog
from lepton_simulator.state import ClusterState, Request
from lepton_simulator.trace import GPU_MILLI_PER_GPU

FloatArray = NDArray[np.float64]


@dataclass(eq=False)
class PlacementContext:
    """One worker to place and the candidate nodes it fits on."""

    state: ClusterState
    catalog: NodeCatalog
    req: Request
    candidates: NDArray[np.intp]
    now_s: float
    """Trace time of the decision."""
    epoch_s: float
    """The same instant as Unix time (tariffs and carbon are looked up with it)."""
    autoscaled: bool
    """The replay's lifecycle releases empty nodes."""
    _power_delta: FloatArray | None = field(default=None, repr=False)

    def cpu_utilization_now(self) -> FloatArray:
        """Allocation-derived CPU utilization of the candidates (the simulator's measured load)."""
        idx = self.candidates
        out: FloatArray = self.state.alloc_cpu[idx] / self.state.cap_cpu[idx]
        return out

    def power_delta_watts(self) -> FloatArray:
        """Wall power added (PUE included) by placing the worker on each candidate, from its power model.

        CPU: the platform curve from allocated/allocatable before to after. GPUs: per GPU, from its
        allocated milli-GPUs before to after on the GPU(s) the worker would take.
        """
        if self._power_delta is not None:
            return self._power_delta
        s = self.state
        idx = self.candidates
        table = self.catalog.power.take(idx)
        cap = s.cap_cpu[idx]
        used = s.alloc_cpu[idx]
        u_now = np.minimum(used / cap, 1.0)
        u_new = np.minimum((used + self.req.cpu_milli) / cap, 1.0)
        platform = table.platform_watts(u_new) - table.platform_watts(u_now)
        gpu = np.zeros(idx.size)
        req = self.req
        if req.num_gpu > 0:
            span = table.gpu_max_watts - table.gpu_idle_watts
            if req.shared_gpu:
                u0 = (GPU_MILLI_PER_GPU - s.best_fit_free(idx, req.gpu_milli)) / GPU_MILLI_PER_GPU
                u1 = u0 + req.gpu_milli / GPU_MILLI_PER_GPU
                k = table.gpu_exponent
                gpu = span * (np.power(u1, k) - np.power(u0, k))
            else:
                gpu = req.num_gpu * span
        delta: FloatArray = (platform + gpu) * table.pue
        self._power_delta = delta
        return delta


class Policy(Protocol):
    """A scoring policy: scores for ``ctx.candidates`` (same order), higher is better."""

    @property
    def name(self) -> str: ...

    def score(self, ctx: PlacementContext) -> FloatArray: ...


def int_round_half_up(x: FloatArray) -> FloatArray:
    """Go's ``math.Round`` for the non-negative values the scheduler plugins round."""
    out: FloatArray = np.floor(x + 0.5)
    return out
