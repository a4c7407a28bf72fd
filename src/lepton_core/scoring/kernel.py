"""The scoring kernel compiled with numba: the same arithmetic as the numpy kernel, one loop over nodes.

Neighbours: ``lepton_core.scoring.score`` calls :func:`load` once and, where numba is installed, scores
through it; the numpy kernel there (``_score_numpy``) is the reference, and the tests hold the two
equal (same figures to rounding, same verdicts). Why compiled: at 500 candidates the numpy kernel is
~70 calls whose fixed cost (~1–3 µs each here) is the whole cost; one compiled pass is ~15 µs. The
extender's per-request budget against a bare endpoint (issue 3: ≥ 0.8 of its throughput) is smaller
than the numpy kernel alone (docs/notes/extender.md has the measurements).

Arithmetic is written in the numpy kernel's order so that results agree to the last bit except where
numpy's vectorized ``exp``/``log`` and the C library's differ (GPU busy fractions < 1, GPU shares): ulps.

The machine code is cached next to this file (numba's ``cache=True``), so only the first process after
an install pays the compilation (~2 s); :func:`load` returns None where numba is missing.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from lepton_core.compiled import HAVE_NUMBA
from lepton_core.compiled import jit as _jit
from lepton_core.compiled import jit_inline as _jit_inline
from lepton_core.scoring.inputs import COL, FloatArray, NodeCostTable, PodDemand
from lepton_core.scoring.policy import ScoringPolicy

# Rows of a result's float block (F) and bool block (B), shared with ``score``.
F_ROWS = (
    "cpu_utilization_now",
    "gpu_utilization_now",
    "cpu_utilization_after",
    "gpu_utilization_after",
    "cpu_requested_after",
    "gpu_requested_after",
    "share",
    "energy_cost_per_hour",
    "keep_alive_cost_per_hour",
    "overload_risk_cost_per_hour",
    "preference_cost_per_hour",
    "objective_per_hour",
    "delta_power_watts",
    "platform_now_watts",
    # Inputs and figures reports need (decision logs, filter reasons), kept so that a result never has
    # to hold its candidates' whole state rows: scoring reads the state block in place.
    "hardware_cost_per_hour",
    "operations_cost_per_hour",
    "power_now_watts",
    "telemetry_observed_at",
)
B_ROWS = (
    "cpu_fresh",
    "gpu_fresh",
    "fresh",
    "fits",
    "over_cpu",
    "over_gpu",
    "over_power_cap",
    "stale_rejected",
    "rejected",
    "safe",
)
F = {name: i for i, name in enumerate(F_ROWS)}
B = {name: i for i, name in enumerate(B_ROWS)}


def top_candidates(
    scores: NDArray[np.int64], objective: FloatArray, safe: NDArray[np.bool_], k: int
) -> NDArray[np.intp]:
    """Positions of the ``k`` best nodes, best first: highest score, then safe before unsafe, then lowest
    objective (what a decision log shows). Compiled where numba is installed."""
    k = min(k, int(scores.size))
    out = np.empty(k, dtype=np.intp)
    if HAVE_NUMBA:
        _top_k(scores, objective, safe, out)
        return out
    key = np.where(safe, objective, np.inf)
    picked = np.argpartition(key, k - 1)[:k].tolist() if scores.size > k else list(range(k))
    picked.sort(key=lambda i: (-int(scores[i]), float(key[i])))
    out[:] = picked
    return out


class CompiledKernel(Protocol):
    def score(
        self,
        demand: PodDemand,
        costs: NodeCostTable,
        now: float,
        policy: ScoringPolicy,
        *,
        block: FloatArray,
        candidates: NDArray[np.intp],
        f_block: FloatArray,
        b_block: NDArray[np.bool_],
        top: NDArray[np.intp],
        counts: NDArray[np.int64],
    ) -> NDArray[np.int64]: ...


def load() -> CompiledKernel | None:
    """The compiled kernel, or None when numba is not installed."""
    return _Kernel() if HAVE_NUMBA else None


class _Kernel:
    def score(
        self,
        demand: PodDemand,
        costs: NodeCostTable,
        now: float,
        policy: ScoringPolicy,
        *,
        block: FloatArray,
        candidates: NDArray[np.intp],
        f_block: FloatArray,
        b_block: NDArray[np.bool_],
        top: NDArray[np.intp],
        counts: NDArray[np.int64],
    ) -> NDArray[np.int64]:
        """Fill the result blocks, return the scores; ``top`` receives the best candidates (best first,
        as many as it holds) and ``counts`` (rejected, fresh) — one compiled call for all of it."""
        w = policy.weights
        d = demand
        scores = np.empty(candidates.size, dtype=np.int64)
        _score_all(
            block,
            candidates,
            costs._curve.ravel(),
            costs._segments,
            costs._inv_step,
            costs._grid,
            np.array(
                (
                    d.cpu_cores,
                    d.gpus,
                    d.memory_bytes,
                    d.busy_cpu_cores,
                    d.busy_gpus,
                    d.whole_gpus,
                    d.shared_gpu_fraction,
                    d.gpu_busy_fraction,
                    now,
                    policy.stale_after_seconds,
                    policy.soft_utilization,
                    policy.max_utilization,
                    1.0 if policy.fail_open else 0.0,
                    w.cost,
                    w.fixed_share,
                    w.keep_alive,
                    w.overload_risk,
                    w.balance,
                    w.pack,
                )
            ),
            f_block,
            b_block,
            scores,
            top,
            counts,
        )
        return scores


# Column and row numbers as plain module constants: numba freezes them into the machine code.
_LIM_C, _LIM_G, _LIM_M = COL["limit_cpu_cores"], COL["limit_gpus"], COL["limit_memory_bytes"]
_REQ_C, _REQ_G, _REQ_M = COL["requested_cpu_cores"], COL["requested_gpus"], COL["requested_memory_bytes"]
_INV_C, _INV_G, _INV_M = COL["inv_cpu_cores"], COL["inv_gpus"], COL["inv_memory_bytes"]
_SINV_C, _SINV_G, _SINV_M = COL["share_inv_cpu_cores"], COL["share_inv_gpus"], COL["share_inv_memory_bytes"]
_UTIL_C, _UTIL_G = COL["cpu_utilization"], COL["gpu_utilization"]
_PEND_C, _PEND_G = COL["pending_cpu_cores"], COL["pending_gpus"]
_OBS, _WORKLOAD, _AUTOSCALED = COL["telemetry_observed_at"], COL["workload_pods"], COL["autoscaled"]
_PRICE, _PUE_KW, _FIXED = COL["price_per_kwh"], COL["pue_per_kilowatt"], COL["fixed_cost_per_hour"]
_SPAN1, _CURVE_BASE, _EXPONENT = COL["gpu_span_watts"], COL["curve_base"], COL["gpu_exponent"]
_IDLE_TOTAL, _SPAN_TOTAL = COL["gpu_idle_watts_total"], COL["gpu_span_watts_total"]
_MEASURED, _CAP = COL["measured_power_watts"], COL["power_cap_watts"]
_HW, _OPS = COL["hardware_cost_per_hour"], COL["operations_cost_per_hour"]
_F_UNC, _F_UNG, _F_UAC, _F_UAG = (F[k] for k in F_ROWS[:4])
_F_RQC, _F_RQG, _F_SHARE, _F_ENERGY = (
    F["cpu_requested_after"],
    F["gpu_requested_after"],
    F["share"],
    F["energy_cost_per_hour"],
)
_F_KEEP, _F_RISK, _F_PREF = (
    F["keep_alive_cost_per_hour"],
    F["overload_risk_cost_per_hour"],
    F["preference_cost_per_hour"],
)
_F_OBJ, _F_DELTA, _F_PNOW = F["objective_per_hour"], F["delta_power_watts"], F["platform_now_watts"]
_F_HW, _F_OPS, _F_POWER, _F_OBS = (
    F["hardware_cost_per_hour"],
    F["operations_cost_per_hour"],
    F["power_now_watts"],
    F["telemetry_observed_at"],
)
_B_FC, _B_FG, _B_FRESH, _B_FITS = B["cpu_fresh"], B["gpu_fresh"], B["fresh"], B["fits"]
_B_OC, _B_OG, _B_CAP, _B_STALE, _B_REJ, _B_SAFE = (
    B["over_cpu"],
    B["over_gpu"],
    B["over_power_cap"],
    B["stale_rejected"],
    B["rejected"],
    B["safe"],
)


@_jit_inline
def _power_law(u: float, k: float) -> float:
    return math.exp(k * math.log(max(u, 1e-300)))


@_jit
def _segment_of(grid: FloatArray, base: float, u: float) -> int:  # pragma: no cover - compiled
    """The platform curve segment holding ``u`` on a grid with unequal steps (``_fill`` computes it
    itself when the steps are equal, the usual case)."""
    return int(np.searchsorted(grid, u, side="right")) - 1 + int(base)


@_jit
def _fill(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    block: FloatArray,
    candidates: NDArray[np.intp],
    curve: FloatArray,
    segments: int,
    inv_step: float,
    grid: FloatArray,
    p: FloatArray,
    f: FloatArray,
    b: NDArray[np.bool_],
) -> None:  # pragma: no cover - compiled; run through score_nodes and held equal to the numpy kernel
    d_c, d_g, d_m, busy_c, busy_g, whole, phi, gbusy, now = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
    stale, soft, max_u, fail_open = p[9], p[10], p[11], p[12] > 0.0
    w_cost, w_fixed, w_keep, w_risk, w_bal, w_pack = p[13], p[14], p[15], p[16], p[17], p[18]
    gpu_pod = d_g > 0.0
    inv_soft = 1.0 / (1.0 - soft)
    oldest_fresh = now - stale
    for i in range(candidates.size):
        r = candidates[i]  # the candidate's state row, read in place (nothing is copied, no view made)
        inv_c = block[r, _INV_C]
        inv_g = block[r, _INV_G]
        has_gpu = inv_g > 0.0
        age_ok = block[r, _OBS] >= oldest_fresh
        util_c = block[r, _UTIL_C]
        util_g = block[r, _UTIL_G]
        fresh_c = not math.isnan(util_c) and age_ok
        fresh_g = not math.isnan(util_g) and age_ok and has_gpu
        fresh = fresh_c and (fresh_g or not has_gpu)
        u_now_c = block[r, _PEND_C] * inv_c + util_c if fresh_c else block[r, _REQ_C] * inv_c
        u_now_g = block[r, _PEND_G] * inv_g + util_g if fresh_g else block[r, _REQ_G] * inv_g
        u_after_c = busy_c * inv_c + u_now_c
        u_after_g = busy_g * inv_g + u_now_g
        fits = block[r, _REQ_C] + d_c <= block[r, _LIM_C] and block[r, _REQ_G] + d_g <= block[r, _LIM_G]
        if d_m > 0.0:
            fits = fits and block[r, _REQ_M] + d_m <= block[r, _LIM_M]
        # The platform's power at u now and after, on its piecewise-linear curve (slopes after the
        # intercepts in ``curve``). Written out here rather than in a helper taking the arrays: numba
        # counts a reference for every array passed to a call, and per candidate that cost more than the
        # arithmetic (perf: a third of the kernel's time in NRT_incref/NRT_decref).
        base = block[r, _CURVE_BASE]
        cpu_now = min(u_now_c, 1.0)
        cpu_after = min(u_after_c, 1.0)
        j_now = int(cpu_now * inv_step + base) if inv_step else _segment_of(grid, base, cpu_now)
        j_after = int(cpu_after * inv_step + base) if inv_step else _segment_of(grid, base, cpu_after)
        p_now = curve[j_now + segments] * cpu_now + curve[j_now]
        delta = curve[j_after + segments] * cpu_after + curve[j_after] - p_now
        if whole > 0.0 and gbusy > 0.0:
            per_gpu = block[r, _SPAN1] * whole
            if gbusy < 1.0:
                per_gpu *= _power_law(gbusy, block[r, _EXPONENT])
            delta += per_gpu
        if phi > 0.0 and gbusy > 0.0:
            requested = block[r, _REQ_G]
            partial = requested - math.floor(requested)
            u0 = partial if partial + phi <= 1.0 + 1e-9 else 0.0
            k = block[r, _EXPONENT]
            delta += block[r, _SPAN1] * (_power_law(u0 + phi * gbusy, k) - _power_law(u0, k))
        price_wh = block[r, _PRICE] * block[r, _PUE_KW]
        energy = delta * price_wh
        share = 0.0
        asked = False
        if d_c > 0.0:
            share = d_c * block[r, _SINV_C]
            asked = True
        if d_m > 0.0:
            share = max(share, d_m * block[r, _SINV_M]) if asked else d_m * block[r, _SINV_M]
            asked = True
        if d_g > 0.0:
            share = max(share, d_g * block[r, _SINV_G]) if asked else d_g * block[r, _SINV_G]
        share = min(share, 1.0)
        fixed = block[r, _FIXED]
        objective = share * fixed
        objective *= w_fixed
        objective += energy
        objective *= w_cost
        power_model_now = block[r, _SPAN_TOTAL] * u_now_g + block[r, _IDLE_TOTAL] + p_now
        keep = 0.0
        if block[r, _WORKLOAD] <= 0.0 and block[r, _AUTOSCALED] > 0.0:
            keep = (1.0 - share) * fixed + power_model_now * price_wh
            if w_keep:
                objective += w_keep * keep
        req_after_c = (block[r, _REQ_C] + d_c) * inv_c
        req_after_g = (block[r, _REQ_G] + d_g) * inv_g
        excess = u_after_c - soft
        if gpu_pod:
            threshold = max(req_after_g, soft) if phi == 0.0 else soft
            excess = max(excess, u_after_g - threshold)
        risk = 0.0
        if w_risk and excess > 0.0:
            e = excess * inv_soft
            node_cost = (power_model_now + delta) * price_wh + fixed
            risk = e * e * node_cost
            objective += w_risk * risk
        pref = 0.0
        if w_bal or w_pack:
            alloc_after = max(req_after_c, req_after_g, (block[r, _REQ_M] + d_m) * block[r, _INV_M])
            load_after = min(max(alloc_after, u_after_c, u_after_g), 1.0)
            pref = (w_bal * load_after + w_pack * (1.0 - load_after)) * fixed
            objective += pref
        over_c = u_after_c > max(req_after_c, max_u) and fresh_c
        over_g = gpu_pod and u_after_g > max(req_after_g, max_u) and fresh_g
        rejected = over_c or over_g
        measured = block[r, _MEASURED]
        power_now = measured if (age_ok and not math.isnan(measured)) else power_model_now
        over_cap = False
        cap = block[r, _CAP]
        if not math.isnan(cap):
            over_cap = power_now + delta > cap
            rejected = rejected or over_cap
        stale_rejected = not fail_open and not fresh
        rejected = rejected or stale_rejected
        f[_F_UNC, i] = u_now_c
        f[_F_UNG, i] = u_now_g
        f[_F_UAC, i] = u_after_c
        f[_F_UAG, i] = u_after_g
        f[_F_RQC, i] = req_after_c
        f[_F_RQG, i] = req_after_g
        f[_F_SHARE, i] = share
        f[_F_ENERGY, i] = energy
        f[_F_KEEP, i] = keep
        f[_F_RISK, i] = risk
        f[_F_PREF, i] = pref
        f[_F_OBJ, i] = objective
        f[_F_DELTA, i] = delta
        f[_F_PNOW, i] = p_now
        f[_F_HW, i] = share * block[r, _HW]
        f[_F_OPS, i] = share * block[r, _OPS]
        f[_F_POWER, i] = power_now
        f[_F_OBS, i] = block[r, _OBS]
        b[_B_FC, i] = fresh_c
        b[_B_FG, i] = fresh_g
        b[_B_FRESH, i] = fresh
        b[_B_FITS, i] = fits
        b[_B_OC, i] = over_c
        b[_B_OG, i] = over_g
        b[_B_CAP, i] = over_cap
        b[_B_STALE, i] = stale_rejected
        b[_B_REJ, i] = rejected
        b[_B_SAFE, i] = math.isfinite(objective) and fits and not rejected


@_jit
def _normalize(
    objective: FloatArray, safe: NDArray[np.bool_], fresh: NDArray[np.bool_], out: NDArray[np.int64]
) -> None:  # pragma: no cover - compiled; held equal to score._normalize
    n = objective.size
    hi = -math.inf
    fresh_floor = math.inf
    any_safe = False
    all_fresh = True
    for i in range(n):
        if safe[i]:
            any_safe = True
            hi = max(hi, objective[i])
            if fresh[i]:
                fresh_floor = min(fresh_floor, objective[i])
        all_fresh = all_fresh and fresh[i]
    if not any_safe:
        out[:] = 0
        return
    lo = math.inf
    for i in range(n):
        c = objective[i] if safe[i] else hi
        if not all_fresh and not fresh[i] and fresh_floor < math.inf:
            c = max(c, fresh_floor)
        lo = min(lo, c)
    flat = hi - lo <= 1e-9 * max(abs(lo), abs(hi), 1e-12)
    for i in range(n):
        if not safe[i]:
            out[i] = 0
            continue
        if flat:
            top = 10
        else:
            c = objective[i]
            if not all_fresh and not fresh[i] and fresh_floor < math.inf:
                c = max(c, fresh_floor)
            y = hi - c
            y /= hi - lo
            y *= 9.0
            y += 1.0
            top = int(y)
        if not all_fresh:
            top = min(top, 10 if fresh[i] else 9)
        out[i] = top


@_jit_inline
def _ahead(score_i: int, key_i: float, score_j: int, key_j: float) -> bool:  # pragma: no cover - compiled
    """A node with (score, key) ``i`` ranks before one with ``j``: a higher score, then a lower key (the
    objective; inf for unsafe nodes, so they come last). Scalars only: see ``_fill`` on array arguments."""
    if score_i != score_j:
        return score_i > score_j
    return key_i < key_j


@_jit
def _top_k(
    scores: NDArray[np.int64], objective: FloatArray, safe: NDArray[np.bool_], out: NDArray[np.intp]
) -> None:  # pragma: no cover - compiled
    k = min(out.size, scores.size)
    if k == 0:
        return
    filled = 0
    for i in range(scores.size):
        s_i = scores[i]
        key_i = objective[i] if safe[i] else math.inf
        if filled == k:
            last = out[k - 1]
            if not _ahead(s_i, key_i, scores[last], objective[last] if safe[last] else math.inf):
                continue
        # Insert i, keeping out[:filled] best first.
        j = filled if filled < k else k - 1
        while j > 0:
            o = out[j - 1]
            if not _ahead(s_i, key_i, scores[o], objective[o] if safe[o] else math.inf):
                break
            out[j] = o
            j -= 1
        out[j] = i
        if filled < k:
            filled += 1


@_jit
def _score_all(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    block: FloatArray,
    candidates: NDArray[np.intp],
    curve: FloatArray,
    segments: int,
    inv_step: float,
    grid: FloatArray,
    p: FloatArray,
    f: FloatArray,
    b: NDArray[np.bool_],
    scores: NDArray[np.int64],
    top: NDArray[np.intp],
    counts: NDArray[np.int64],
) -> None:  # pragma: no cover - compiled; run through score_nodes and held equal to the numpy kernel
    """Everything a request needs from scoring in one call: the blocks, the scores, the best candidates
    and the counts (rejected, fresh) — each separate call from Python costs more than its arithmetic."""
    _fill(block, candidates, curve, segments, inv_step, grid, p, f, b)
    _normalize(f[_F_OBJ], b[_B_SAFE], b[_B_FRESH], scores)
    rejected = 0
    fresh = 0
    for i in range(scores.size):
        rejected += b[_B_REJ, i]
        fresh += b[_B_FRESH, i]
    counts[0] = rejected
    counts[1] = fresh
    _top_k(scores, f[_F_OBJ], b[_B_SAFE], top)
