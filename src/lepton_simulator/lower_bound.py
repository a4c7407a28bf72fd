"""A lower bound on the energy cost (and energy) of running a trace: no policy can do better.

Neighbours: ``lepton_simulator.cli`` computes it after the replays (it needs their start times) from the
``Scenario`` and the node power models; ``lepton_simulator.report`` prints it beside the policies.

How it is computed (perfect packing, every job at its most efficient feasible node):

* **Dynamic power.** Placing a worker raises its node's power by at least its *minimum increment*: the
  flattest slope of the node's platform curve × its CPU fraction, plus, per GPU it takes, the smallest
  rise of ``idle + (max − idle)·u^k`` by its GPU share (``δ^k`` for convex curves; a whole GPU exactly
  ``max − idle``), × PUE. Power is the sum of these increments in any order, so each job costs at least
  its increment on the cheapest node class it fits (GPU model constraints respected) for its duration.
* **Idle power.** ``static``: every node idles for at least [first arrival, last possible completion].
  ``autoscaled``: powered capacity must hold the running jobs, so idle power at any time is at least
  ``λ_r × demand_r`` with ``λ_r`` the lowest idle watts per unit of resource r over node classes; the
  resource r with the largest total is used (a fractional bin-packing relaxation).
* **Price.** Every job's power is priced over the window it ran in. Jobs may wait, so the bound takes the
  cheapest window among all start times between submission and the latest start any replayed policy
  gave it. Prices can be negative (CAISO has such hours), and there more power costs *less*; so the terms
  above are priced at the positive part of the tariff, and the largest credit any replay earned in
  negative hours (``ReplayResult.negative_price_credit``) is subtracted. That keeps it a bound for every
  replayed policy, and costs little where negative hours are rare.

Energy (kWh) uses the same terms without prices. Jobs that some replay never placed are left out (that
replay spent nothing on them), so the bound holds for every replayed policy; ``jobs_counted`` says how
many jobs it covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.power import NodePowerModel
from lepton_core.models.stepfunction import StepFunction
from lepton_core.units import JOULES_PER_KWH
from lepton_simulator.scenario import Scenario
from lepton_simulator.settings import Lifecycle
from lepton_simulator.trace import GPU_MILLI_PER_GPU

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LowerBound:
    energy_cost: float
    energy_kwh: float
    jobs_counted: int

    def as_dict(self) -> dict[str, float | int]:
        return {"energy_cost": self.energy_cost, "energy_kwh": self.energy_kwh, "jobs_counted": self.jobs_counted}


@dataclass(frozen=True, slots=True)
class _Class:
    """Identical nodes (same shape, power model and tariff) are one class."""

    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str
    tariff: int
    power: NodePowerModel
    count: int


def _classes(scenario: Scenario) -> list[_Class]:
    cat = scenario.catalog
    groups: dict[tuple[int, int, int, int, str, int], int] = {}
    first: dict[tuple[int, int, int, int, str, int], int] = {}
    for i, spec in enumerate(cat.specs):
        key = (
            id(cat.power_models[i]),
            spec.cpu_milli,
            spec.memory_mib,
            spec.gpu,
            spec.gpu_model,
            int(cat.tariff_index[i]),
        )
        groups[key] = groups.get(key, 0) + 1
        first.setdefault(key, i)
    out = []
    for key, count in groups.items():
        i = first[key]
        spec = cat.specs[i]
        out.append(
            _Class(
                spec.cpu_milli,
                spec.memory_mib,
                spec.gpu,
                spec.gpu_model,
                int(cat.tariff_index[i]),
                cat.power_models[i],
                count,
            )
        )
    return out


def _min_slope(power: NodePowerModel) -> float:
    """The flattest slope of the platform curve, in watts per unit of utilization."""
    u = power.platform.utilization
    w = power.platform.watts
    return float(min((w1 - w0) / (u1 - u0) for (u0, w0), (u1, w1) in pairwise(zip(u, w, strict=True))))


def _gpu_rise(power: NodePowerModel, share: float) -> float:
    """Smallest rise of one GPU's power when its utilization rises by ``share`` (anywhere in [0, 1])."""
    g = power.gpu
    if g is None or share <= 0.0:
        return 0.0
    k = g.exponent
    # Convex curves (k >= 1) rise least from 0, concave ones least at the top.
    return float((g.max_watts - g.idle_watts) * min(share**k, 1.0 - (1.0 - share) ** k))


def _positive_part(fn: StepFunction) -> StepFunction:
    return StepFunction(fn.breakpoints, np.maximum(fn.values, 0.0), end=fn.end, period=fn.period)


def _breakpoints_in(fn: StepFunction, lo: float, hi: float) -> FloatArray:
    b = fn.breakpoints
    if fn.period is None:
        return b[(b >= lo) & (b <= hi)]
    p = fn.period
    k0 = int(np.floor((lo - b[0]) / p))
    k1 = int(np.floor((hi - b[0]) / p))
    all_b = (b[None, :] + p * np.arange(k0, k1 + 1)[:, None]).ravel()
    return all_b[(all_b >= lo) & (all_b <= hi)]


def _window_candidates(fns: Sequence[StepFunction], a: float, b: float, d: float) -> FloatArray:
    """Start times where the cheapest window [s, s + d], s in [a, b], can lie (kinks and ends)."""
    if b <= a:
        return np.array([a])
    parts = [np.array([a, b])]
    for fn in fns:
        parts.append(_breakpoints_in(fn, a, b))
        parts.append(_breakpoints_in(fn, a + d, b + d) - d)
    return np.unique(np.concatenate(parts))


def _cheapest_windows(fn: StepFunction, a: FloatArray, b: FloatArray, d: FloatArray) -> FloatArray:
    """Per job: min over s in [a, b] of ∫_s^{s+d} fn (fn ≥ 0), exact (the minimum lies at a kink or an end)."""
    out = fn.integral_many(a, a + d)
    for j in np.flatnonzero(b > a):
        s = _window_candidates([fn], float(a[j]), float(b[j]), float(d[j]))
        out[j] = float(np.min(fn.integral_many(s, s + d[j])))
    return out


def lower_bound(
    scenario: Scenario,
    lifecycle: Lifecycle,
    starts: Sequence[FloatArray],
    negative_price_credits: Sequence[float] = (),
) -> LowerBound:
    """The bound for the jobs every replay in ``starts`` ran (per job start times, NaN = never placed).

    ``negative_price_credits`` are the replays' ``negative_price_credit`` (what they earned in hours of
    negative prices); the largest is subtracted, so the bound holds for each of them.
    """
    jobs = scenario.trace.jobs
    n_jobs = len(jobs)
    ran = np.ones(n_jobs, dtype=bool)
    latest = jobs.submit_s.copy()
    for s in starts:
        ran &= ~np.isnan(s)
        latest = np.fmax(latest, s)
    classes = _classes(scenario)
    cat = scenario.catalog
    epoch = scenario.start_epoch_s
    positive = [_positive_part(t.prices) for t in cat.tariffs]
    workers = jobs.workers.astype(np.float64)
    duration = jobs.duration_s
    share = jobs.gpu_milli / GPU_MILLI_PER_GPU

    # Per job × class: the smallest power increment (PUE included); inf where the job does not fit.
    n_cls = len(classes)
    low = np.full((n_jobs, n_cls), np.inf)
    shared = (jobs.num_gpu == 1) & (jobs.gpu_milli < GPU_MILLI_PER_GPU)
    for c, cl in enumerate(classes):
        fits = (jobs.cpu_milli <= cl.cpu_milli) & (jobs.memory_mib <= cl.memory_mib)
        fits &= (jobs.num_gpu == 0) | np.where(shared, cl.gpus >= 1, jobs.num_gpu <= cl.gpus)
        fits &= np.array([m is None or cl.model in m for m in jobs.gpu_models], dtype=bool)
        gpu_rise = np.zeros(n_jobs)
        for j in np.flatnonzero(fits & (jobs.num_gpu > 0)):
            gpu_rise[j] = jobs.num_gpu[j] * _gpu_rise(cl.power, float(share[j]))
        cpu_rise = _min_slope(cl.power) * jobs.cpu_milli / cl.cpu_milli
        low[:, c] = np.where(fits, (cpu_rise + gpu_rise) * cl.power.pue * workers, np.inf)
    counted = ran & np.isfinite(low).any(axis=1)

    # Idle power floor per job (autoscaled): λ_r × demand_r for the resource r with the largest total.
    idle_floor = np.zeros(n_jobs)
    if lifecycle is Lifecycle.AUTOSCALED and n_cls:
        best_total = -1.0
        for amounts, caps in (
            (jobs.cpu_milli * workers, [cl.cpu_milli for cl in classes]),
            (jobs.memory_mib * workers, [cl.memory_mib for cl in classes]),
            (jobs.num_gpu * share * workers, [cl.gpus for cl in classes]),
        ):
            ratios = [cl.power.idle_watts / cap for cl, cap in zip(classes, caps, strict=True) if cap > 0]
            total = float(np.sum(min(ratios) * amounts * duration * counted)) if ratios else -1.0
            if total > best_total:
                best_total = total
                idle_floor = min(ratios) * amounts

    low = np.where(counted[:, None], low, np.inf)
    dynamic = np.where(counted, low.min(axis=1, initial=np.inf), 0.0)
    energy_j = float(np.sum((dynamic + idle_floor * counted) * duration))

    # Energy cost at positive prices, each job over its cheapest window.
    cost = 0.0
    tariff_of_class = np.array([cl.tariff for cl in classes], dtype=np.intp)
    jobs_cost = np.full(n_jobs, np.inf)
    sel = counted & (duration > 0.0)
    a = jobs.submit_s[sel] + epoch
    b = latest[sel] + epoch
    d = duration[sel]
    for k in np.unique(tariff_of_class):
        price_s = _cheapest_windows(positive[k], a, b, d)  # currency·s per kWh
        cls_k = tariff_of_class == k
        power = low[sel][:, cls_k].min(axis=1, initial=np.inf) + idle_floor[sel]
        jobs_cost[sel] = np.minimum(jobs_cost[sel], power * price_s)
    cost += float(np.sum(jobs_cost[sel])) / JOULES_PER_KWH

    # Static clusters idle over at least [first arrival, last possible completion].
    if lifecycle is Lifecycle.STATIC and n_jobs:
        t0 = float(jobs.submit_s[0])
        t_nowait = float(np.max((jobs.submit_s + duration)[counted], initial=t0))
        idle_by_tariff = np.zeros(len(positive))
        for cl in classes:
            idle_by_tariff[cl.tariff] += cl.power.idle_watts * cl.count
        energy_j += float(idle_by_tariff.sum()) * (t_nowait - t0)
        for k, fn in enumerate(positive):
            cost += idle_by_tariff[k] * fn.integral(t0 + epoch, t_nowait + epoch) / JOULES_PER_KWH
    cost -= max(negative_price_credits, default=0.0)
    return LowerBound(energy_cost=cost, energy_kwh=energy_j / JOULES_PER_KWH, jobs_counted=int(counted.sum()))
