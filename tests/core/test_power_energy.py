"""Power curves and energy integrals (issue 2): published points, monotonicity, additivity."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lepton_core.models import GpuPowerModel, NodePowerModel, NodePowerTable, PowerCurve, energy_joules
from lepton_core.models.power import SPECPOWER_LOADS

# A published SPECpower_ssj2008 result (Huawei RH2288 V2, Xeon E5-2660, March 2012), as listed in the
# SPECpower data set: active idle, then 10 % ... 100 % load.
RH2288_IDLE = 59.7
RH2288_LOADS = [87.2, 97.9, 109.0, 120.0, 133.0, 150.0, 171.0, 196.0, 231.0, 257.0]

monotone_curves = st.lists(st.floats(0, 500, allow_nan=False), min_size=11, max_size=11).map(
    lambda ws: PowerCurve.specpower(sorted(ws)[0], sorted(ws)[1:])
)
utilizations = st.floats(-0.5, 1.5, allow_nan=False)


def test_specpower_curve_reproduces_published_points_exactly() -> None:
    curve = PowerCurve.specpower(RH2288_IDLE, RH2288_LOADS)
    for u, w in zip(SPECPOWER_LOADS, [RH2288_IDLE, *RH2288_LOADS], strict=True):
        assert curve.power_watts(u) == w
    # Between points the curve is the straight line: 15 % load is halfway between 10 % and 20 %.
    assert curve.power_watts(0.15) == pytest.approx((87.2 + 97.9) / 2)


def test_every_published_specpower_result_is_reproduced(shared_data: Path) -> None:
    path = shared_data / "specpower-ssj2008" / "specpower_curves_upto2018.csv"
    cols = ["ActiveIdle"] + [f"{p}_AvgPower" for p in range(10, 101, 10)]
    checked = 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            watts = [float(row[c]) for c in cols]
            if any(b < a for a, b in itertools.pairwise(watts)):
                continue  # a non-monotone measurement cannot be a valid power curve (none expected)
            curve = PowerCurve.specpower(watts[0], watts[1:])
            assert [curve.power_watts(u) for u in SPECPOWER_LOADS] == watts
            checked += 1
    assert checked > 400


@given(monotone_curves, utilizations, utilizations)
def test_power_is_monotone_in_utilization(curve: PowerCurve, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert curve.power_watts(lo) <= curve.power_watts(hi)


@given(st.floats(0, 100), st.floats(0, 700), st.floats(0.1, 5), utilizations, utilizations)
def test_gpu_power_is_monotone_and_bounded(idle: float, extra: float, k: float, a: float, b: float) -> None:
    gpu = GpuPowerModel(idle, idle + extra, k)
    lo, hi = sorted((a, b))
    assert idle <= gpu.power_watts(lo) <= gpu.power_watts(hi) <= idle + extra + 1e-9


def test_power_curve_rejects_invalid_shapes() -> None:
    with pytest.raises(ValueError, match="must not decrease"):
        PowerCurve((0.0, 0.5, 1.0), (100.0, 90.0, 200.0))
    with pytest.raises(ValueError, match="start at utilization 0"):
        PowerCurve((0.1, 1.0), (100.0, 200.0))
    with pytest.raises(ValueError, match="10 load points"):
        PowerCurve.specpower(50, [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        PowerCurve.linear(1, 2).power_watts(math.nan)


def test_node_power_adds_gpus_and_applies_pue() -> None:
    platform = PowerCurve.linear(100.0, 300.0)
    gpu = GpuPowerModel(30.0, 230.0, 1.0)
    node = NodePowerModel(platform, gpu, gpu_count=4, pue=1.5)
    assert node.power_watts(0.0, 0.0) == pytest.approx((100 + 4 * 30) * 1.5)
    assert node.power_watts(0.5, 1.0) == pytest.approx((200 + 4 * 230) * 1.5)
    # One of four GPUs busy draws more than "all at 25 %" when the curve is convex.
    convex = NodePowerModel(platform, GpuPowerModel(30.0, 230.0, 2.0), gpu_count=4)
    assert convex.power_watts(0, [1.0, 0, 0, 0]) > convex.power_watts(0, 0.25)
    with pytest.raises(ValueError, match="PUE"):
        NodePowerModel(platform, pue=0.9)


node_models = st.builds(
    lambda curve, idle, extra, k, n, pue: NodePowerModel(
        curve, GpuPowerModel(idle, idle + extra, k) if n else None, n, pue
    ),
    monotone_curves
    | st.builds(lambda a, b: PowerCurve((0.0, 0.3, 1.0), (a, a + b, a + 2 * b)), st.floats(0, 200), st.floats(0, 200)),
    st.floats(0, 80),
    st.floats(0, 600),
    st.floats(0.2, 4),
    st.integers(0, 8),
    st.floats(1.0, 2.0),
)


@given(st.lists(st.tuples(node_models, st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12))
def test_vectorized_table_equals_per_node_models(rows: list[tuple[NodePowerModel, float, float]]) -> None:
    table = NodePowerTable([m for m, _, _ in rows])
    cpu = np.array([c for _, c, _ in rows])
    gpu = np.array([g for _, _, g in rows])
    expected = [m.power_watts(c, g) for m, c, g in rows]
    np.testing.assert_allclose(table.power_watts(cpu, gpu), expected, rtol=1e-12, atol=1e-9)


def test_power_table_rejects_missing_utilization() -> None:
    table = NodePowerTable([NodePowerModel(PowerCurve.linear(1, 2))])
    with pytest.raises(ValueError, match="NaN"):
        table.power_watts(np.array([math.nan]), np.array([0.0]))


# --- energy ---------------------------------------------------------------------------------------
samples = st.lists(st.tuples(st.floats(0.001, 3600), st.floats(0, 5000)), min_size=1, max_size=30)


def _series(s: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    times = np.cumsum([0.0] + [dt for dt, _ in s[:-1]]).tolist()
    return times, [p for _, p in s]


@given(samples, st.floats(0, 1), st.floats(0.01, 3600))
def test_energy_is_additive_over_split_windows(s: list[tuple[float, float]], cut: float, tail: float) -> None:
    times, watts = _series(s)
    end = times[-1] + tail
    mid = times[0] + cut * (end - times[0])
    whole = energy_joules(times, watts, end)
    parts = energy_joules(times, watts, mid) + energy_joules(times, watts, end, start=mid)
    assert parts == pytest.approx(whole, rel=1e-12, abs=1e-6)


@given(samples, st.floats(0.01, 3600))
def test_energy_equals_sum_of_power_times_duration(s: list[tuple[float, float]], tail: float) -> None:
    times, watts = _series(s)
    end = times[-1] + tail
    by_hand = sum(p * (t1 - t0) for p, t0, t1 in zip(watts, times, [*times[1:], end], strict=True))
    assert energy_joules(times, watts, end) == pytest.approx(by_hand, rel=1e-12, abs=1e-6)


def test_energy_rejects_bad_samples() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        energy_joules([0, 0], [1, 1], 10)
    with pytest.raises(ValueError, match="non-negative"):
        energy_joules([0], [-1], 10)
    with pytest.raises(ValueError, match="before the first power sample"):
        energy_joules([5], [1], 10, start=0)
