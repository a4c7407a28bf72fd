"""``lepton``: the extender's own scoring function, ``lepton_core.scoring.score_nodes``, not a copy.

Neighbours: ``lepton_core.scoring`` (owned by the extender; API in docs/notes/scoring-api.md) computes
each candidate's marginal cost per hour (hardware and operations share, ΔP × PUE × tariff, keep-alive of
an empty autoscaled node, overload risk) and maps it to kube-scheduler extender scores 0–10.

How the replay feeds it (the simulator's telemetry is its allocation, as for the energy ledger):

* one ``NodeState`` for the whole inventory, built once and updated in place before every call:
  requested = allocated, measured CPU/GPU utilization = allocated / allocatable, telemetry always fresh
  (observed "now"), nothing pending (measurements catch up instantly), workload pods = pods on the node,
  ``autoscaled`` = the replay's lifecycle, prices = each node's tariff at the decision time;
* ``PodDemand``: the worker's cpu, memory and (fractional) GPUs, busy fractions 1 (every request busy).

Deployment modelled: the shipped one (``deploy/base/scheduler/config.yaml``): upstream kube-scheduler
with all default plugins plus the Lepton extender at weight 5. kube-scheduler scales extender scores
(0–10) to its 0–100 range and multiplies by the weight, so a node's total is the default plugins' score
(``kube-default``; the others are equal on every node of a trace without taints or affinities) plus
50 × Lepton's score. Nodes the extender filters out (or finds unsafe) are not candidates (score −inf);
when it rejects them all the worker waits.

The policy is the extender's, thresholds included (``ScoringPolicy`` defaults). GPU load that requests
account for is not overload there (GPUs are allocated exclusively), so a pod that takes every GPU of a
node, or the last GPU of one, places; CPU keeps its plain ``max_utilization`` threshold, so in a replay
(where every request is fully busy) a node's CPU is not filled beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lepton_core.scoring import NodeCostTable, NodeState, PodDemand, ScoringPolicy, ScoringWeights, score_nodes
from lepton_simulator.policies.base import FloatArray, PlacementContext
from lepton_simulator.policies.kube_default import KubeDefault
from lepton_simulator.scenario import NodeCatalog
from lepton_simulator.state import ClusterState
from lepton_simulator.trace import GPU_MILLI_PER_GPU

BYTES_PER_MIB = 2**20
_MILLI = 1000.0
EXTENDER_WEIGHT = 5
"""The extender's weight in the shipped scheduler configuration (deploy/base/scheduler/config.yaml)."""
_EXTENDER_SCALE = 100 // 10
"""kube-scheduler maps extender scores (MaxExtenderPriority 10) onto MaxNodeScore 100."""


def simulator_scoring_policy(preset: str = "cost", weights: dict[str, float] | None = None) -> ScoringPolicy:
    """The extender's scoring policy for ``preset``, weights overridden by name."""
    chosen = ScoringWeights.preset(preset).with_overrides(dict(weights or {}))
    return ScoringPolicy(weights=chosen)


@dataclass
class LeptonPolicy:
    name: str = "lepton"
    scoring: ScoringPolicy = field(default_factory=simulator_scoring_policy)
    default_plugins: KubeDefault = field(default_factory=KubeDefault)
    extender_weight: int = EXTENDER_WEIGHT
    _costs: NodeCostTable | None = field(default=None, repr=False)
    _state: NodeState | None = field(default=None, repr=False)
    _bound_to: ClusterState | None = field(default=None, repr=False)
    _price: FloatArray | None = field(default=None, repr=False)
    _price_valid: tuple[float, float] = field(default=(0.0, 0.0), repr=False)

    def _bind(self, cluster: ClusterState, catalog: NodeCatalog, autoscaled: bool, now: float) -> NodeState:
        """Build the scoring inputs once per replay (the inventory does not change during one)."""
        if self._state is not None and self._bound_to is cluster:
            return self._state
        self._costs = NodeCostTable.from_profiles(catalog.profiles, [int(g) for g in cluster.gpu_count])
        self._state = NodeState.build(
            costs=self._costs,
            now=now,
            allocatable_cpu_cores=cluster.cap_cpu / _MILLI,
            allocatable_memory_bytes=cluster.cap_mem * float(BYTES_PER_MIB),
            allocatable_gpus=cluster.gpu_count.astype(np.float64),
            autoscaled=np.full(cluster.size, autoscaled),
        )
        self._bound_to = cluster
        return self._state

    def demand(self, ctx: PlacementContext) -> PodDemand:
        r = ctx.req
        return PodDemand(
            cpu_cores=r.cpu_milli / _MILLI,
            memory_bytes=float(r.memory_mib * BYTES_PER_MIB),
            gpus=r.gpu_milli_total / GPU_MILLI_PER_GPU,
        )

    def _prices(self, costs: NodeCostTable, epoch_s: float) -> FloatArray:
        """Each node's price now; re-evaluated only when ``epoch_s`` leaves the current price step."""
        lo, hi = self._price_valid
        if not (lo <= epoch_s < hi) or self._price is None:
            self._price = costs.prices_per_kwh_at(epoch_s)
            self._price_valid = price_step_around(costs, epoch_s)
        return self._price

    def score(self, ctx: PlacementContext) -> FloatArray:
        c = ctx.state
        st = self._bind(c, ctx.catalog, ctx.autoscaled, ctx.epoch_s)
        assert self._costs is not None
        # Only the candidates' rows are read (score_nodes takes them), so only they are refreshed.
        idx = ctx.candidates
        gpus = c.gpu_count[idx].astype(np.float64)
        gpu_alloc = c.alloc_gpu_milli[idx] / GPU_MILLI_PER_GPU
        st.requested_cpu_cores[idx] = c.alloc_cpu[idx] / _MILLI
        st.requested_memory_bytes[idx] = c.alloc_mem[idx] * float(BYTES_PER_MIB)
        st.requested_gpus[idx] = gpu_alloc
        st.cpu_utilization[idx] = np.minimum(c.alloc_cpu[idx] / c.cap_cpu[idx], 1.0)
        st.gpu_utilization[idx] = np.divide(gpu_alloc, gpus, out=np.zeros(idx.size), where=gpus > 0)
        st.telemetry_observed_at[idx] = ctx.epoch_s
        st.workload_pods[idx] = c.pods[idx]
        st.price_per_kwh[idx] = self._prices(self._costs, ctx.epoch_s)[idx]
        result = score_nodes(self.demand(ctx), st, now=ctx.epoch_s, policy=self.scoring, candidates=idx)
        extender = result.scores * (self.extender_weight * _EXTENDER_SCALE)
        out: FloatArray = np.where(result.safe, self.default_plugins.score(ctx) + extender, -np.inf)
        return out


def price_step_around(costs: NodeCostTable, t: float) -> tuple[float, float]:
    """The interval around ``t`` in which no node's tariff changes price."""
    lo, hi = -np.inf, np.inf
    for tariff in costs.tariffs:
        f = tariff.prices
        b = f.breakpoints
        if f.period is not None:
            base = t - ((t - b[0]) % f.period)  # start of the period that holds t
            local = t - base + b[0]
            i = int(np.searchsorted(b, local, side="right")) - 1
            start = base + (b[i] - b[0]) if i >= 0 else base
            nxt = base + (b[i + 1] - b[0]) if i + 1 < b.size else base + f.period
        else:
            i = int(np.searchsorted(b, t, side="right")) - 1
            start = float(b[i]) if i >= 0 else -np.inf
            nxt = float(b[i + 1]) if i + 1 < b.size else np.inf
        lo = max(lo, float(start))
        hi = min(hi, float(nxt))
    return lo, hi
