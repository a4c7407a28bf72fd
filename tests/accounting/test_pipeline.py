"""One accounting window: measured power wins, the model fills in, every cent lands once.

Σ jobs + other pods + idle = node totals for every component (property test), a pod pays only for the
part of the window it ran and at the price of *that* part, missing telemetry is accounted from requests
and marked estimated.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_core.accounting.pipeline import (
    NodeAccountingTable,
    NodeReadings,
    PodTable,
    Source,
    WindowAccount,
    account_window,
)
from lepton_core.models.power import GpuPowerModel, NodePowerModel, NodePowerTable, PowerCurve
from lepton_core.models.tariff import FlatTariff, Tariff, TimeOfUseTariff
from lepton_core.units import JOULES_PER_KWH

T0 = 1_700_000_000.0  # a Tuesday, 22:13:20 UTC
HOUR = 3600.0


def _nodes(
    n: int = 1, gpus: int = 0, tariffs: tuple[Tariff, ...] = (FlatTariff(0.36),), pue: float = 1.0
) -> NodeAccountingTable:
    model = NodePowerModel(PowerCurve.linear(100.0, 300.0), GpuPowerModel(50.0, 250.0) if gpus else None, gpus, pue=pue)
    return NodeAccountingTable(
        names=tuple(f"n{i}" for i in range(n)),
        power=NodePowerTable([model] * n),
        allocatable=np.tile([32.0, 128 * 2.0**30, float(gpus)], (n, 1)),
        hardware_per_hour=np.full(n, 2.0),
        operations_per_hour=np.full(n, 0.5),
        tariffs=tariffs,
        tariff_of_node=np.arange(n, dtype=np.intp) % len(tariffs),
        currency="USD",
    )


def _pods(rows: list[tuple[int, float, float, int, float, float]]) -> PodTable:
    """rows: (node, cpu, gpus, job, start, end)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return PodTable(
        node=a[:, 0].astype(np.intp),
        requests=np.stack([a[:, 1], np.zeros(len(a)), a[:, 2]], axis=1),
        job=a[:, 3].astype(np.intp),
        start_s=a[:, 4],
        end_s=a[:, 5],
    )


def _readings(n: int, **values: list[float]) -> NodeReadings:
    r = NodeReadings.missing(n)
    for name, v in values.items():
        getattr(r, name)[:] = v
    return r


def _check_conservation(acc: WindowAccount) -> None:
    """Σ jobs + other + idle = node total + re-pricing (0 without ``spec.costProfile``), per component."""
    jobs = acc.job_cost.sum(axis=0)
    total = acc.node_cost.sum(axis=0) + acc.repricing_cost.sum(axis=0)
    parts = jobs + acc.other_cost.sum(axis=0) + acc.idle_cost.sum(axis=0)
    np.testing.assert_allclose(parts, total, rtol=1e-9, atol=1e-12)
    joules = acc.job_joules.sum() + acc.other_joules.sum() + acc.idle_joules.sum()
    assert joules == pytest.approx(acc.node_joules.sum() + acc.repricing_joules.sum(), rel=1e-9, abs=1e-9)


def test_measured_power_wins_and_the_model_discrepancy_is_kept() -> None:
    nodes = _nodes(gpus=2, pue=1.2)
    pods = _pods([(0, 8.0, 1.0, 0, -math.inf, math.inf)])
    readings = _readings(1, cpu_utilization=[0.5], gpu_utilization=[1.0], kepler_watts=[180.0], gpu_watts=[400.0])
    readings.kepler_includes_gpu[:] = False
    acc = account_window(nodes, pods, readings, t0=T0, t1=T0 + HOUR, jobs=1)
    assert acc.source[0] == Source.KEPLER_DCGM
    assert acc.power_watts[0] == pytest.approx((180.0 + 400.0) * 1.2)  # measured IT power × PUE
    assert acc.measured_watts[0] == pytest.approx(acc.power_watts[0])
    assert acc.model_watts[0] == pytest.approx((200.0 + 2 * 250.0) * 1.2)  # model at u_cpu .5, u_gpu 1
    # The job holds half the node (1 of 2 GPUs): half of every component, at 0.36 per kWh.
    energy_cost = 580 * 1.2 / 1000 * 0.36
    assert acc.job_cost[0] == pytest.approx([1.0, energy_cost / 2, 0.25])
    assert not acc.job_estimated[0]
    _check_conservation(acc)


def test_dcgm_alone_measures_the_gpus_and_the_platform_is_modelled() -> None:
    nodes = _nodes(gpus=2)
    readings = _readings(1, cpu_utilization=[0.0], gpu_utilization=[0.5], gpu_watts=[333.0])
    acc = account_window(nodes, _pods([]), readings, t0=T0, t1=T0 + 60, jobs=0)
    assert acc.source[0] == Source.DCGM
    assert acc.power_watts[0] == pytest.approx(100.0 + 333.0)
    assert math.isnan(acc.measured_watts[0])  # only part of the node is measured


def test_without_telemetry_requests_drive_the_model_and_the_window_is_estimated() -> None:
    nodes = _nodes(n=2)
    pods = _pods([(0, 16.0, 0.0, 0, -math.inf, math.inf), (1, 8.0, 0.0, 1, -math.inf, math.inf)])
    readings = _readings(2, cpu_utilization=[math.nan, 0.25])
    acc = account_window(nodes, pods, readings, t0=T0, t1=T0 + HOUR, jobs=2)
    assert list(acc.source) == [Source.ESTIMATED, Source.MODEL]
    assert acc.utilization[0, 0] == pytest.approx(0.5)  # 16 of 32 cores requested
    assert acc.power_watts[0] == pytest.approx(200.0)
    assert acc.power_watts[1] == pytest.approx(150.0)
    assert list(acc.job_estimated) == [True, False]
    _check_conservation(acc)


def test_a_pod_pays_only_for_the_part_of_the_window_it_ran() -> None:
    nodes = _nodes()
    readings = _readings(1, kepler_watts=[250.0])
    # Job 0 runs the first quarter of the hour, job 1 the last half; each asks for half the node.
    pods = _pods([(0, 16.0, 0.0, 0, T0 - 10, T0 + 900), (0, 16.0, 0.0, 1, T0 + 1800, math.inf)])
    acc = account_window(nodes, pods, readings, t0=T0, t1=T0 + HOUR, jobs=2)
    assert acc.job_active_seconds == pytest.approx([900.0, 1800.0])
    assert acc.job_joules == pytest.approx([0.5 * 250 * 900, 0.5 * 250 * 1800])
    assert acc.job_cost[:, 0] == pytest.approx([0.5 * 2.0 / 4, 0.5 * 2.0 / 2])
    assert acc.job_rate_per_hour[0] == 0.0  # no longer running at the window's end
    assert acc.job_rate_per_hour[1] == pytest.approx(0.5 * (2.0 + 0.5 + 0.25 * 0.36))
    assert acc.idle_cost[0, 0] == pytest.approx(2.0 * (1 - 0.125 - 0.25))
    _check_conservation(acc)


def test_a_pod_pays_the_price_of_the_hours_it_ran_in() -> None:
    # Cheap before 08:00 local, dear after; the window 07:30-08:30 straddles the change.
    tou = TimeOfUseTariff(periods=((0.0, 0.10), (8 * HOUR, 0.50)))
    nodes = _nodes(tariffs=(tou,))
    start = math.floor(T0 / 86400) * 86400 + 7.5 * HOUR
    readings = _readings(1, kepler_watts=[1000.0])
    pods = _pods([(0, 32.0, 0.0, 0, start, start + 1800), (0, 32.0, 0.0, 1, start + 1800, math.inf)])
    acc = account_window(nodes, pods, readings, t0=start, t1=start + HOUR, jobs=2)
    # Each ran half an hour at 1 kW using the whole node: 0.5 kWh at its own price.
    assert acc.job_cost[:, 1] == pytest.approx([0.5 * 0.10, 0.5 * 0.50])
    assert acc.node_cost[0, 1] == pytest.approx(0.5 * 0.10 + 0.5 * 0.50)
    _check_conservation(acc)


def test_over_committed_nodes_scale_shares_and_leave_no_idle() -> None:
    nodes = _nodes()
    pods = _pods([(0, 24.0, 0.0, 0, -math.inf, math.inf), (0, 24.0, 0.0, 1, -math.inf, math.inf)])
    acc = account_window(nodes, pods, _readings(1, kepler_watts=[200.0]), t0=T0, t1=T0 + HOUR, jobs=2)
    assert acc.job_cost[:, 0] == pytest.approx([1.0, 1.0])
    assert acc.idle_cost[0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    _check_conservation(acc)


def test_increments_are_exact_integers_for_the_window() -> None:
    nodes = _nodes()
    pods = _pods([(0, 32.0, 0.0, 0, -math.inf, math.inf)])
    acc = account_window(nodes, pods, _readings(1, kepler_watts=[100.0]), t0=T0, t1=T0 + 30, jobs=1)
    inc = acc.increments()[0]
    assert (inc.start_ms, inc.end_ms, inc.active_ms) == (round(T0 * 1000), round(T0 * 1000) + 30_000, 30_000)
    assert inc.amounts.millijoules == 3_000_000
    assert inc.amounts.energy == round(100 * 30 / JOULES_PER_KWH * 0.36 * 1e9)


_node_reading = st.tuples(
    st.one_of(st.just(math.nan), st.floats(0.0, 1.0)),
    st.one_of(st.just(math.nan), st.floats(0.0, 1.0)),
    st.one_of(st.just(math.nan), st.floats(0.0, 5000.0)),
    st.booleans(),
    st.one_of(st.just(math.nan), st.floats(0.0, 3000.0)),
)
_pod = st.tuples(
    st.integers(0, 3),
    st.floats(0.0, 64.0),
    st.integers(0, 4),
    st.integers(-1, 4),
    st.one_of(st.just(-math.inf), st.floats(T0 - 100, T0 + 400)),
    st.one_of(st.just(math.inf), st.floats(T0 - 50, T0 + 500)),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_node_reading, min_size=4, max_size=4),
    st.lists(_pod, max_size=14),
    st.floats(0.0, 600.0),
    st.booleans(),
)
def test_every_component_is_attributed_exactly_once(
    node_rows: list[tuple[float, float, float, bool, float]],
    pod_rows: list[tuple[int, float, int, int, float, float]],
    width: float,
    tou: bool,
) -> None:
    tariffs: tuple[Tariff, ...] = (FlatTariff(0.2),)
    if tou:
        tariffs = (TimeOfUseTariff(periods=((0.0, 0.1), (22 * HOUR + 900, 0.4))), FlatTariff(0.3))
    nodes = _nodes(n=4, gpus=4, tariffs=tariffs, pue=1.3)
    readings = NodeReadings.missing(4)
    for i, (cpu, gpu, kepler, inc_gpu, dcgm) in enumerate(node_rows):
        readings.cpu_utilization[i] = cpu
        readings.gpu_utilization[i] = gpu
        readings.kepler_watts[i] = kepler
        readings.kepler_includes_gpu[i] = inc_gpu
        readings.gpu_watts[i] = dcgm
    rows = [(n, c, g, j, s, max(e, s)) for n, c, g, j, s, e in pod_rows]
    acc = account_window(nodes, _pods(rows), readings, t0=T0, t1=T0 + width, jobs=5)
    _check_conservation(acc)
    assert np.all(acc.power_watts >= 0.0)
    assert np.all(acc.job_cost >= -1e-12)
    assert np.all(acc.idle_cost[:, [0, 2]] >= 0.0)
    assert np.all(acc.job_active_seconds <= (acc.t1 - acc.t0) + 1e-9)
    inc = acc.increments()
    assert sum(i.amounts.millijoules for i in inc.values()) == pytest.approx(
        acc.job_joules.sum() * 1000, abs=5 + 1e-6 * acc.job_joules.sum() * 1000
    )


# --- re-pricing: a job's spec.costProfile ----------------------------------------------------------------


def _premium(n: int, gpus: int, tariffs: tuple[Tariff, ...] = (FlatTariff(0.5),)) -> NodeAccountingTable:
    """The same nodes under another profile: other curves, PUE, fixed costs and tariff."""
    model = NodePowerModel(PowerCurve.linear(150.0, 450.0), GpuPowerModel(70.0, 350.0) if gpus else None, gpus, pue=1.6)
    return NodeAccountingTable(
        names=tuple(f"n{i}" for i in range(n)),
        power=NodePowerTable([model] * n),
        allocatable=np.tile([32.0, 128 * 2.0**30, float(gpus)], (n, 1)),
        hardware_per_hour=np.full(n, 5.0),
        operations_per_hour=np.full(n, 1.5),
        tariffs=tariffs,
        tariff_of_node=np.arange(n, dtype=np.intp) % len(tariffs),
        currency="USD",
    )


def test_a_repriced_job_pays_its_share_of_the_node_under_the_named_profile() -> None:
    nodes, premium = _nodes(gpus=2, pue=1.2), _premium(1, gpus=2)
    # Two jobs, a quarter of the node each (8 of 32 cores); the second names the premium profile.
    pods = dataclasses.replace(
        _pods([(0, 8.0, 0.0, 0, -math.inf, math.inf), (0, 8.0, 0.0, 1, -math.inf, math.inf)]),
        pricing=np.array([-1, 0], dtype=np.intp),
    )
    # Kepler measures the platform, DCGM the GPUs: the override changes PUE and prices, not the watts.
    readings = _readings(1, cpu_utilization=[0.5], gpu_utilization=[0.5], kepler_watts=[200.0], gpu_watts=[300.0])
    kepler_includes_gpu = readings.kepler_includes_gpu
    kepler_includes_gpu[:] = False
    acc = account_window(nodes, pods, readings, t0=T0, t1=T0 + HOUR, jobs=2, overrides=[premium])
    it_watts = 200.0 + 300.0
    assert acc.node_cost[0] == pytest.approx([2.0, it_watts * 1.2 / 1000 * 0.36, 0.5])  # the node stays as it is
    assert acc.job_cost[0] == pytest.approx([0.5, 0.25 * it_watts * 1.2 / 1000 * 0.36, 0.125])
    assert acc.job_cost[1] == pytest.approx([1.25, 0.25 * it_watts * 1.6 / 1000 * 0.5, 0.375])
    assert acc.job_joules[1] == pytest.approx(0.25 * it_watts * 1.6 * HOUR)
    assert acc.repricing_cost[0] == pytest.approx(acc.job_cost[1] - acc.job_cost[0])
    assert acc.job_rate_per_hour[1] == pytest.approx(1.25 + 0.25 * it_watts * 1.6 / 1000 * 0.5 + 0.375)
    _check_conservation(acc)


def test_unmeasured_power_is_modelled_with_the_named_profiles_curves() -> None:
    nodes, premium = _nodes(gpus=0), _premium(1, gpus=0)
    pods = dataclasses.replace(_pods([(0, 16.0, 0.0, 0, -math.inf, math.inf)]), pricing=np.array([0], dtype=np.intp))
    acc = account_window(nodes, pods, NodeReadings.missing(1), t0=T0, t1=T0 + HOUR, jobs=1, overrides=[premium])
    # Estimated: utilization is the allocation (16 of 32 cores) under either profile; watts from its curve.
    assert acc.node_joules[0] == pytest.approx((100.0 + 200.0 * 0.5) * HOUR)
    assert acc.job_joules[0] == pytest.approx(0.5 * (150.0 + 300.0 * 0.5) * 1.6 * HOUR)
    assert bool(acc.job_estimated[0])
    _check_conservation(acc)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_node_reading, min_size=4, max_size=4),
    st.lists(st.tuples(_pod, st.integers(-1, 1)), max_size=14),
    st.floats(0.0, 600.0),
)
def test_repricing_keeps_every_component_accounted_exactly_once(
    node_rows: list[tuple[float, float, float, bool, float]],
    pod_rows: list[tuple[tuple[int, float, int, int, float, float], int]],
    width: float,
) -> None:
    tou = (TimeOfUseTariff(periods=((0.0, 0.1), (22 * HOUR + 900, 0.4))), FlatTariff(0.3))
    nodes = _nodes(n=4, gpus=4, tariffs=(FlatTariff(0.2),), pue=1.3)
    overrides = [_premium(4, gpus=4, tariffs=tou), nodes]  # the second prices exactly as the nodes do
    readings = NodeReadings.missing(4)
    for i, (cpu, gpu, kepler, inc_gpu, dcgm) in enumerate(node_rows):
        readings.cpu_utilization[i], readings.gpu_utilization[i] = cpu, gpu
        readings.kepler_watts[i], readings.kepler_includes_gpu[i], readings.gpu_watts[i] = kepler, inc_gpu, dcgm
    rows = [(n, c, g, j, s, max(e, s)) for (n, c, g, j, s, e), _ in pod_rows]
    pricing = np.array([k if row[3] >= 0 else -1 for row, k in pod_rows], dtype=np.intp)
    plain = account_window(nodes, _pods(rows), readings, t0=T0, t1=T0 + width, jobs=5)
    acc = account_window(
        nodes, dataclasses.replace(_pods(rows), pricing=pricing), readings, t0=T0, t1=T0 + width, jobs=5,
        overrides=overrides,
    )  # fmt: skip
    _check_conservation(acc)
    # Re-pricing never moves the node's own figures, idle or other pods.
    for name in ("node_cost", "node_joules", "idle_cost", "idle_joules", "other_cost", "power_watts"):
        np.testing.assert_array_equal(getattr(acc, name), getattr(plain, name))
    # A job priced by a table identical to its nodes' pays exactly what it would have anyway.
    only_identity = {j for (_, _, _, j, _, _), k in pod_rows if j >= 0 and k == 1} - {
        j for (_, _, _, j, _, _), k in pod_rows if j >= 0 and k != 1
    }
    for j in only_identity:
        np.testing.assert_allclose(acc.job_cost[j], plain.job_cost[j], rtol=1e-12, atol=1e-15)


def test_an_override_must_price_the_same_nodes() -> None:
    with pytest.raises(ValueError, match="same nodes"):
        account_window(_nodes(n=2), _pods([]), NodeReadings.missing(2), t0=T0, t1=T0 + 1, jobs=0,
                       overrides=[_premium(1, gpus=0)])  # fmt: skip
    pods = dataclasses.replace(_pods([(0, 1.0, 0.0, 0, T0, T0 + 1)]), pricing=np.array([0], dtype=np.intp))
    with pytest.raises(ValueError, match="pricing index"):
        account_window(_nodes(), pods, NodeReadings.missing(1), t0=T0, t1=T0 + 1, jobs=1)
