"""The shared scoring function (``lepton_core.scoring``): properties over random clusters, and the money
terms checked against the documented formulas computed with the core models one node at a time."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import lepton_core.scoring.score as score_module
from lepton_core.models import PowerCurve
from lepton_core.profiles import ProfileSet, default_profiles
from lepton_core.scoring import (
    MAX_SCORE,
    NodeCostTable,
    NodeState,
    PodDemand,
    ScoreResult,
    ScoringPolicy,
    ScoringWeights,
    normalize_scores,
    score_nodes,
    top_candidates,
)

PROFILES: ProfileSet = default_profiles()
GPU_PROFILES = [p for p in PROFILES.profiles if p.gpu is not None and p.gpu_count > 0]
# A platform curve measured at unequal steps: with it in a cluster the curves' union grid is uneven and
# the kernels look segments up by search instead of by arithmetic (both paths are drawn below).
UNEVEN = dataclasses.replace(
    PROFILES.profiles[0], name="uneven-curve", platform=PowerCurve((0.0, 0.3, 0.75, 1.0), (90.0, 200.0, 260.0, 310.0))
)
CLUSTER_PROFILES = [*PROFILES.profiles, UNEVEN]
NOW = 1_700_000_000.0


@st.composite
def clusters(draw: st.DrawFn, max_nodes: int = 12) -> tuple[NodeState, PodDemand]:
    n = draw(st.integers(1, max_nodes))
    profiles = [draw(st.sampled_from(CLUSTER_PROFILES)) for _ in range(n)]
    gpus = [p.gpu_count if p.gpu is not None else 0 for p in profiles]
    costs = NodeCostTable.from_profiles(profiles, gpus)
    frac = st.floats(0.0, 1.0)
    cpu_alloc = np.array([draw(st.sampled_from([16.0, 64.0, 96.0])) for _ in range(n)])
    fresh_or_not = st.sampled_from([NOW - 5.0, NOW - 5000.0, math.nan])
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=cpu_alloc,
        allocatable_memory_bytes=np.full(n, 512e9),
        allocatable_gpus=np.array(gpus, dtype=float),
        requested_cpu_cores=np.array([draw(frac) for _ in range(n)]) * cpu_alloc,
        requested_gpus=np.array([float(draw(st.integers(0, g))) for g in gpus]),
        cpu_utilization=[draw(frac) for _ in range(n)],
        gpu_utilization=[draw(st.one_of(frac, st.just(math.nan))) for _ in range(n)],
        telemetry_observed_at=[draw(fresh_or_not) for _ in range(n)],
        pending_cpu_cores=[draw(st.floats(0.0, 8.0)) for _ in range(n)],
        workload_pods=[float(draw(st.integers(0, 3))) for _ in range(n)],
        autoscaled=[draw(st.booleans()) for _ in range(n)],
        power_cap_watts=[draw(st.sampled_from([math.nan, 300.0, 5000.0])) for _ in range(n)],
    )
    demand = PodDemand(
        cpu_cores=draw(st.floats(0.0, 16.0)),
        memory_bytes=draw(st.sampled_from([0.0, 8e9])),
        gpus=draw(st.sampled_from([0.0, 0.3, 0.5, 1.0, 2.0, 8.0])),
        gpu_busy_fraction=draw(st.sampled_from([1.0, 0.5])),
    )
    return state, demand


weights = st.sampled_from(["cost", "balance", "pack"]).map(ScoringWeights.preset)
policies = st.builds(
    ScoringPolicy,
    weights=st.builds(
        lambda w, fixed, keep, risk: w.with_overrides(
            {"fixed_share": fixed, "keep_alive": keep, "overload_risk": risk}
        ),
        weights,
        st.sampled_from([0.0, 1.0]),
        st.sampled_from([0.0, 1.0]),
        st.sampled_from([0.0, 1.0]),
    ),
    fail_open=st.booleans(),
)


@given(clusters(), policies)
@settings(max_examples=150, deadline=None)
def test_scores_are_integers_0_to_10_with_the_cheapest_fresh_safe_node_on_top(
    cluster: tuple[NodeState, PodDemand], policy: ScoringPolicy
) -> None:
    state, demand = cluster
    r = score_nodes(demand, state, NOW, policy)
    assert r.scores.dtype == np.int64
    assert ((r.scores >= 0) & (r.scores <= MAX_SCORE)).all()
    assert (r.scores[~r.safe] == 0).all()
    assert (r.scores[r.safe] >= 1).all()
    assert (r.scores[~r.fresh] <= MAX_SCORE - 1).all()  # missing or stale data never gets the top score
    assert not (r.safe & r.rejected).any()
    fresh_safe = r.safe & r.fresh
    if fresh_safe.any():
        cheapest = r.objective_per_hour[fresh_safe].min()
        assert r.scores[fresh_safe].max() == MAX_SCORE
        assert r.objective_per_hour[fresh_safe & (r.scores == MAX_SCORE)].max() == pytest.approx(cheapest)
        # A stale node never outranks the best fresh node.
        assert (r.scores[r.safe & ~r.fresh] < MAX_SCORE).all()
    # Cheaper never scores lower (among fresh safe nodes, where nothing else adjusts the score).
    idx = np.flatnonzero(fresh_safe)
    order = idx[np.argsort(r.objective_per_hour[idx], kind="stable")]
    assert (np.diff(r.scores[order]) <= 0).all()


@given(clusters(max_nodes=20), st.data())
@settings(max_examples=60, deadline=None)
def test_scoring_a_subset_equals_the_subset_of_scoring_all(
    cluster: tuple[NodeState, PodDemand], data: st.DataObject
) -> None:
    state, demand = cluster
    n = len(state)
    picked = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)), dtype=np.intp)
    whole = score_nodes(demand, state, NOW)
    part = score_nodes(demand, state, NOW, candidates=picked)
    np.testing.assert_allclose(part.objective_per_hour, whole.objective_per_hour[picked])
    np.testing.assert_array_equal(part.rejected, whole.rejected[picked])
    np.testing.assert_array_equal(part.fits, whole.fits[picked])
    # What the extender does with a filter result kept for prioritize: re-rank a subset of it.
    np.testing.assert_array_equal(
        normalize_scores(whole.objective_per_hour[picked], whole.safe[picked], whole.fresh[picked]), part.scores
    )
    # A kept subset explains those nodes as scoring them did (scores aside: those ranked all nodes).
    kept = whole.take(picked)
    positions = np.arange(picked.size, dtype=np.intp)
    strip = [{k: v for k, v in b.items() if k != "score"} for b in kept.breakdowns(positions)]
    assert strip == [{k: v for k, v in b.items() if k != "score"} for b in part.breakdowns(positions)]


@given(st.lists(st.tuples(clusters(max_nodes=6), st.sampled_from([0.0, 60.0, 4000.0])), min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_breakdowns_of_joined_results_are_each_results_own(
    cases: list[tuple[tuple[NodeState, PodDemand], float]],
) -> None:
    """A decision-log flush explains many decisions at once (``ScoreResult.concat``): every node's
    breakdown is what its own result says, each at the time it was scored (telemetry ages, what counts
    as fresh)."""
    results = [score_nodes(demand, state, NOW + later) for (state, demand), later in cases]
    joined = ScoreResult.concat(results)
    expected = [b for r in results for b in r.breakdowns(np.arange(len(r)))]
    assert joined.breakdowns(np.arange(len(joined))) == expected
    other = score_nodes(cases[0][0][1], cases[0][0][0], NOW, ScoringPolicy(stale_after_seconds=1.0))
    with pytest.raises(ValueError, match="different scoring policies"):
        ScoreResult.concat([results[0], other])


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=40), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=40))
def test_tabulated_power_equals_the_power_table(cpu: list[float], gpu: list[float]) -> None:
    n = min(len(cpu), len(gpu))
    profiles = [PROFILES.profiles[i % len(PROFILES.profiles)] for i in range(n)]
    costs = NodeCostTable.from_profiles(profiles, [p.gpu_count for p in profiles])
    u_cpu: NDArray[np.float64] = np.array(cpu[:n])
    u_gpu: NDArray[np.float64] = np.array(gpu[:n])
    expected = costs.power.platform_watts(u_cpu) + costs.power.gpu_watts(u_gpu)
    np.testing.assert_allclose(costs.it_power_watts(u_cpu, u_gpu), expected, rtol=1e-12, atol=1e-9)
    picked = np.arange(n)[::-1].copy()
    np.testing.assert_allclose(
        costs.take(picked).it_power_watts(u_cpu[picked], u_gpu[picked]), expected[picked], rtol=1e-12, atol=1e-9
    )


@st.composite
def single_node_cases(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "profile_index": draw(st.integers(0, len(PROFILES.profiles) - 1)),
        "u_cpu": draw(st.floats(0.0, 0.9)),
        "u_gpu": draw(st.floats(0.0, 0.9)),
        "cpu": draw(st.floats(0.0, 8.0)),
        "gpus": draw(st.sampled_from([0.0, 0.25, 0.6, 1.0, 2.0, 3.5])),
        "requested_gpus": draw(st.sampled_from([0.0, 0.5, 1.0, 1.75])),
        "gpu_busy": draw(st.sampled_from([1.0, 0.7, 0.0])),
        "autoscaled": draw(st.booleans()),
        "empty": draw(st.booleans()),
        "fixed_share": draw(st.sampled_from([0.0, 0.5, 1.0])),
    }


@given(single_node_cases())
@settings(max_examples=300, deadline=None)
def test_money_terms_match_the_documented_formulas(case: dict[str, Any]) -> None:
    """One node, fresh telemetry: recompute each term with the core models (GpuPowerModel per GPU,
    NodePowerModel's platform curve, CostProfile)."""
    u_cpu, u_gpu, cpu, gpus = case["u_cpu"], case["u_gpu"], case["cpu"], case["gpus"]
    autoscaled, empty, f = case["autoscaled"], case["empty"], case["gpu_busy"]
    profile = PROFILES.profiles[case["profile_index"]]
    gpu_count = profile.gpu_count if profile.gpu is not None else 0
    requested_gpus = min(case["requested_gpus"], float(gpu_count))
    if gpus > gpu_count - requested_gpus:
        gpus = 0.0
    alloc_cpu = 64.0
    costs = NodeCostTable.from_profiles([profile], [gpu_count])
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=[alloc_cpu],
        allocatable_memory_bytes=[256e9],
        allocatable_gpus=[float(gpu_count)],
        requested_gpus=[requested_gpus],
        cpu_utilization=[u_cpu],
        gpu_utilization=[u_gpu],
        telemetry_observed_at=[NOW],
        workload_pods=[0.0 if empty else 2.0],
        autoscaled=[autoscaled],
    )
    demand = PodDemand(cpu_cores=cpu, gpus=gpus, gpu_busy_fraction=f)
    policy = ScoringPolicy(weights=ScoringWeights(fixed_share=case["fixed_share"]))
    r = score_nodes(demand, state, NOW, policy)
    model = profile.power_model(gpu_count)
    fixed = profile.fixed_cost_per_hour(gpu_count)
    price = profile.tariff.price_per_kwh_at(NOW)
    u_gpu_now = u_gpu if gpu_count else 0.0
    u_cpu_after = u_cpu + cpu / alloc_cpu
    u_gpu_after = u_gpu_now + (gpus * f / gpu_count if gpu_count else 0.0)
    # Energy: the platform curve now → after, plus per GPU: each whole GPU from idle to busy f, the
    # fractional share on the partly allocated GPU when it fits there (else on an idle one).
    platform = model.platform.power_watts(min(u_cpu_after, 1.0)) - model.platform.power_watts(u_cpu)
    gpu_delta = 0.0
    if gpus and model.gpu is not None:
        g = model.gpu
        whole = math.floor(gpus)
        phi = gpus - whole
        gpu_delta += whole * (g.power_watts(f) - g.idle_watts)
        partial = requested_gpus - math.floor(requested_gpus)
        u0 = partial if partial + phi <= 1.0 + 1e-9 else 0.0
        if phi:
            gpu_delta += g.power_watts(u0 + phi * f) - g.power_watts(u0)
    delta_wall_watts = (platform + gpu_delta) * model.pue
    energy = delta_wall_watts / 1000.0 * price
    share = min(1.0, max(cpu / alloc_cpu, gpus / gpu_count if gpu_count else 0.0))
    assert r.hardware_cost_per_hour[0] == pytest.approx(share * fixed.hardware)
    assert r.operations_cost_per_hour[0] == pytest.approx(share * fixed.operations)
    assert r.energy_cost_per_hour[0] == pytest.approx(energy, rel=1e-9, abs=1e-12)
    # Power now: the platform at u_cpu plus the mean GPU utilization read as that many GPUs at full power.
    gpu_now_watts = model.gpu_count * (
        model.gpu.idle_watts + (model.gpu.max_watts - model.gpu.idle_watts) * u_gpu_now if model.gpu else 0.0
    )
    it_now = model.platform.power_watts(u_cpu) + gpu_now_watts
    keep_alive = (
        ((1.0 - share) * (fixed.hardware + fixed.operations) + it_now * model.pue / 1000.0 * price)
        if (autoscaled and empty)
        else 0.0
    )
    assert r.keep_alive_cost_per_hour[0] == pytest.approx(keep_alive)
    soft = ScoringPolicy().soft_utilization
    # CPU and a shared GPU against the soft threshold; whole GPUs against it raised to the requested
    # fraction (GPU pods only).
    excess = u_cpu_after - soft
    if gpus and gpu_count:
        whole_only = gpus == math.floor(gpus)
        excess = max(excess, u_gpu_after - (max(soft, (requested_gpus + gpus) / gpu_count) if whole_only else soft))
    excess = max(0.0, excess) / (1.0 - soft)
    node_cost = fixed.hardware + fixed.operations + (it_now * model.pue + delta_wall_watts) / 1000.0 * price
    assert r.overload_risk_cost_per_hour[0] == pytest.approx(excess**2 * node_cost)
    objective = energy + case["fixed_share"] * share * (fixed.hardware + fixed.operations)
    objective += keep_alive + excess**2 * node_cost
    assert r.objective_per_hour[0] == pytest.approx(objective)


@given(
    st.sampled_from(GPU_PROFILES),
    st.integers(0, 8),
    st.integers(1, 8),
    st.floats(0.0, 0.74),  # CPU below the soft threshold: any risk would come from the GPUs
    st.sampled_from([1.0, 0.6]),
)
@settings(max_examples=200, deadline=None)
def test_gpu_load_that_requests_account_for_is_never_overload(
    profile: Any, requested: int, asked: int, cpu_load: float, busy: float
) -> None:
    """Whole GPUs are exclusive: a GPU pod that fits is not filtered for GPU utilization and pays no GPU
    overload risk as long as the measured GPU load is what the requests account for — up to the last GPU."""
    count = profile.gpu_count
    requested = min(requested, count)
    asked = min(asked, count - requested) or 1
    if requested + asked > count:
        requested = count - asked
    costs = NodeCostTable.from_profiles([profile], [count])
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=[96.0],
        allocatable_memory_bytes=[512e9],
        allocatable_gpus=[float(count)],
        requested_gpus=[float(requested)],
        requested_cpu_cores=[cpu_load * 96.0],
        cpu_utilization=[cpu_load],
        gpu_utilization=[requested / count],
        telemetry_observed_at=[NOW],
        workload_pods=[1.0],
    )
    r = score_nodes(PodDemand(gpus=float(asked), gpu_busy_fraction=busy), state, NOW)
    assert r.fits[0] and not r.rejected[0] and r.scores[0] == MAX_SCORE
    assert r.overload_risk_cost_per_hour[0] == 0.0


@given(st.sampled_from(GPU_PROFILES), st.floats(0.96, 1.0), st.integers(0, 4))
@settings(max_examples=100, deadline=None)
def test_measured_gpu_load_beyond_requests_is_filtered(profile: Any, measured: float, requested: int) -> None:
    count = profile.gpu_count
    requested = min(requested, count - 1)
    costs = NodeCostTable.from_profiles([profile], [count])
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=[96.0],
        allocatable_memory_bytes=[512e9],
        allocatable_gpus=[float(count)],
        requested_gpus=[float(requested)],
        cpu_utilization=[0.1],
        gpu_utilization=[measured],
        telemetry_observed_at=[NOW],
    )
    gpu_pod = score_nodes(PodDemand(gpus=1.0), state, NOW)
    assert gpu_pod.rejected[0]
    assert "beyond what requests account for" in (gpu_pod.reject_reason(0) or "")
    # A CPU pod does not use the GPUs: the GPU load does not filter it.
    assert not score_nodes(PodDemand(cpu_cores=2.0), state, NOW).rejected[0]


@given(st.sampled_from(GPU_PROFILES), st.floats(0.0, 0.9), st.integers(1, 8))
@settings(max_examples=100, deadline=None)
def test_whole_gpu_power_is_per_gpu_and_ignores_the_nodes_mean_utilization(
    profile: Any, mean_load: float, asked: int
) -> None:
    """ΔP of k whole GPUs = k × (P(1) − P(idle)) of one GPU, whatever the node's mean GPU utilization."""
    count = profile.gpu_count
    asked = min(asked, count)
    costs = NodeCostTable.from_profiles([profile] * 2, [count] * 2)
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=[96.0, 96.0],
        allocatable_memory_bytes=[512e9, 512e9],
        allocatable_gpus=[float(count)] * 2,
        cpu_utilization=[0.2, 0.2],
        gpu_utilization=[0.0, mean_load],
        telemetry_observed_at=[NOW, NOW],
    )
    r = score_nodes(PodDemand(gpus=float(asked)), state, NOW)
    assert profile.gpu is not None
    one_gpu = profile.gpu.max_watts - profile.gpu.idle_watts
    np.testing.assert_allclose(r.delta_power_watts, [asked * one_gpu] * 2)


def test_fixed_share_weight_removes_the_share_from_the_objective() -> None:
    profiles = [PROFILES.by_name("gpu-a100-80gb"), PROFILES.by_name("gpu-t4")]
    costs = NodeCostTable.from_profiles(profiles, [8, 2])
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=[96.0, 96.0],
        allocatable_memory_bytes=[512e9, 512e9],
        allocatable_gpus=[8.0, 2.0],
        cpu_utilization=[0.1, 0.1],
        gpu_utilization=[0.0, 0.0],
        telemetry_observed_at=[NOW, NOW],
    )
    demand = PodDemand(cpu_cores=4.0, gpus=1.0)
    with_share = score_nodes(demand, state, NOW)
    without = score_nodes(demand, state, NOW, ScoringPolicy(weights=ScoringWeights(fixed_share=0.0)))
    np.testing.assert_allclose(without.objective_per_hour, with_share.energy_cost_per_hour)
    np.testing.assert_allclose(
        with_share.objective_per_hour - without.objective_per_hour,
        with_share.hardware_cost_per_hour + with_share.operations_cost_per_hour,
    )


def test_state_arrays_update_in_place_and_cannot_be_rebound() -> None:
    costs = NodeCostTable.from_profiles([PROFILES.default], [0])
    state = NodeState.build(
        costs=costs, now=NOW, allocatable_cpu_cores=[8.0], allocatable_memory_bytes=[1e9], allocatable_gpus=[0.0]
    )
    state.requested_cpu_cores[0] += 2.0
    assert state.requested_cpu_cores[0] == 2.0
    with pytest.raises(AttributeError, match="in place"):
        state.requested_cpu_cores = np.zeros(1)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        state.allocatable_cpu_cores[0] = 1.0


def test_a_result_keeps_its_own_copy_of_the_inputs() -> None:
    costs = NodeCostTable.from_profiles([PROFILES.default] * 2, [0, 0])
    state = NodeState.build(
        costs=costs,
        now=NOW,
        allocatable_cpu_cores=[8.0, 8.0],
        allocatable_memory_bytes=[1e9, 1e9],
        allocatable_gpus=[0.0, 0.0],
        cpu_utilization=[0.1, 0.2],
        telemetry_observed_at=[NOW, NOW],
    )
    r = score_nodes(PodDemand(cpu_cores=1.0), state, NOW)
    before = r.breakdowns(np.arange(2))
    state.cpu_utilization[:] = 0.9
    state.telemetry_observed_at[:] = math.nan
    assert r.breakdowns(np.arange(2)) == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"allocatable_cpu_cores": [8.0, 8.0]}, "allocatable_cpu_cores: expected 1 entries"),
        ({"requested_gpus": [-1.0]}, "requested_gpus[0]"),
        ({"cpu_utilization": [1.5]}, "cpu_utilization[0]"),
        ({"power_cap_watts": [-5.0]}, "power_cap_watts[0]"),
    ],
)
def test_bad_state_names_the_field(kwargs: dict[str, list[float]], field: str) -> None:
    base: dict[str, list[float]] = {
        "allocatable_cpu_cores": [8.0],
        "allocatable_memory_bytes": [1e9],
        "allocatable_gpus": [0.0],
    }
    with pytest.raises(ValueError, match=re.escape(field)):
        NodeState.build(costs=NodeCostTable.from_profiles([PROFILES.default], [0]), now=NOW, **{**base, **kwargs})


def test_policy_and_weights_validation() -> None:
    with pytest.raises(ValueError, match="preset: unknown preset 'cheapest'"):
        ScoringWeights.preset("cheapest")
    with pytest.raises(ValueError, match=r"weights\.balance"):
        ScoringWeights(balance=-1.0)
    with pytest.raises(ValueError, match=r"weights\.fixed_share"):
        ScoringWeights(fixed_share=math.nan)
    with pytest.raises(ValueError, match="soft_utilization"):
        ScoringPolicy(soft_utilization=0.99, max_utilization=0.9)
    with pytest.raises(ValueError, match=r"weights\.pack: must be a number"):
        ScoringWeights().with_overrides({"pack": "x"})
    with pytest.raises(ValueError, match=r"cpu_cores: must be a finite"):
        PodDemand(cpu_cores=-1.0)


@pytest.mark.skipif(score_module._compiled is None, reason="numba not installed: only the numpy kernel runs")
@given(clusters(max_nodes=16), policies, st.none() | st.lists(st.integers(0, 15), min_size=1, max_size=24))
@settings(max_examples=200, deadline=None)
def test_the_compiled_kernel_computes_what_the_numpy_kernel_does(
    cluster: tuple[NodeState, PodDemand], policy: ScoringPolicy, picks: list[int] | None
) -> None:
    """The numpy kernel is the readable reference; the compiled one (numba) must agree: every figure to
    rounding, every verdict exactly, and the scores exactly where only +, −, ×, ÷ are involved (with GPU
    busy fractions < 1 or GPU shares, exp/log of numpy and of the C library may differ in the last ulp,
    which can move a score across an integer boundary by one). Over every node, or over candidates in
    any order, repeated ones included (the compiled kernel reads them from the state in place)."""
    state, demand = cluster
    candidates = None
    if picks is not None:
        candidates = np.array([i % len(state) for i in picks], dtype=np.intp)
    compiled = score_nodes(demand, state, NOW, policy, candidates, best=3)
    score_module._use_compiled = False
    try:
        reference = score_nodes(demand, state, NOW, policy, candidates, best=3)
    finally:
        score_module._use_compiled = True
    np.testing.assert_allclose(compiled._f, reference._f, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(compiled._b, reference._b)
    # Counted and ranked in the same compiled call: what counting and ranking afterwards answers.
    assert compiled.rejected_count == np.count_nonzero(reference.rejected)
    assert compiled.fresh_count == np.count_nonzero(reference.fresh)
    assert compiled.top.size == reference.top.size == min(3, len(reference))
    if demand.gpu_busy_fraction == 1.0 and demand.shared_gpu_fraction == 0.0:
        np.testing.assert_array_equal(compiled.scores, reference.scores)
        # The same ranks (ties in objective may pick either of two equal nodes).
        for got, want in zip(compiled.top.tolist(), reference.top.tolist(), strict=True):
            assert compiled.scores[got] == reference.scores[want]
            assert compiled.safe[got] == reference.safe[want]
            if reference.safe[want]:
                assert compiled.objective_per_hour[got] == pytest.approx(reference.objective_per_hour[want])
    else:
        assert np.abs(compiled.scores - reference.scores).max() <= 1


@given(
    st.lists(st.tuples(st.integers(0, 10), st.floats(-5.0, 5.0), st.booleans()), min_size=1, max_size=40),
    st.integers(1, 5),
)
@settings(deadline=None)  # the first call may load the compiled kernel
def test_top_candidates_are_the_best_by_score_then_objective(rows: list[tuple[int, float, bool]], k: int) -> None:
    scores = np.array([r[0] for r in rows], dtype=np.int64)
    objective = np.array([r[1] for r in rows])
    safe = np.array([r[2] for r in rows])
    top = top_candidates(scores, objective, safe, k)
    key = [(-int(s), o if ok else math.inf) for s, o, ok in rows]
    assert [key[i] for i in top.tolist()] == sorted(key)[: min(k, len(rows))]
    assert len(set(top.tolist())) == top.size
