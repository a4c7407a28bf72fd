"""Replays of tiny traces whose every figure is computed by hand in the test.

Profiles (``tiny.PROFILES``): ``small`` draws 100 + 200·u W; hardware and operations are 1 USD/h each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_core.models.tariff import FlatTariff
from lepton_core.tariffs import load_hourly_price_csv
from lepton_core.units import JOULES_PER_KWH
from lepton_simulator.carbon import load_carbon_csv
from lepton_simulator.engine import Replay
from lepton_simulator.policies import make_policy
from lepton_simulator.settings import AutoscalerSettings, Lifecycle, SimulationSettings

from .tiny import hourly_price_file, job, node, scenario

START_ISO = "2023-01-01T00:00:00+00:00"


def run(sc, policy: str = "kube-default", **settings):  # type: ignore[no-untyped-def]
    return Replay(sc, make_policy(policy), SimulationSettings(**settings)).run()


def test_static_energy_and_cost_equal_a_hand_computation() -> None:
    # One busy node at u = 0.5 (200 W) and one idle node (100 W) for one hour, 0.5 USD/kWh.
    sc = scenario([node("a", 10000), node("b", 10000)], [job(0, 3600, 5000)], tariff=FlatTariff(0.5))
    r = run(sc)
    assert r.energy_kwh == pytest.approx(0.3)  # (200 + 100) W × 1 h
    assert r.cost.energy == pytest.approx(0.15)
    assert r.cost.hardware == pytest.approx(2.0)  # 2 nodes × 1 h × 1 USD/h
    assert r.cost.operations == pytest.approx(2.0)
    assert r.cost.total == pytest.approx(4.15)
    assert r.mean_cpu_allocation == pytest.approx(0.25)  # 5000 of 20000 m for the whole window
    assert r.makespan_s == 3600.0
    assert (r.jobs_completed, r.jobs_unplaced, r.wait_mean_s) == (1, 0, 0.0)


def test_energy_cost_and_carbon_across_hourly_boundaries(tmp_path: Path) -> None:
    # Job A: [0, 7200) at 5000 m; job B: [1800, 5400) at 2500 m, on one 10-core node:
    # power 200 W, then 250 W from 1800 to 5400, then 200 W.
    # Hour 0: 200 × 1800 + 250 × 1800 = 810 kJ = 0.225 kWh at 0.1 USD; hour 1 the same at 0.3 USD.
    prices = load_hourly_price_csv(hourly_price_file(tmp_path / "p.csv", START_ISO, [100.0, 300.0]), cyclic=True)
    carbon_file = tmp_path / "c.csv"
    carbon_file.write_text(
        "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (LCA)\n2023-01-01 00:00:00,100\n2023-01-01 01:00:00,500\n"
    )
    sc = scenario(
        [node("a", 10000)],
        [job(0, 7200, 5000), job(1800, 3600, 2500)],
        tariff=prices,
        carbon=load_carbon_csv(carbon_file),
    )
    r = run(sc)
    assert r.energy_kwh == pytest.approx(1_620_000 / JOULES_PER_KWH)
    assert r.cost.energy == pytest.approx(0.225 * 0.1 + 0.225 * 0.3)
    assert r.carbon_kg == pytest.approx((0.225 * 100 + 0.225 * 500) / 1000)
    assert r.cost.hardware == pytest.approx(2.0)  # one node, two hours


def test_waiting_jobs_run_by_priority_then_fifo_without_head_of_line_blocking() -> None:
    jobs = [
        job(0, 100, 3000, name="first"),
        job(10, 50, 3000, name="low"),
        job(20, 50, 3000, priority=5, name="high"),
        job(30, 10, 1000, name="small"),  # fits beside "first" right away
    ]
    r = run(scenario([node("a", 4000)], jobs))
    starts = {j.name: float(s) for j, s in zip(jobs, r.start_s, strict=True)}  # jobs are in submit order
    assert starts == {"first": 0.0, "high": 100.0, "low": 150.0, "small": 30.0}
    assert r.wait_mean_s == pytest.approx((0 + 140 + 80 + 0) / 4)


def test_multi_worker_jobs_start_all_or_nothing() -> None:
    jobs = [job(0, 100, 3000, name="blocker"), job(10, 50, 3000, workers=2, name="gang")]
    sc = scenario([node("a", 4000), node("b", 4000)], jobs)
    r = run(sc)
    # The gang fits one worker beside the blocker's node at t = 10 but needs two: it starts at 100.
    assert r.start_s.tolist() == [0.0, 100.0]
    assert r.makespan_s == 150.0


def test_autoscaled_releases_idle_nodes_and_reprovisions_with_boot_delay() -> None:
    jobs = [job(0, 100, 5000), job(150, 50, 5000), job(400, 100, 5000)]
    sc = scenario([node("a", 10000), node("b", 10000)], jobs, tariff=FlatTariff(0.5))
    r = run(
        sc,
        lifecycle=Lifecycle.AUTOSCALED,
        autoscaler=AutoscalerSettings(idle_release_seconds=60.0, boot_delay_seconds=30.0),
    )
    # Node a boots at 0, runs job 1 from 30 to 130, job 2 (no boot: still on) 150-200, is released at 260;
    # it boots again at 400, runs job 3 430-530 and is released at 590. Node b is never needed.
    assert r.start_s.tolist() == [30.0, 150.0, 430.0]
    assert r.provisions == 2
    assert r.node_hours == pytest.approx((260 + 190) / 3600)
    assert r.cost.hardware == pytest.approx(450 / 3600)
    assert r.cost.operations == pytest.approx(450 / 3600)
    joules = 100 * 30 + 200 * 100 + 100 * 20 + 200 * 50 + 100 * 60 + 100 * 30 + 200 * 100 + 100 * 60
    assert r.energy_kwh == pytest.approx(joules / JOULES_PER_KWH)
    assert r.cost.energy == pytest.approx(joules / JOULES_PER_KWH * 0.5)
    assert r.wait_mean_s == pytest.approx(20.0)


def test_autoscaled_waiting_jobs_share_a_booting_node() -> None:
    # Two jobs that fit one node together arrive while it boots: one provision, not two.
    jobs = [job(0, 100, 4000), job(5, 100, 4000)]
    sc = scenario([node("a", 10000), node("b", 10000)], jobs)
    r = run(sc, lifecycle=Lifecycle.AUTOSCALED, autoscaler=AutoscalerSettings(60.0, 30.0))
    assert r.provisions == 1
    assert r.start_s.tolist() == [30.0, 30.0]


def test_a_job_too_big_for_every_node_is_reported_not_queued_forever() -> None:
    r = run(scenario([node("a", 4000)], [job(0, 10, 8000), job(1, 10, 1000)]))
    assert (r.jobs_completed, r.jobs_unplaced) == (1, 1)


def test_shared_gpus_go_to_the_fullest_gpu_that_fits_and_models_are_respected() -> None:
    nodes = [node("g", 8000, gpu=2, model="TESTGPU"), node("c", 8000)]
    jobs = [
        job(0, 100, 1000, num_gpu=1, gpu_milli=600),
        job(1, 100, 1000, num_gpu=1, gpu_milli=300),  # best fit: beside the 600 on GPU 0
        job(2, 100, 1000, num_gpu=1, gpu_milli=500),  # 100 left on GPU 0: GPU 1
        job(3, 100, 1000, num_gpu=1, gpu_milli=600),  # 100 and 500 left: waits until t = 100
        job(4, 10, 1000, gpu_models=frozenset({"OTHER"}), num_gpu=1, gpu_milli=1000),  # no such GPU model
    ]
    r = run(scenario(nodes, jobs), "most-allocated")
    assert r.start_s[:4].tolist() == [0.0, 1.0, 2.0, 100.0]
    assert r.jobs_unplaced == 1
    # GPU power: 2 GPUs at 50 W idle, +200 W per busy GPU-share.
    assert r.mean_gpu_allocation > 0.0


def test_replays_are_reproducible_with_a_seed() -> None:
    nodes = [node(f"n{i}", 4000) for i in range(6)]
    jobs = [job(float(i), 50.0, 1000) for i in range(40)]
    a = run(scenario(nodes, jobs), seed=7)
    b = run(scenario(nodes, jobs), seed=7)
    assert a.cost.energy == b.cost.energy
    assert a.start_s.tolist() == b.start_s.tolist()
