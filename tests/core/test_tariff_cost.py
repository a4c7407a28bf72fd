"""Tariffs integrate exactly across boundaries; cost components add up (issue 2)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lepton_core.models import (
    CostBreakdown,
    FlatTariff,
    HardwareAmortization,
    HourlySeriesTariff,
    OperationsCost,
    StepFunction,
    TimeOfUseTariff,
)
from lepton_core.models.cost import window_cost
from lepton_core.tariffs import TariffSource, load_hourly_price_csv, resolve_zone_file

H = 3600.0


def brute_force_cost(prices: list[float], start: float, t0: float, t1: float, watts: float) -> float:
    """Independent computation: walk hour by hour, charging the overlap of [t0, t1] with each hour."""
    total = 0.0
    for i, price in enumerate(prices):
        lo, hi = start + i * H, start + (i + 1) * H
        overlap = max(0.0, min(hi, t1) - max(lo, t0))
        total += watts / 1000.0 * overlap / H * price
    return total


hourly = st.lists(st.floats(-0.2, 2.0, allow_nan=False), min_size=1, max_size=72)


@given(hourly, st.floats(0, 1), st.floats(0, 1), st.floats(0, 5000))
def test_hourly_cost_integrates_exactly_across_boundaries(
    prices: list[float], a: float, b: float, watts: float
) -> None:
    start = 1_700_000_000.0
    tariff = HourlySeriesTariff(tuple(start + i * H for i in range(len(prices))), tuple(prices))
    span = len(prices) * H
    t0, t1 = sorted((start + a * span, start + b * span))
    expected = brute_force_cost(prices, start, t0, t1, watts)
    assert tariff.energy_cost(t0, t1, watts) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(hourly, st.lists(st.floats(0, 1), min_size=2, max_size=6), st.floats(0, 5000))
def test_cost_is_additive_over_any_split(prices: list[float], cuts: list[float], watts: float) -> None:
    start = 0.0
    tariff = HourlySeriesTariff(tuple(start + i * H for i in range(len(prices))), tuple(prices))
    points = sorted(start + c * len(prices) * H for c in cuts)
    pieces = sum(tariff.energy_cost(a, b, watts) for a, b in itertools.pairwise(points))
    assert pieces == pytest.approx(tariff.energy_cost(points[0], points[-1], watts), rel=1e-9, abs=1e-9)


def test_time_of_use_peak_and_weekend() -> None:
    # Off-peak 0.10, peak 0.30 from 16:00 to 21:00 local (UTC-8); weekends flat 0.08.
    tou = TimeOfUseTariff(
        periods=((0.0, 0.10), (16 * H, 0.30), (21 * H, 0.10)),
        weekend=((0.0, 0.08),),
        utc_offset_hours=-8,
    )
    monday_local_midnight = datetime(2023, 6, 5, 8, tzinfo=UTC).timestamp()  # 00:00 at UTC-8
    assert tou.price_per_kwh_at(monday_local_midnight + 17 * H) == 0.30
    assert tou.price_per_kwh_at(monday_local_midnight + 12 * H) == 0.10
    assert tou.price_per_kwh_at(monday_local_midnight + 5 * 24 * H + 17 * H) == 0.08  # Saturday
    # 1 kW over a whole weekday: 19 h at 0.10 + 5 h at 0.30 = 3.40.
    day = tou.energy_cost(monday_local_midnight, monday_local_midnight + 24 * H, 1000.0)
    assert day == pytest.approx(3.40, rel=1e-12)
    # A whole week repeats exactly, however far from the epoch.
    week = tou.energy_cost(monday_local_midnight, monday_local_midnight + 7 * 24 * H, 1000.0)
    later = monday_local_midnight + 52 * 7 * 24 * H
    assert tou.energy_cost(later, later + 7 * 24 * H, 1000.0) == pytest.approx(week, rel=1e-12)
    assert week == pytest.approx(5 * 3.40 + 2 * 24 * 0.08, rel=1e-12)


def test_flat_tariff() -> None:
    flat = FlatTariff(0.2, currency="EUR")
    assert flat.energy_cost(0, 8 * H, 500) == pytest.approx(0.8)  # 4 kWh
    assert flat.currency == "EUR"


def test_series_outside_its_range_is_an_error_unless_cyclic() -> None:
    series = HourlySeriesTariff((0.0, H), (1.0, 2.0))
    with pytest.raises(ValueError, match="outside"):
        series.energy_cost(0, 3 * H, 1000)
    cyclic = HourlySeriesTariff((0.0, H), (1.0, 2.0), cyclic=True)
    assert cyclic.energy_cost(0, 4 * H, 1000) == pytest.approx(6.0)


def test_step_function_validation() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        StepFunction(np.array([1.0, 1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="before its start"):
        FlatTariff(1.0).price_integral(10, 5)


def test_grid_hourly_file_and_bundled_zone(shared_data: Path) -> None:
    path = shared_data / "grid-hourly" / "price_US-CAL-CISO_2023_usd_mwh.csv"
    tariff = load_hourly_price_csv(path)
    jan1 = datetime(2023, 1, 1, tzinfo=UTC).timestamp()
    # First hour's price is 114.9452 USD/MWh: 1 MW for that hour costs exactly that.
    assert tariff.energy_cost(jan1, jan1 + H, 1e6) == pytest.approx(114.9452, rel=1e-12)
    bundled = load_hourly_price_csv(resolve_zone_file(TariffSource(), "US-CAL-CISO", 2023), cyclic=True)
    week = datetime(2023, 6, 5, tzinfo=UTC).timestamp()
    assert bundled.price_per_kwh_at(week) == tariff.price_per_kwh_at(week)


def test_bad_price_file_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("Datetime (UTC),Price (USD/MWh)\n2023-01-01 00:00:00+00:00,10\n2023-01-01 01:00:00,oops\n")
    with pytest.raises(ValueError, match=r"p\.csv:3"):
        load_hourly_price_csv(f)
    with pytest.raises(ValueError, match="zones there"):
        resolve_zone_file(TariffSource(data_dir=tmp_path), "XX")


# --- cost components --------------------------------------------------------------------------------
def test_amortization_and_operations_per_hour() -> None:
    hw = HardwareAmortization(purchase_price=43_800, lifetime_years=5, residual_value=0)
    assert hw.cost_per_hour == pytest.approx(1.0)
    assert HardwareAmortization(10_000, 4, residual_value=1_240).cost_per_hour == pytest.approx(0.25)
    assert OperationsCost(8_760).cost_per_hour == pytest.approx(1.0)
    # Without a lifetime the whole price lands in the window, however short.
    assert HardwareAmortization(5_000).cost_for_window(1.0) == 5_000


def test_window_cost_adds_the_three_components() -> None:
    c = window_cost(HardwareAmortization(43_800, 5), OperationsCost(8_760), window_seconds=2 * H, energy_cost=3.0)
    assert c == CostBreakdown(hardware=pytest.approx(2.0), energy=3.0, operations=pytest.approx(2.0))  # type: ignore[arg-type]
    assert c.total == pytest.approx(7.0)
    assert (c + c).total == pytest.approx(14.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"purchase_price": -1}, "purchase_price"),
        ({"purchase_price": 1, "lifetime_years": 0}, "lifetime_years"),
        ({"purchase_price": 1, "residual_value": 2}, "residual_value"),
    ],
)
def test_invalid_hardware_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        HardwareAmortization(**kwargs)
