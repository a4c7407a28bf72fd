"""The lower bound on energy cost is never above any policy's result, and is tight where it can be."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton_core.models.tariff import FlatTariff, HourlySeriesTariff
from lepton_simulator.engine import Replay, ReplayResult
from lepton_simulator.lower_bound import lower_bound
from lepton_simulator.policies import POLICIES, make_policy
from lepton_simulator.scenario import Scenario, ScenarioOptions, load_scenario
from lepton_simulator.settings import AutoscalerSettings, Lifecycle, SimulationSettings
from lepton_simulator.trace import JobRow

from .tiny import job, node, scenario


def _all(sc: Scenario, lifecycle: Lifecycle) -> list[ReplayResult]:
    s = SimulationSettings(lifecycle=lifecycle, autoscaler=AutoscalerSettings(120.0, 60.0))
    return [Replay(sc, make_policy(name), s).run() for name in POLICIES]


def _assert_below(sc: Scenario, lifecycle: Lifecycle) -> None:
    results = _all(sc, lifecycle)
    lb = lower_bound(sc, lifecycle, [r.start_s for r in results], [r.negative_price_credit for r in results])
    for r in results:
        assert lb.energy_cost <= r.cost.energy + 1e-9 * max(1.0, abs(r.cost.energy)), r.policy
        assert lb.energy_kwh <= r.energy_kwh * (1 + 1e-12) + 1e-12, r.policy


def test_tight_for_one_job_on_one_linear_node() -> None:
    # Static, one node, linear curve: the replay *is* perfect packing, so the bound equals its energy cost.
    sc = scenario([node("a", 10000)], [job(0, 3600, 5000)], tariff=FlatTariff(0.5))
    results = _all(sc, Lifecycle.STATIC)
    lb = lower_bound(sc, Lifecycle.STATIC, [r.start_s for r in results])
    assert lb.energy_kwh == pytest.approx(0.2)
    assert lb.energy_cost == pytest.approx(0.1)
    assert results[0].cost.energy == pytest.approx(lb.energy_cost)


@pytest.mark.parametrize("lifecycle", list(Lifecycle))
def test_below_every_policy_on_the_embedded_sample(lifecycle: Lifecycle) -> None:
    sc = load_scenario(ScenarioOptions(data_dir=Path("none"), limit=400))
    _assert_below(sc, lifecycle)


_job = st.builds(
    lambda submit, dur, cpu, gpu: job(
        float(submit), float(dur), cpu, 1024, num_gpu=1 if gpu else 0, gpu_milli=gpu if gpu else 0
    ),
    st.integers(0, 20_000),
    st.integers(0, 10_000),
    st.integers(0, 8000),
    st.sampled_from([0, 0, 250, 1000]),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(_job, min_size=1, max_size=12),
    prices=st.lists(st.floats(-50.0, 200.0), min_size=1, max_size=8),
    lifecycle=st.sampled_from(list(Lifecycle)),
)
def test_below_every_policy_on_random_traces_and_prices(
    jobs: list[JobRow], prices: list[float], lifecycle: Lifecycle
) -> None:
    start = 1_672_531_200.0
    tariff = HourlySeriesTariff(
        tuple(start + 3600.0 * i for i in range(len(prices))), tuple(p / 1000 for p in prices), cyclic=True
    )
    nodes = [
        node("a", 4000),
        node("b", 8000, test__kind="kinked"),
        node("g", 8000, gpu=2, model="TESTGPU"),
    ]
    _assert_below(scenario(nodes, jobs, tariff=tariff), lifecycle)
