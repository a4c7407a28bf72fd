"""The node-scoring function: marginal cost per hour of placing one pod on each candidate node.

Neighbours: inputs from ``lepton_core.scoring.inputs`` (built by the extender's snapshot and by the
simulator), policy from ``lepton_core.scoring.policy``, power and cost from ``lepton_core.models``. The
extender serves :func:`score_nodes` over HTTP; the simulator's ``lepton`` policy calls the very same
function. It is pure (``now`` is an argument) and vectorized over nodes.

For each candidate node, in money per hour (the profiles' currency):

* ``hardware``    = share × amortized hardware per hour, where share is the pod's dominant share of the
  node's allocatable (max of cpu, memory and GPU fractions, as in attribution);
* ``energy``      = (P_IT(u after) − P_IT(u now)) × PUE × price per kWh now;
* ``operations``  = share × operations per hour;
* ``keep_alive``  = on an empty, autoscaled node only: the rest of its fixed cost plus its idle energy,
  which the autoscaler would otherwise save by removing it;
* ``overload_risk`` = ((u_max after − soft) / (1 − soft))² × the node's whole cost per hour, above
  ``soft_utilization``: work on an overloaded node slows down, wasting what the node costs;
* ``preference``  = the ``balance`` / ``pack`` presets' load term × the node's fixed cost per hour.

Utilization "now" is the measured value plus the expected busy load placed since the sample
(``pending_*``, burst compensation). Where telemetry is missing or older than ``stale_after_seconds``
the node is **fail-open**: its load is estimated from its requests (requested / allocatable, i.e. every
request fully busy), it is never filtered for utilization (unless ``fail_open`` is off), and its score is
capped at 9 and ranked no better than the cheapest fresh node, so a node we know little about never
gets the best score.

Scores: safe nodes (fit by requests, not rejected) are mapped linearly from the objective: the cheapest
gets 10, the dearest 1 (``1 + floor(9 × (max − c) / (max − min))``); only nodes within 1e-9 of the
minimum get 10. Unsafe nodes get 0. Scores are ``int64`` in [0, 10], what kube-scheduler expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lepton_core.scoring.inputs import ALLOC3, INV3, PENDING2, REQ3, ROW, UTIL2, FloatArray, NodeState, PodDemand
from lepton_core.scoring.policy import ScoringPolicy

MAX_SCORE = 10
"""kube-scheduler's MaxExtenderPriority."""
MAX_SCORE_WITHOUT_FRESH_DATA = 9
_WATTS_PER_KW = 1000.0


@dataclass(frozen=True, slots=True, eq=False)
class ScoreResult:
    """Per candidate node (same order as the ``NodeState`` scored): the cost breakdown, predictions,
    the filter verdict and the score."""

    hardware_cost_per_hour: FloatArray
    energy_cost_per_hour: FloatArray
    operations_cost_per_hour: FloatArray
    keep_alive_cost_per_hour: FloatArray
    overload_risk_cost_per_hour: FloatArray
    preference_cost_per_hour: FloatArray
    marginal_cost_per_hour: FloatArray
    """hardware + energy + operations + keep_alive: what placing the pod costs, unweighted."""
    objective_per_hour: FloatArray
    """The weighted sum the scores are ranked by."""
    cpu_utilization_now: FloatArray
    gpu_utilization_now: FloatArray
    cpu_utilization_after: FloatArray
    gpu_utilization_after: FloatArray
    """Predicted after placement; 0 on nodes without GPUs."""
    power_after_watts: FloatArray
    """Predicted IT power after placement (measured now + modelled ΔP where measured)."""
    telemetry_age_seconds: FloatArray
    """``inf`` where the node never had telemetry."""
    fresh: NDArray[np.bool_]
    """Every resource the node has was measured within ``stale_after_seconds``."""
    fits: NDArray[np.bool_]
    """requested + demand ≤ allocatable for cpu, memory and GPUs."""
    over_utilization: NDArray[np.bool_]
    over_power_cap: NDArray[np.bool_]
    stale_rejected: NDArray[np.bool_]
    rejected: NDArray[np.bool_]
    """Filter verdict: over utilization, over the power cap, or stale with fail-open off."""
    safe: NDArray[np.bool_]
    """fits and not rejected (and a finite objective): eligible for a non-zero score."""
    scores: NDArray[np.int64]
    max_utilization: float

    def __len__(self) -> int:
        return int(self.scores.size)

    def reject_reason(self, i: int) -> str | None:
        """Why filter rejects node ``i`` (``None`` when it passes): one line a human can act on."""
        if not self.rejected[i]:
            return None
        parts: list[str] = []
        if self.over_utilization[i]:
            u = max(float(self.cpu_utilization_after[i]), float(self.gpu_utilization_after[i]))
            which = "gpu" if self.gpu_utilization_after[i] >= self.cpu_utilization_after[i] else "cpu"
            parts.append(f"predicted {which} utilization {u:.2f} > {self.max_utilization:.2f}")
        if self.over_power_cap[i]:
            parts.append(f"predicted power {float(self.power_after_watts[i]):.0f} W over the node's power cap")
        if self.stale_rejected[i]:
            age = float(self.telemetry_age_seconds[i])
            parts.append("no telemetry" if math.isinf(age) else f"telemetry stale ({age:.0f} s old)")
        return "; ".join(parts)

    def breakdown(self, i: int) -> dict[str, Any]:
        """One node's figures as plain JSON-ready values (for logs and ``/debug/decisions``)."""
        return self.breakdowns(np.array([i], dtype=np.intp))[0]

    def breakdowns(self, indices: NDArray[np.intp]) -> list[dict[str, Any]]:
        """:meth:`breakdown` for several nodes, gathered in one numpy call per figure."""
        values = np.stack([getattr(self, attr)[indices] for attr in _BREAKDOWN.values()]).round(6).T.tolist()
        out = []
        for i, row in zip(indices.tolist(), values, strict=True):
            d: dict[str, Any] = {"score": int(self.scores[i])}
            d.update({k: (v if math.isfinite(v) else None) for k, v in zip(_BREAKDOWN, row, strict=True)})
            d["fresh"] = bool(self.fresh[i])
            d["fits"] = bool(self.fits[i])
            d["rejected"] = self.reject_reason(i)
            out.append(d)
        return out


_BREAKDOWN = {
    "hardware": "hardware_cost_per_hour",
    "energy": "energy_cost_per_hour",
    "operations": "operations_cost_per_hour",
    "keep_alive": "keep_alive_cost_per_hour",
    "overload_risk": "overload_risk_cost_per_hour",
    "preference": "preference_cost_per_hour",
    "marginal_cost_per_hour": "marginal_cost_per_hour",
    "objective_per_hour": "objective_per_hour",
    "cpu_utilization_after": "cpu_utilization_after",
    "gpu_utilization_after": "gpu_utilization_after",
    "power_after_watts": "power_after_watts",
    "telemetry_age_seconds": "telemetry_age_seconds",
}
"""Breakdown key -> ScoreResult array."""


def score_nodes(
    demand: PodDemand,
    state: NodeState,
    now: float,
    policy: ScoringPolicy | None = None,
    candidates: NDArray[np.intp] | None = None,
) -> ScoreResult:
    """Score ``demand`` on every node of ``state`` (or on ``state.take(candidates)``) at Unix time ``now``."""
    # Written for few numpy calls: at 500 nodes each call costs more than its arithmetic, so (cpu, gpu)
    # pairs and (cpu, gpu, memory) triples are computed as 2-D slices of the state's block.
    policy = policy or _DEFAULT_POLICY
    if candidates is not None:
        state = state.take(candidates)
    w = policy.weights
    block = state.block
    n = block.shape[1]
    costs = state.costs
    inv3 = block[INV3]
    inv2 = inv3[:2]
    has_gpu = inv3[1] > 0.0

    # Freshness per resource: a value counts only when present and younger than the stale limit.
    # NaN observed_at (never measured) compares False, so such nodes are stale with an infinite age.
    age = np.maximum(now - block[ROW["telemetry_observed_at"]], 0.0)
    age_ok = age <= policy.stale_after_seconds
    util2 = block[UTIL2]
    fresh2 = age_ok & ~np.isnan(util2)
    cpu_fresh, gpu_fresh = fresh2
    fresh = cpu_fresh & (gpu_fresh | ~has_gpu)

    # Load now: measured + burst compensation where fresh, requests (all busy) otherwise. NaN in the
    # branch np.where does not pick is harmless.
    req3 = block[REQ3]
    u_now2 = np.where(fresh2, util2 + block[PENDING2] * inv2, req3[:2] * inv2)
    u_now2[1] *= has_gpu  # a node without GPUs has no GPU load, whatever an exporter says
    u_after2 = u_now2 + np.array(((demand.busy_cpu_cores,), (demand.busy_gpus,))) * inv2

    # Fit by requests (kube-scheduler checks this too; our view adds placements it has not bound yet).
    # Memory is checked only when asked for (nodes may be over-committed on memory by other pods).
    rows = 3 if demand.memory_bytes > 0.0 else 2
    d3 = np.array(((demand.cpu_cores,), (demand.gpus,), (demand.memory_bytes,)))
    alloc3 = block[ALLOC3]
    fits = (req3[:rows] + d3[:rows] <= alloc3[:rows] * (1.0 + 1e-9) + 1e-9).all(axis=0)

    # Power (IT watts; PUE applies to cost, caps to IT power). ΔP is evaluated only for the resources
    # the pod loads: most pods load one kind.
    uc_now2 = np.minimum(np.maximum(u_now2, 0.0), 1.0)
    platform_now = costs.platform_watts(uc_now2[0])
    gpu_frac_now = costs.gpu_dynamic_fraction(uc_now2[1])
    gpu_span = costs.gpu_span_watts_total
    p_now_model = platform_now + costs.gpu_idle_watts_total + gpu_span * gpu_frac_now
    if demand.busy_cpu_cores > 0.0 or demand.busy_gpus > 0.0:
        uc_after2 = np.minimum(u_after2, 1.0)
        delta_watts = np.zeros(n)
        if demand.busy_cpu_cores > 0.0:
            delta_watts += costs.platform_watts(uc_after2[0]) - platform_now
        if demand.busy_gpus > 0.0:
            delta_watts += gpu_span * (costs.gpu_dynamic_fraction(uc_after2[1]) - gpu_frac_now)
        np.maximum(delta_watts, 0.0, out=delta_watts)
    else:
        delta_watts = np.zeros(n)
    p_after_model = p_now_model + delta_watts
    measured = block[ROW["measured_power_watts"]]
    power_after = np.where(age_ok & ~np.isnan(measured), measured, p_now_model) + delta_watts
    price_per_watt_hour = block[ROW["price_per_kwh"]] * costs.pue * (1.0 / _WATTS_PER_KW)

    # Money per hour. Asking for a resource the node lacks counts as taking the whole node.
    share = np.minimum(np.where(inv3 > 0.0, d3 * inv3, (d3 > 0.0) * 1.0).max(axis=0), 1.0)
    hw_rate = costs.hardware_cost_per_hour
    ops_rate = costs.operations_cost_per_hour
    fixed = hw_rate + ops_rate
    hardware = share * hw_rate
    operations = share * ops_rate
    energy = delta_watts * price_per_watt_hour
    empty_autoscaled = state.autoscaled & (block[ROW["workload_pods"]] <= 0.0)
    if empty_autoscaled.any():
        keep_alive = np.where(empty_autoscaled, (1.0 - share) * fixed + p_now_model * price_per_watt_hour, 0.0)
    else:
        keep_alive = np.zeros(n)
    u_max_after = u_after2.max(axis=0)
    excess = np.maximum(u_max_after - policy.soft_utilization, 0.0) * (1.0 / (1.0 - policy.soft_utilization))
    risk = excess * excess * (fixed + p_after_model * price_per_watt_hour)
    if w.balance or w.pack:
        alloc_after = ((req3 + d3) * inv3).max(axis=0)
        load_after = np.minimum(np.maximum(alloc_after, u_max_after), 1.0)
        preference = (w.balance * load_after + w.pack * (1.0 - load_after)) * fixed
    else:
        preference = np.zeros(n)
    base = hardware + energy + operations
    marginal = base + keep_alive
    objective = w.cost * base + w.keep_alive * keep_alive + w.overload_risk * risk + preference

    # Filter: hard facts only, and only from fresh measurements (fail-open).
    over2 = fresh2 & (u_after2 > policy.max_utilization)
    over_util = over2[0] | (over2[1] & has_gpu) if demand.gpus > 0.0 else over2[0]
    over_cap = power_after > block[ROW["power_cap_watts"]]  # NaN cap (none) compares False
    stale_rejected = ~fresh if not policy.fail_open else np.zeros(n, dtype=bool)
    rejected = over_util | over_cap | stale_rejected
    safe = fits & ~rejected & np.isfinite(objective)

    scores = _normalize(objective, safe, fresh)
    age[np.isnan(age)] = np.inf
    u_cpu_now, u_gpu_now = u_now2
    u_cpu_after, u_gpu_after = u_after2
    return ScoreResult(
        hardware_cost_per_hour=hardware,
        energy_cost_per_hour=energy,
        operations_cost_per_hour=operations,
        keep_alive_cost_per_hour=keep_alive,
        overload_risk_cost_per_hour=risk,
        preference_cost_per_hour=preference,
        marginal_cost_per_hour=marginal,
        objective_per_hour=objective,
        cpu_utilization_now=u_cpu_now,
        gpu_utilization_now=u_gpu_now,
        cpu_utilization_after=u_cpu_after,
        gpu_utilization_after=u_gpu_after,
        power_after_watts=power_after,
        telemetry_age_seconds=age,
        fresh=fresh,
        fits=fits,
        over_utilization=over_util,
        over_power_cap=over_cap,
        stale_rejected=stale_rejected,
        rejected=rejected,
        safe=safe,
        scores=scores,
        max_utilization=policy.max_utilization,
    )


def _normalize(objective: FloatArray, safe: NDArray[np.bool_], fresh: NDArray[np.bool_]) -> NDArray[np.int64]:
    if not safe.any():
        return np.zeros(objective.shape, dtype=np.int64)
    # Unsafe nodes are set to the dearest safe value so the arithmetic stays finite; they get 0 below.
    hi = float(np.where(safe, objective, -np.inf).max())
    c = np.where(safe, objective, hi)
    # A node without fresh telemetry ranks no better than the cheapest fresh node (and the cap below
    # puts it under that node): a cheap-looking node we cannot see must not attract the pod.
    fresh_floor = float(np.where(safe & fresh, objective, np.inf).min())
    if fresh_floor < np.inf and not fresh.all():
        c = np.where(fresh, c, np.maximum(c, fresh_floor))
    lo = float(c.min())
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi), 1e-12):
        top = np.full(objective.shape, MAX_SCORE, dtype=np.int64)
    else:
        # 1 + trunc(9x) with x = 1 only at the minimum: only the cheapest reach 10.
        top = 1 + ((hi - c) * ((MAX_SCORE - 1) / (hi - lo))).astype(np.int64)
    # Missing or stale telemetry never earns the best score; unsafe nodes get 0.
    np.minimum(top, MAX_SCORE - 1 + fresh, out=top)
    out: NDArray[np.int64] = np.where(safe, top, 0)
    return out


_DEFAULT_POLICY = ScoringPolicy()
