"""The node-scoring function: marginal cost per hour of placing one pod on each candidate node.

Neighbours: inputs from ``lepton_core.scoring.inputs`` (built by the extender's snapshot and by the
simulator), policy from ``lepton_core.scoring.policy``, power and cost from ``lepton_core.models``. The
extender serves :func:`score_nodes` over HTTP; the simulator's ``lepton`` policy calls the very same
function. It is pure (``now`` is an argument) and vectorized over nodes.

For each candidate node, in money per hour (the profiles' currency):

* ``hardware``    = share × amortized hardware per hour, where share is the pod's dominant share of the
  node's allocatable (max of cpu, memory and GPU fractions, as in attribution);
* ``energy``      = ΔP_IT × PUE × price per kWh now, where ΔP_IT is the platform curve from the CPU load
  now to the load after, plus, per GPU the pod takes whole, one GPU from idle to its busy fraction
  (``P(u_busy) − P_idle``), plus its fractional GPU share added to one GPU (the node's partly
  allocated GPU when the share fits there, else an idle one). GPUs are allocated whole, so one busy GPU
  of eight costs a whole busy GPU, not an eighth of the node's GPUs on a convex curve;
* ``operations``  = share × operations per hour;
* ``keep_alive``  = on an empty, autoscaled node only: the rest of its fixed cost plus its idle energy,
  which the autoscaler would otherwise save by removing it;
* ``overload_risk`` = ((u after − threshold) / (1 − soft))² × the node's whole cost per hour, where
  ``u`` is the predicted CPU utilization, and for GPU pods the predicted GPU utilization, and the
  threshold is ``soft_utilization`` — for GPUs raised to the fraction of the node's GPUs requested
  after placement, because GPU requests (whole devices, or shares whose sum fit keeps within a device)
  are allocated exclusively: only measured load *beyond* requests can overload a GPU. CPU is shared
  by every pod and routinely used beyond requests, so its threshold is not raised;
* ``preference``  = the ``balance`` / ``pack`` presets' load term × the node's fixed cost per hour.

The objective is ``w.cost × (energy + w.fixed_share × (hardware + operations)) + w.keep_alive ×
keep_alive + w.overload_risk × overload_risk + preference``.

Utilization "now" is the measured value plus the expected busy load placed since the sample
(``pending_*``, burst compensation). Where telemetry is missing or older than ``stale_after_seconds``
the node is **fail-open**: its load is estimated from its requests (requested / allocatable, i.e. every
request fully busy), it is never filtered for utilization (unless ``fail_open`` is off), and its score is
capped at 9 and ranked no better than the cheapest fresh node, so a node we know little about never
gets the best score. The filter (``rejected``) uses the same thresholds as the risk term with
``max_utilization`` in place of ``soft_utilization``, plus the node's power cap.

Scores: safe nodes (fit by requests, not rejected) are mapped linearly from the objective: the cheapest
gets 10, the dearest 1 (``1 + floor(9 × (max − c) / (max − min))``); only nodes within 1e-9 of the
minimum get 10. Unsafe nodes get 0. Scores are ``int64`` in [0, 10], what kube-scheduler expects.

Speed: a request scores ~500 nodes, where each numpy call costs more than its arithmetic. The compiled
kernel (``kernel``) is one call that reads the candidates' state rows in place and also normalizes,
counts and ranks; the numpy kernel (the reference) takes the candidates' rows once and works on related
quantities as 2-D slices. Figures only reports need (marginal cost, power after, telemetry age) are
computed when read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lepton_core.scoring import kernel as _kernel
from lepton_core.scoring.inputs import (
    COL,
    HOT_COLUMNS,
    INV2,
    LIMIT3,
    PENDING2,
    REQ2,
    REQ3,
    UTIL2,
    FloatArray,
    NodeCostTable,
    NodeState,
    PodDemand,
    _power_law,
)
from lepton_core.scoring.policy import ScoringPolicy

MAX_SCORE = 10
"""kube-scheduler's MaxExtenderPriority."""
MAX_SCORE_WITHOUT_FRESH_DATA = 9
_EMPTY_INT = np.zeros(0, dtype=np.intp)

_OBS = COL["telemetry_observed_at"]
_WORKLOAD = COL["workload_pods"]
_AUTOSCALED = COL["autoscaled"]
_PRICE = COL["price_per_kwh"]
_PUE_KW = COL["pue_per_kilowatt"]
_FIXED = COL["fixed_cost_per_hour"]
_SPAN1 = COL["gpu_span_watts"]
_IDLE_TOTAL = COL["gpu_idle_watts_total"]
_SPAN_TOTAL = COL["gpu_span_watts_total"]
_EXPONENT = COL["gpu_exponent"]
_MEASURED = COL["measured_power_watts"]
_CURVE_BASE = COL["curve_base"]
_INV_MEM = COL["inv_memory_bytes"]
_CAP = COL["power_cap_watts"]
_REQ_GPU = COL["requested_gpus"]
_HW = COL["hardware_cost_per_hour"]
_OPS = COL["operations_cost_per_hour"]


# Rows of a result's float block (F) and bool block (B): one block each, so that keeping a few nodes'
# figures (the top candidates of a decision) is one ``take`` per block. Both kernels fill them.
_F_ROWS = _kernel.F_ROWS
_B_ROWS = _kernel.B_ROWS
_F = _kernel.F
_B = _kernel.B


class _FRow:
    def __init__(self, block: str, index: int, doc: str = "") -> None:
        self.block = block
        self.index = index
        self.__doc__ = doc

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return getattr(obj, self.block)[self.index]


class ScoreResult:
    """Per candidate node (same order as the candidates scored): the cost breakdown, predictions, the
    filter verdict and the score. Arrays are the scorer's own (later state updates do not change them);
    figures only reports need are computed when first read."""

    __slots__ = ("_b", "_counts", "_f", "_lazy", "max_utilization", "now", "scores", "stale_after_seconds", "top")

    cpu_utilization_now = _FRow("_f", _F["cpu_utilization_now"])
    gpu_utilization_now = _FRow("_f", _F["gpu_utilization_now"])
    cpu_utilization_after = _FRow("_f", _F["cpu_utilization_after"])
    gpu_utilization_after = _FRow("_f", _F["gpu_utilization_after"], "Predicted mean over the node's GPUs; 0 without.")
    share = _FRow("_f", _F["share"], "The pod's dominant share of allocatable (1 for a resource the node lacks).")
    energy_cost_per_hour = _FRow("_f", _F["energy_cost_per_hour"])
    keep_alive_cost_per_hour = _FRow("_f", _F["keep_alive_cost_per_hour"])
    overload_risk_cost_per_hour = _FRow("_f", _F["overload_risk_cost_per_hour"])
    preference_cost_per_hour = _FRow("_f", _F["preference_cost_per_hour"])
    objective_per_hour = _FRow("_f", _F["objective_per_hour"], "The weighted sum the scores are ranked by.")
    delta_power_watts = _FRow("_f", _F["delta_power_watts"], "Modelled IT power the pod adds.")
    platform_now_watts = _FRow("_f", _F["platform_now_watts"])
    hardware_cost_per_hour = _FRow("_f", _F["hardware_cost_per_hour"], "share × amortized hardware per hour.")
    operations_cost_per_hour = _FRow("_f", _F["operations_cost_per_hour"], "share × the node's operations per hour.")
    power_now_watts = _FRow("_f", _F["power_now_watts"], "IT power now: measured where fresh, else modelled.")
    telemetry_observed_at = _FRow("_f", _F["telemetry_observed_at"], "When the node was last measured (NaN: never).")
    fresh = _FRow("_b", _B["fresh"], "Every resource the node has was measured within stale_after_seconds.")
    fits = _FRow("_b", _B["fits"], "requested + demand <= allocatable (cpu, GPUs, memory when asked for).")
    over_power_cap = _FRow("_b", _B["over_power_cap"])
    stale_rejected = _FRow("_b", _B["stale_rejected"])
    rejected = _FRow("_b", _B["rejected"], "Filter verdict: over utilization or power cap, or stale (fail-closed).")
    safe = _FRow("_b", _B["safe"], "fits, not rejected, finite objective: eligible for a non-zero score.")

    _f: FloatArray
    _b: NDArray[np.bool_]
    scores: NDArray[np.int64]
    max_utilization: float
    stale_after_seconds: float
    now: float | FloatArray
    """When it was scored (Unix seconds); per node in a result joined from several (``concat``)."""
    _lazy: dict[str, FloatArray]
    top: NDArray[np.intp]
    """The best candidates ranked while scoring (``score_nodes(best=k)``), best first: highest score,
    then safe before unsafe, then lowest objective (``top_candidates``); empty when none were asked for."""
    _counts: NDArray[np.int64] | None

    def __init__(
        self,
        f: FloatArray,
        b: NDArray[np.bool_],
        scores: NDArray[np.int64],
        *,
        policy: ScoringPolicy,
        now: float,
        top: NDArray[np.intp] = _EMPTY_INT,
        counts: NDArray[np.int64] | None = None,
    ) -> None:
        self._f = f
        self._b = b
        self.scores = scores
        self.top = top
        self._counts = counts
        self.max_utilization = policy.max_utilization
        self.stale_after_seconds = policy.stale_after_seconds
        self.now = now
        self._lazy = {}

    def __len__(self) -> int:
        return int(self.scores.size)

    @property
    def rejected_count(self) -> int:
        """How many nodes filter rejects."""
        return int(np.count_nonzero(self.rejected)) if self._counts is None else int(self._counts[0])

    @property
    def fresh_count(self) -> int:
        """How many nodes have fresh telemetry."""
        return int(np.count_nonzero(self.fresh)) if self._counts is None else int(self._counts[1])

    @property
    def over_utilization(self) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self._b[_B["over_cpu"]] | self._b[_B["over_gpu"]]
        return out

    @property
    def over_utilization2(self) -> NDArray[np.bool_]:
        """(2, n): over the CPU threshold, over the GPU threshold."""
        return self._b[_B["over_cpu"] : _B["over_gpu"] + 1]

    @property
    def requested_fraction_after(self) -> FloatArray:
        """(2, n): fraction of the node's CPU and GPUs requested after placement (the filter's floor)."""
        return self._f[_F["cpu_requested_after"] : _F["gpu_requested_after"] + 1]

    # --- figures for reports, computed when first read -------------------------------------------------
    @property
    def marginal_cost_per_hour(self) -> FloatArray:
        """hardware + energy + operations + keep_alive: what placing the pod costs, unweighted."""
        got = self._lazy.get("marginal")
        if got is None:
            got = self._lazy["marginal"] = (
                self.hardware_cost_per_hour
                + self.energy_cost_per_hour
                + self.operations_cost_per_hour
                + self.keep_alive_cost_per_hour
            )
        return got

    @property
    def power_after_watts(self) -> FloatArray:
        """Predicted IT power after placement: measured now (where fresh) or modelled now, + ΔP."""
        got = self._lazy.get("power_after")
        if got is None:
            got = self._lazy["power_after"] = self.power_now_watts + self.delta_power_watts
        return got

    @property
    def telemetry_age_seconds(self) -> FloatArray:
        """``inf`` where the node never had telemetry."""
        got = self._lazy.get("age")
        if got is None:
            age = np.maximum(self.now - self.telemetry_observed_at, 0.0)
            age[np.isnan(age)] = np.inf
            got = self._lazy["age"] = age
        return got

    @property
    def valid_until(self) -> float:
        """Unix time until which scoring the same nodes from the same state gives this result: the moment
        the first fresh node's telemetry turns stale (``inf`` if none is fresh)."""
        fresh_obs = self.telemetry_observed_at[self.fresh]
        return float(fresh_obs.min()) + self.stale_after_seconds if fresh_obs.size else math.inf

    # --- explanations ---------------------------------------------------------------------------------
    def reject_reason(self, i: int) -> str | None:
        """Why filter rejects node ``i`` (``None`` when it passes): one line a human can act on."""
        if not self.rejected[i]:
            return None
        parts: list[str] = []
        requested = self.requested_fraction_after[:, i]
        for k, (which, after) in enumerate((("cpu", self.cpu_utilization_after), ("gpu", self.gpu_utilization_after))):
            if self.over_utilization2[k, i]:
                parts.append(
                    f"predicted {which} utilization {float(after[i]):.2f} > {self.max_utilization:.2f} "
                    f"and beyond what requests account for ({float(requested[k]):.2f})"
                )
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

    def take(self, indices: NDArray[np.intp]) -> ScoreResult:
        """These nodes' figures only (e.g. the top candidates kept for a decision log), as a new result."""
        out = object.__new__(ScoreResult)
        out._f = self._f.take(indices, axis=1)
        out._b = self._b.take(indices, axis=1)
        out.scores = self.scores.take(indices)
        out.top = _EMPTY_INT
        out._counts = None
        out.max_utilization = self.max_utilization
        out.stale_after_seconds = self.stale_after_seconds
        out.now = self.now if isinstance(self.now, float) else self.now.take(indices)
        out._lazy = {}
        return out

    @classmethod
    def concat(cls, results: Sequence[ScoreResult]) -> ScoreResult:
        """Several results of one policy as one, their nodes one after another, each node keeping the time
        it was scored at: what explaining many decisions at once (a decision-log flush) computes in one
        pass of array operations instead of one pass per decision."""
        if not results:
            raise ValueError("concat: no results")
        first = results[0]
        if any(
            (r.max_utilization, r.stale_after_seconds) != (first.max_utilization, first.stale_after_seconds)
            for r in results
        ):
            raise ValueError("concat: results of different scoring policies")
        out = object.__new__(cls)
        out._f = np.concatenate([r._f for r in results], axis=1)
        out._b = np.concatenate([r._b for r in results], axis=1)
        out.scores = np.concatenate([r.scores for r in results])
        out.top = _EMPTY_INT
        out._counts = None
        out.max_utilization = first.max_utilization
        out.stale_after_seconds = first.stale_after_seconds
        out.now = np.concatenate([np.broadcast_to(np.asarray(r.now, dtype=float), len(r)) for r in results])
        out._lazy = {}
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


def _power_now(
    rows: FloatArray, platform_now: FloatArray, u_gpu_now: FloatArray, now: float, stale: float
) -> FloatArray:
    """IT power now: measured where the node's telemetry is fresh, else modelled (see ``_model_now``)."""
    measured = rows[:, _MEASURED]
    ok = (rows[:, _OBS] >= now - stale) & ~np.isnan(measured)
    out: FloatArray = np.where(ok, measured, _model_now(rows, platform_now, u_gpu_now))
    return out


def _model_now(rows: FloatArray, platform_now: FloatArray, u_gpu_now: FloatArray) -> FloatArray:
    """Modelled IT power now. The mean GPU utilization is read as that fraction of the node's GPUs busy
    at full power (what whole-GPU jobs produce; for the convex GPU curves of the shipped profiles the
    most any spread of that load can draw, so a power cap is never underestimated)."""
    out: FloatArray = rows[:, _SPAN_TOTAL] * u_gpu_now
    out += rows[:, _IDLE_TOTAL]
    out += platform_now
    return out


def score_nodes(
    demand: PodDemand,
    state: NodeState,
    now: float,
    policy: ScoringPolicy | None = None,
    candidates: NDArray[np.intp] | None = None,
    *,
    best: int = 0,
) -> ScoreResult:
    """Score ``demand`` on every node of ``state`` (or on the nodes at ``candidates``) at Unix time ``now``.

    The result holds its own arrays: the figures and the few inputs reports need are written into its
    blocks, so later changes to ``state`` do not change it (the compiled kernel reads the candidates'
    state rows in place; nothing else is copied). ``best``: rank that many best candidates while scoring
    (``ScoreResult.top``: what a decision keeps; the compiled kernel does it in the same call)."""
    policy = policy or _DEFAULT_POLICY
    block = state.block
    n = block.shape[0] if candidates is None else candidates.size
    f_block = np.empty((len(_F_ROWS), n))
    b_block = np.empty((len(_B_ROWS), n), dtype=bool)
    if _compiled is not None and _use_compiled:
        idx = np.arange(n, dtype=np.intp) if candidates is None else candidates.astype(np.intp, copy=False)
        top = np.empty(min(best, n), dtype=np.intp)
        counts = np.empty(2, dtype=np.int64)
        scores = _compiled.score(
            demand,
            state.costs,
            now,
            policy,
            block=block,
            candidates=idx,
            f_block=f_block,
            b_block=b_block,
            top=top,
            counts=counts,
        )
        return ScoreResult(f_block, b_block, scores, policy=policy, now=now, top=top, counts=counts)
    rows = block.copy() if candidates is None else block.take(candidates, axis=0)
    scores = _score_numpy(demand, state.costs, now, policy, rows=rows, f_block=f_block, b_block=b_block)
    top = _kernel.top_candidates(scores, f_block[_F["objective_per_hour"]], b_block[_B["safe"]], best)
    return ScoreResult(f_block, b_block, scores, policy=policy, now=now, top=top)


def _score_numpy(
    demand: PodDemand,
    costs: NodeCostTable,
    now: float,
    policy: ScoringPolicy,
    *,
    rows: FloatArray,
    f_block: FloatArray,
    b_block: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """The reference kernel, in numpy: fills the result blocks, returns the scores. The compiled kernel
    (``kernel``) computes the same, node by node; tests hold the two equal."""
    w = policy.weights
    # Column-major copy of the hot columns: every input below is a contiguous row of it.
    x = np.ascontiguousarray(rows[:, :HOT_COLUMNS].T)
    n = x.shape[1]
    stale_limit = policy.stale_after_seconds

    # Freshness per resource: a value counts only when present and younger than the stale limit.
    # NaN observed_at (never measured) compares False, so such nodes are stale with an infinite age.
    # A node without GPUs has no GPU load, whatever an exporter says (its GPU value never counts).
    util2 = x[UTIL2]
    inv2 = x[INV2]
    fresh2 = b_block[_B["cpu_fresh"] : _B["gpu_fresh"] + 1]
    np.equal(util2, util2, out=fresh2)
    fresh2 &= x[_OBS] >= now - stale_limit
    has_gpu = inv2[1] > 0.0
    fresh2[1] &= has_gpu
    fresh = b_block[_B["fresh"]]
    np.logical_not(has_gpu, out=fresh)
    fresh |= fresh2[1]
    fresh &= fresh2[0]

    # Load now and after placement, (cpu, gpu) each: measured + burst compensation where fresh,
    # requests (all busy) otherwise.
    u = f_block[: _F["gpu_utilization_after"] + 1].reshape(2, 2, n)
    u_now2, u_after2 = u
    np.multiply(x[REQ2], inv2, out=u_now2)
    measured2 = x[PENDING2] * inv2
    measured2 += util2
    np.copyto(u_now2, measured2, where=fresh2)
    np.multiply(demand.busy2, inv2, out=u_after2)
    u_after2 += u_now2

    # Fit by requests (kube-scheduler checks this too; our view adds placements it has not bound yet).
    # Memory is checked only when asked for (nodes may be over-committed on memory by other pods).
    k = 3 if demand.memory_bytes > 0.0 else 2
    fits = b_block[_B["fits"]]
    np.logical_and.reduce(x[REQ3][:k] + demand.demand3[:k] <= x[LIMIT3][:k], axis=0, out=fits)

    # ΔP, IT watts. CPU: the platform curve from now to after (both looked up in one call).
    platform = costs.platform_watts_at(np.minimum(u[:, 0], 1.0), x[_CURVE_BASE])
    platform_now = f_block[_F["platform_now_watts"]]
    platform_now[:] = platform[0]
    delta_watts = f_block[_F["delta_power_watts"]]
    np.subtract(platform[1], platform_now, out=delta_watts)
    # GPUs: each whole GPU the pod takes goes from idle to its busy fraction; the fractional share lands
    # on one GPU, the node's partly allocated one when it fits there (best fit), else an idle one.
    f = demand.gpu_busy_fraction
    if demand.whole_gpus > 0.0 and f > 0.0:
        per_gpu = x[_SPAN1] * demand.whole_gpus
        if f < 1.0:
            per_gpu *= _power_law(np.full(n, f), rows[:, _EXPONENT])
        delta_watts += per_gpu
    phi = demand.shared_gpu_fraction
    if phi > 0.0 and f > 0.0:
        requested = x[_REQ_GPU]
        partial = requested - np.floor(requested)
        u0 = np.where(partial + phi <= 1.0 + 1e-9, partial, 0.0)
        exponent = rows[:, _EXPONENT]
        delta_watts += x[_SPAN1] * (_power_law(u0 + phi * f, exponent) - _power_law(u0, exponent))
    price_per_watt_hour = x[_PRICE] * x[_PUE_KW]
    energy = f_block[_F["energy_cost_per_hour"]]
    np.multiply(delta_watts, price_per_watt_hour, out=energy)

    # Fixed costs: the pod's dominant share (a requested resource the node lacks has share_inv = inf).
    fixed = x[_FIXED]
    share = f_block[_F["share"]]
    if demand.share_demand.size:
        np.maximum.reduce(x[demand.share_columns] * demand.share_demand, axis=0, out=share)
        np.minimum(share, 1.0, out=share)
    else:
        share[:] = 0.0
    objective = f_block[_F["objective_per_hour"]]
    np.multiply(share, fixed, out=objective)
    objective *= w.fixed_share
    objective += energy
    objective *= w.cost

    # Keep-alive of empty autoscaled nodes (their fixed cost is what the autoscaler would save).
    empty_autoscaled = x[_WORKLOAD] <= 0.0
    empty_autoscaled &= x[_AUTOSCALED] > 0.0
    power_now_model: FloatArray | None = None
    keep_alive = f_block[_F["keep_alive_cost_per_hour"]]
    if np.count_nonzero(empty_autoscaled):
        power_now_model = _model_now(rows, platform_now, u_now2[1])
        np.subtract(1.0, share, out=keep_alive)
        keep_alive *= fixed
        keep_alive += power_now_model * price_per_watt_hour
        keep_alive *= empty_autoscaled
        if w.keep_alive:
            objective += w.keep_alive * keep_alive
    else:
        keep_alive[:] = 0.0

    # What requests account for after placement, (cpu, gpu) fractions of allocatable: load up to this is
    # capacity the scheduler promised (its fit check admits requests up to 100 %), never overload.
    requested_after2 = f_block[_F["cpu_requested_after"] : _F["gpu_requested_after"] + 1]
    np.add(x[REQ2], demand.demand3[:2], out=requested_after2)
    requested_after2 *= inv2
    gpu_pod = demand.gpus > 0.0
    # Overload risk, a soft preference: above the soft threshold, quadratic, times the node's whole cost
    # per hour. CPU and a shared GPU are contended by every pod on them, so their threshold stays at
    # soft_utilization; whole GPUs are exclusive, so theirs rises to the requested fraction.
    soft = policy.soft_utilization
    excess = u_after2[0] - soft
    if gpu_pod:
        gpu_threshold = np.maximum(requested_after2[1], soft) if demand.shared_gpu_fraction == 0.0 else soft
        np.maximum(excess, u_after2[1] - gpu_threshold, out=excess)
    risk = f_block[_F["overload_risk_cost_per_hour"]]
    if w.overload_risk and excess.max() > 0.0:
        np.maximum(excess, 0.0, out=excess)
        excess *= 1.0 / (1.0 - soft)
        if power_now_model is None:
            power_now_model = _model_now(rows, platform_now, u_now2[1])
        node_cost = power_now_model + delta_watts
        node_cost *= price_per_watt_hour
        node_cost += fixed
        np.multiply(excess, excess, out=risk)
        risk *= node_cost
        objective += w.overload_risk * risk
    else:
        risk[:] = 0.0

    preference = f_block[_F["preference_cost_per_hour"]]
    if w.balance or w.pack:
        alloc_after = np.maximum.reduce((x[REQ3] + demand.demand3) * _inv3(x, rows), axis=0)
        load_after = np.minimum(np.maximum(alloc_after, u_after2.max(axis=0)), 1.0)
        np.multiply(w.balance * load_after + w.pack * (1.0 - load_after), fixed, out=preference)
        objective += preference
    else:
        preference[:] = 0.0

    # Filter: hard facts only, from fresh measurements (fail-open): predicted load beyond both the
    # threshold and what requests account for (the CPU, and the GPUs for GPU pods).
    max_u = policy.max_utilization
    over2 = b_block[_B["over_cpu"] : _B["over_gpu"] + 1]
    np.greater(u_after2, np.maximum(requested_after2, max_u), out=over2)
    if not gpu_pod:
        over2[1] = False
    over2 &= fresh2
    rejected = b_block[_B["rejected"]]
    np.logical_or(over2[0], over2[1], out=rejected)
    over_cap = b_block[_B["over_power_cap"]]
    power_now = f_block[_F["power_now_watts"]]
    power_now[:] = _power_now(rows, platform_now, u_now2[1], now, stale_limit)
    cap = rows[:, _CAP]
    if np.count_nonzero(np.isnan(cap)) < n:  # some candidate has a power cap (NaN: none)
        np.greater(power_now + delta_watts, cap, out=over_cap)
        rejected |= over_cap
    else:
        over_cap[:] = False
    stale_rejected = b_block[_B["stale_rejected"]]
    if policy.fail_open:
        stale_rejected[:] = False
    else:
        np.logical_not(fresh, out=stale_rejected)
        rejected |= stale_rejected
    safe = b_block[_B["safe"]]
    np.isfinite(objective, out=safe)
    safe &= fits
    safe &= ~rejected

    # Inputs reports need, copied into the result (it keeps no state rows).
    np.multiply(share, rows[:, _HW], out=f_block[_F["hardware_cost_per_hour"]])
    np.multiply(share, rows[:, _OPS], out=f_block[_F["operations_cost_per_hour"]])
    f_block[_F["telemetry_observed_at"]] = rows[:, _OBS]

    return _normalize(objective, safe, fresh)


def _inv3(x: FloatArray, rows: FloatArray) -> FloatArray:
    """(3, n) 1 / allocatable of cpu, GPUs, memory (0 where none)."""
    out: FloatArray = np.concatenate((x[INV2], rows[:, _INV_MEM][None, :]))
    return out


def normalize_scores(objective: FloatArray, safe: NDArray[np.bool_], fresh: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Integer scores 0–10 from objectives (see the module docstring); exposed so a caller that kept a
    result can rank a subset of its nodes exactly as :func:`score_nodes` would rank that subset."""
    return _normalize(objective, safe, fresh)


def _normalize(objective: FloatArray, safe: NDArray[np.bool_], fresh: NDArray[np.bool_]) -> NDArray[np.int64]:
    n = objective.size
    n_safe = np.count_nonzero(safe)
    if not n_safe:
        return np.zeros(n, dtype=np.int64)
    # Unsafe nodes are set to the dearest safe value so the arithmetic stays finite; they get 0 below.
    if n_safe == n:
        c = objective
    else:
        c = np.where(safe, objective, -np.inf)
        np.copyto(c, c.max(), where=~safe)
    hi = float(c.max())
    # A node without fresh telemetry ranks no better than the cheapest fresh node (and the cap below
    # puts it under that node): a cheap-looking node we cannot see must not attract the pod.
    all_fresh = np.count_nonzero(fresh) == n
    if not all_fresh:
        fresh_safe = safe & fresh
        if np.count_nonzero(fresh_safe):
            c = np.where(fresh, c, np.maximum(c, objective[fresh_safe].min()))
    lo = float(c.min())
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi), 1e-12):
        top = np.full(n, MAX_SCORE, dtype=np.int64)
    else:
        # 1 + trunc(9x) with x = (hi − c) / (hi − lo) in [0, 1], 1 only at the minimum: only the
        # cheapest reach 10. (trunc(y + 1) = 1 + trunc(y) for y >= 0.)
        y = hi - c
        y /= hi - lo  # exactly 1.0 at the minimum (x / x), so the cheapest get exactly 10
        y *= MAX_SCORE - 1
        y += 1.0
        top = y.astype(np.int64)
    if not all_fresh:
        # Missing or stale telemetry never earns the best score.
        np.minimum(top, MAX_SCORE - 1 + fresh, out=top)
    if n_safe != n:
        top *= safe
    return top


_DEFAULT_POLICY = ScoringPolicy()
_compiled = _kernel.load()
"""The compiled kernel, or None where numba is not installed (then the numpy kernel serves)."""
_use_compiled = True
"""Tests switch this off to run the numpy reference kernel."""
