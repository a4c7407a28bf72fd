"""The replay's ledger: every node's power as a step function of time, priced and weighed exactly.

Neighbours: ``lepton_simulator.engine`` calls ``set_power`` whenever a node's allocation or power state
changes and ``power_on``/``power_off`` when the autoscaler provisions or releases it; ``settle`` turns the
recorded segments into energy (joules), energy cost (``Tariff.energy_cost_many``: power × ∫ price, exact
across every tariff hour), carbon (``CarbonSeries.kg_for_power``) and hardware + operations cost
(``lepton_core.models.cost.window_cost`` over each node's powered-on time).

Energy model of a replay: a node draws ``NodePowerModel.power_watts(u_cpu, [u_gpu_i])`` from its cost
profile, where ``u_cpu`` is allocated / allocatable CPU and ``u_gpu_i`` the milli-GPUs allocated on GPU i
over 1000, i.e. every request is assumed fully busy. Between two events power is constant, so the
integrals are sums over segments, with no sampling error. Every joule is booked once: a segment is
closed exactly when the node's power changes or the replay ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.cost import CostBreakdown, window_cost
from lepton_core.models.stepfunction import StepFunction
from lepton_core.units import JOULES_PER_KWH
from lepton_simulator.carbon import CarbonSeries
from lepton_simulator.scenario import NodeCatalog

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Settlement:
    cost: CostBreakdown
    energy_joules: float
    carbon_kg: float | None
    node_seconds_on: float
    """Σ over nodes of the time each was powered (booting or ready)."""
    negative_price_credit: float
    """What the energy earned in hours of negative prices (≥ 0; already inside ``cost.energy``)."""

    @property
    def energy_kwh(self) -> float:
        return self.energy_joules / JOULES_PER_KWH


class Ledger:
    """Power segments per node, powered-on time per node and the cluster's total power over time."""

    def __init__(self, nodes: int, t_begin: float) -> None:
        self.power_watts = np.zeros(nodes)
        self.since = np.full(nodes, t_begin)
        self.on_since = np.full(nodes, np.nan)
        self.on_seconds = np.zeros(nodes)
        self._node: list[int] = []
        self._t0: list[float] = []
        self._t1: list[float] = []
        self._watts: list[float] = []
        self.total_watts = 0.0
        self.series_t: list[float] = [t_begin]
        self.series_watts: list[float] = [0.0]

    def set_power(self, node: int, t: float, watts: float) -> None:
        old = float(self.power_watts[node])
        start = float(self.since[node])
        if t > start and old > 0.0:
            self._node.append(node)
            self._t0.append(start)
            self._t1.append(t)
            self._watts.append(old)
        self.since[node] = t
        self.power_watts[node] = watts
        if watts != old:
            self.total_watts += watts - old
            if self.series_t[-1] == t:
                self.series_watts[-1] = self.total_watts
            else:
                self.series_t.append(t)
                self.series_watts.append(self.total_watts)

    def power_on(self, node: int, t: float, idle_watts: float) -> None:
        self.on_since[node] = t
        self.set_power(node, t, idle_watts)

    def power_off(self, node: int, t: float) -> None:
        self.set_power(node, t, 0.0)
        self.on_seconds[node] += t - self.on_since[node]
        self.on_since[node] = np.nan

    def close(self, t_end: float) -> None:
        """End the replay at ``t_end``: every powered node is switched off there (booked, not released)."""
        for node in np.flatnonzero(~np.isnan(self.on_since)):
            self.power_off(int(node), t_end)

    def segments(self) -> tuple[NDArray[np.intp], FloatArray, FloatArray, FloatArray]:
        return (
            np.asarray(self._node, dtype=np.intp),
            np.asarray(self._t0, dtype=np.float64),
            np.asarray(self._t1, dtype=np.float64),
            np.asarray(self._watts, dtype=np.float64),
        )

    def settle(self, catalog: NodeCatalog, start_epoch_s: float, carbon: CarbonSeries | None) -> Settlement:
        node, t0, t1, watts = self.segments()
        energy_joules = float(np.sum(watts * (t1 - t0)))
        a0 = t0 + start_epoch_s
        a1 = t1 + start_epoch_s
        energy_cost = 0.0
        credit = 0.0
        tariff_of_segment = catalog.tariff_index[node]
        for k, tariff in enumerate(catalog.tariffs):
            sel = tariff_of_segment == k
            if sel.any():
                energy_cost += float(np.sum(tariff.energy_cost_many(a0[sel], a1[sel], watts[sel])))
                f = tariff.prices
                if (f.values < 0.0).any():
                    negative = StepFunction(f.breakpoints, np.maximum(-f.values, 0.0), end=f.end, period=f.period)
                    credit += float(np.sum(watts[sel] * negative.integral_many(a0[sel], a1[sel]))) / JOULES_PER_KWH
        carbon_kg = float(np.sum(carbon.kg_for_power(a0, a1, watts))) if carbon is not None else None
        fixed = CostBreakdown()
        for n in np.flatnonzero(self.on_seconds > 0.0):
            fixed = fixed + window_cost(catalog.hardware[n], catalog.operations[n], float(self.on_seconds[n]), 0.0)
        cost = CostBreakdown(hardware=fixed.hardware, energy=energy_cost, operations=fixed.operations)
        return Settlement(
            cost=cost,
            energy_joules=energy_joules,
            carbon_kg=carbon_kg,
            node_seconds_on=float(self.on_seconds.sum()),
            negative_price_credit=credit,
        )


def downsample_step(
    times: FloatArray, values: FloatArray, t0: float, t1: float, bins: int
) -> tuple[FloatArray, FloatArray]:
    """Time-weighted mean of a step function (``values[i]`` from ``times[i]``) over ``bins`` equal bins.

    Exact (from the step function's integral), so the plot's area is the ledger's energy.
    """
    if t1 <= t0 or times.size == 0:
        return np.array([t0]), np.array([float(values[-1]) if values.size else 0.0])
    edges = np.linspace(t0, t1, bins + 1)
    widths = np.diff(np.append(times, max(t1, float(times[-1]))))
    cumulative = np.concatenate([[0.0], np.cumsum(values * widths)])

    def integral_to(t: FloatArray) -> FloatArray:
        i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, times.size - 1)
        out: FloatArray = cumulative[i] + values[i] * (t - times[i])
        return np.where(t < times[0], 0.0, out)

    means = np.diff(integral_to(edges)) / np.diff(edges)
    return edges[:-1], means
