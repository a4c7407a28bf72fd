"""Each baseline policy orders nodes the way its published formula says (hand-computed tables).

Nodes (cpu milli / memory MiB, already allocated) and a pod of 1,000 m / 1,024 MiB:

    n0: 4000 / 8192, 3000 m and 1024 MiB allocated
    n1: 4000 / 8192, empty
    n2: 8000 / 8192, 2000 m and 5120 MiB allocated   ("kinked" power curve)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lepton_core.scoring
from lepton_core.scoring import NodeCostTable, NodeState, PodDemand, score_nodes
from lepton_core.tariffs import load_hourly_price_csv
from lepton_simulator.engine import Replay
from lepton_simulator.policies import POLICIES, make_policy
from lepton_simulator.policies import lepton as lepton_module
from lepton_simulator.policies.kube_default import KubeDefault
from lepton_simulator.policies.lepton import LeptonPolicy, price_step_around, simulator_scoring_policy
from lepton_simulator.policies.most_allocated import MostAllocated
from lepton_simulator.policies.node_resources import balanced_allocation_scores, resource_fit_scores
from lepton_simulator.policies.peaks import Peaks
from lepton_simulator.policies.trimaran_tlp import TargetLoadPacking
from lepton_simulator.settings import SimulationSettings

from .tiny import context, hourly_price_file, job, node, scenario

NODES = [node("n0", 4000), node("n1", 4000), node("n2", 8000, test__kind="kinked")]
ALLOCATED = [(0, 3000, 1024), (2, 2000, 5120)]
POD = job(0, 60, 1000, 1024)


def _ctx():  # type: ignore[no-untyped-def]
    sc = scenario(NODES, [POD])
    return context(sc.catalog, ALLOCATED, POD)


def test_kube_default_matches_hand_computed_least_allocated_plus_balanced() -> None:
    ctx, _ = _ctx()
    # LeastAllocated: n0 (0 + 75) // 2 = 37; n1 (75 + 87) // 2 = 81; n2 (62 + 25) // 2 = 43.
    assert resource_fit_scores(ctx, (("cpu", 1), ("memory", 1)), most_allocated=False).tolist() == [37, 81, 43]
    # Balanced: 100·(1 − |f_cpu − f_mem| / 2): n0 62 (1.0 vs 0.25), n1 93, n2 81.
    assert balanced_allocation_scores(ctx).tolist() == [62, 93, 81]
    scores = KubeDefault().score(ctx)
    assert scores.tolist() == [99.0, 174.0, 124.0]
    # The general resource loop (any resources and weights) agrees with the default-profile fast path.
    general = KubeDefault(resources=(("cpu", 2), ("memory", 2)), fit_weight=1, balanced_weight=1)
    assert general.score(ctx).tolist() == scores.tolist()
    assert list(np.argsort(-scores)) == [1, 2, 0]  # spreads: the empty node first


def test_most_allocated_packs_onto_the_fullest_node() -> None:
    ctx, _ = _ctx()
    # MostAllocated: n0 (100 + 25) // 2 = 62; n1 (25 + 12) // 2 = 18; n2 (37 + 75) // 2 = 56.
    scores = MostAllocated().score(ctx)
    assert scores.tolist() == [62.0, 18.0, 56.0]
    assert list(np.argsort(-scores)) == [0, 2, 1]


def test_most_allocated_counts_gpus_only_for_gpu_pods() -> None:
    nodes = [node("g0", 8000, gpu=2, model="TESTGPU"), node("g1", 8000, gpu=2, model="TESTGPU")]
    sc = scenario(nodes, [job(0, 1, 1000)])
    gpu_pod = job(0, 1, 1000, num_gpu=1, gpu_milli=1000)
    ctx, state = context(sc.catalog, [], gpu_pod)
    first = state.place(0, ctx.req)  # one GPU of g0 taken
    assert first.gpu_slots == (0,)
    # g0: cpu (1000 + 1000) / 8000 → 25, memory 2048 / 8192 → 25, GPU 2000 / 2000 → 100: 150 // 3 = 50;
    # g1: 12, 12 and 1000 / 2000 → 50: 74 // 3 = 24.
    assert MostAllocated().score(ctx).tolist() == [50.0, 24.0]
    cpu_pod_ctx, _ = context(sc.catalog, [(0, 1000, 1024)], job(0, 1, 1000))
    # A CPU-only pod bypasses the GPU resource: (25 + 25) // 2 on g0 and (12 + 12) // 2 on g1.
    assert MostAllocated().score(cpu_pod_ctx).tolist() == [25.0, 12.0]


def test_trimaran_target_load_packing_fills_towards_40_percent_then_spreads() -> None:
    ctx, _ = _ctx()
    # Predicted pod CPU = round(1.5 × 1000) = 1500 m.
    # n0: (3000 + 1500) / 4000 = 112.5 % > 100 → 0; n1: 37.5 % ≤ 40 → round(60 × 37.5 / 40 + 40) = 96;
    # n2: 43.75 % > 40 → round(40 × 56.25 / 60) = round(37.5) = 38 (half up, as Go's math.Round).
    scores = TargetLoadPacking().score(ctx)
    assert scores.tolist() == [0.0, 96.0, 38.0]
    assert list(np.argsort(-scores)) == [1, 2, 0]


def test_trimaran_prefers_the_node_that_reaches_the_target() -> None:
    nodes = [node("a", 10000), node("b", 10000), node("c", 10000)]
    sc = scenario(nodes, [job(0, 1, 1000)])
    # a at 10 %, b at 25 %, c at 60 % before a 1000 m pod (predicted 1500 m).
    ctx, _ = context(sc.catalog, [(0, 1000, 1), (1, 2500, 1), (2, 6000, 1)], job(0, 1, 1000))
    scores = TargetLoadPacking().score(ctx)
    # a: 25 % → 77.5 → 78; b: 40 % → 100; c: 75 % → 40 × 25 / 60 = 16.7 → 17.
    assert scores.tolist() == [78.0, 100.0, 17.0]


def test_peaks_picks_the_smallest_power_increase() -> None:
    ctx, _ = _ctx()
    # n0, n1: linear 100→300 W over 4 cores: +0.25 utilization = +50 W.
    # n2: kinked curve, 0.25 → 0.375 utilization on the 100 W-per-unit first segment: +12.5 W.
    assert ctx.power_delta_watts() == pytest.approx([50.0, 50.0, 12.5])
    scores = Peaks().score(ctx)
    assert scores.tolist() == [0.0, 0.0, 100.0]


def test_peaks_counts_the_gpus_a_pod_takes() -> None:
    nodes = [node("g0", 8000, gpu=2, model="TESTGPU"), node("c0", 8000)]
    sc = scenario(nodes, [job(0, 1, 1000)])
    ctx, _ = context(sc.catalog, [], job(0, 1, 2000, num_gpu=1, gpu_milli=500))
    # g0: platform 100→200 W: +0.25 × 100 = 25 W; one GPU 0 → 0.5 of (250 − 50) W = +100 W.
    assert ctx.candidates.tolist() == [0, 1]
    assert ctx.power_delta_watts()[0] == pytest.approx(125.0)


def test_lepton_policy_calls_the_extenders_scoring_function() -> None:
    assert lepton_module.score_nodes is lepton_core.scoring.score_nodes


def test_lepton_ranks_nodes_as_score_nodes_does() -> None:
    ctx, state = _ctx()
    policy = LeptonPolicy()
    got = policy.score(ctx)
    # An independent NodeState with the same allocations, scored directly.
    sc = scenario(NODES, [POD])
    costs = NodeCostTable.from_profiles(sc.catalog.profiles, [0, 0, 0])
    util = state.alloc_cpu / state.cap_cpu
    direct = NodeState.build(
        costs=costs,
        now=ctx.epoch_s,
        allocatable_cpu_cores=state.cap_cpu / 1000.0,
        allocatable_memory_bytes=state.cap_mem * 2.0**20,
        allocatable_gpus=np.zeros(3),
        requested_cpu_cores=state.alloc_cpu / 1000.0,
        requested_memory_bytes=state.alloc_mem * 2.0**20,
        cpu_utilization=util,
        gpu_utilization=np.zeros(3),
        telemetry_observed_at=np.full(3, ctx.epoch_s),
        workload_pods=state.pods.astype(float),
    )
    result = score_nodes(
        PodDemand(cpu_cores=1.0, memory_bytes=2.0**30), direct, now=ctx.epoch_s, policy=simulator_scoring_policy()
    )
    # The shipped deployment: default plugins + extender weight 5 × 10 per Lepton point. n0 reaches
    # 100 % CPU by requests: not filtered (requests are what fit admits), but it pays the CPU risk.
    expected = np.where(result.safe, KubeDefault().score(ctx) + 50 * result.scores, -np.inf)
    assert got.tolist() == expected.tolist()
    assert result.safe.tolist() == [True, True, True]
    assert result.scores.max() == 10 and result.scores[0] < 10


def test_lepton_places_pods_that_take_every_gpu_of_a_node() -> None:
    """GPUs are allocated whole: a pod taking all 8 GPUs, and then the last GPU of a node, are normal
    placements, not overload (they used to be filtered on every node and never ran)."""
    nodes = [node("g0", 96000, gpu=8, model="TESTGPU"), node("g1", 96000, gpu=8, model="TESTGPU")]
    jobs = [job(0.0, 100.0, 8000, num_gpu=8, gpu_milli=1000), job(1.0, 100.0, 8000, num_gpu=8, gpu_milli=1000)]
    jobs += [job(200.0 + i, 1000.0, 1000, num_gpu=1, gpu_milli=1000) for i in range(16)]  # fill both nodes
    result = Replay(scenario(nodes, jobs), make_policy("lepton"), SimulationSettings()).run()
    assert result.jobs_completed == len(jobs)
    assert result.jobs_unplaced == 0


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_places_a_small_trace_completely(name: str) -> None:
    nodes = [node("n0", 4000), node("n1", 8000), node("n2", 4000, test__kind="kinked")]
    jobs = [job(10.0 * i, 100.0, 500 + 250 * (i % 5)) for i in range(30)]
    result = Replay(scenario(nodes, jobs), make_policy(name), SimulationSettings()).run()
    assert result.jobs_completed == 30
    assert result.jobs_unplaced == 0


def test_lepton_price_cache_changes_exactly_at_tariff_steps(tmp_path: Path) -> None:
    prices = load_hourly_price_csv(
        hourly_price_file(tmp_path / "p.csv", "2023-01-01T00:00:00+00:00", [10.0, 20.0, 30.0]), cyclic=True
    )
    sc = scenario(NODES, [POD], tariff=prices)
    costs = NodeCostTable.from_profiles(sc.catalog.profiles, [0, 0, 0])
    start = 1_672_531_200.0
    for t in (
        start - 5000.0,
        start,
        start + 1.0,
        start + 3599.5,
        start + 3600.0,
        start + 3 * 3600.0 + 7.0,
        start + 1e6,
    ):
        lo, hi = price_step_around(costs, t)
        assert lo <= t < hi
        assert hi - lo == pytest.approx(3600.0)
        here = costs.prices_per_kwh_at(t)
        assert costs.prices_per_kwh_at(lo + 1e-3).tolist() == here.tolist()
        assert costs.prices_per_kwh_at(hi - 1e-3).tolist() == here.tolist()
