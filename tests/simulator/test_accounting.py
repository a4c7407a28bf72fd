"""The ledger books every joule once, and the plot's downsampling keeps the energy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_simulator.accounting import Ledger, downsample_step

_changes = st.lists(
    st.tuples(st.integers(0, 2), st.floats(0.0, 1000.0), st.floats(0.0, 500.0)), min_size=1, max_size=40
)


@settings(max_examples=100, deadline=None)
@given(changes=_changes)
def test_segments_integrate_exactly_what_was_set(changes: list[tuple[int, float, float]]) -> None:
    ledger = Ledger(3, 0.0)
    ordered = sorted(changes, key=lambda c: c[1])
    expected = 0.0
    last = dict.fromkeys(range(3), (0.0, 0.0))  # node -> (since, watts)
    for node, t, watts in ordered:
        since, w = last[node]
        expected += w * (t - since)
        last[node] = (t, watts)
        ledger.set_power(node, t, watts)
    end = 1000.0
    for node in range(3):
        since, w = last[node]
        expected += w * (end - since)
        ledger.set_power(node, end, 0.0)
    _, t0, t1, watts = ledger.segments()
    assert float(np.sum(watts * (t1 - t0))) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    # The cluster total follows the same steps: its integral is the same energy.
    series_t = np.asarray(ledger.series_t)
    series_w = np.asarray(ledger.series_watts)
    widths = np.diff(np.append(series_t, end))
    assert float(np.sum(series_w * widths)) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_power_on_and_off_count_powered_time() -> None:
    ledger = Ledger(2, 0.0)
    ledger.power_on(0, 10.0, 100.0)
    ledger.power_off(0, 70.0)
    ledger.power_on(0, 100.0, 100.0)
    ledger.power_on(1, 50.0, 80.0)
    ledger.close(200.0)
    assert ledger.on_seconds.tolist() == [160.0, 150.0]
    _, t0, t1, watts = ledger.segments()
    assert float(np.sum(watts * (t1 - t0))) == pytest.approx(100 * 160 + 80 * 150)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0.001, 50.0), st.floats(0.0, 1e4)), min_size=1, max_size=30),
    bins=st.integers(1, 50),
)
def test_downsampling_keeps_the_integral(steps: list[tuple[float, float]], bins: int) -> None:
    times = np.cumsum([0.0] + [d for d, _ in steps[:-1]])
    values = np.array([v for _, v in steps])
    end = float(times[-1] + steps[-1][0])
    t, mean = downsample_step(times, values, 0.0, end, bins)
    exact = float(np.sum(values * np.diff(np.append(times, end))))
    assert float(np.sum(mean * (end / bins))) == pytest.approx(exact, rel=1e-9, abs=1e-6)
    assert t[0] == 0.0 and len(t) == bins
