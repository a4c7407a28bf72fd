"""Which node wins, for each scoring rule and each weight: table tests on hand-checkable profiles that
assert the order of nodes (as scheduler-plugins' tests do), not raw numbers.

Profiles (flat tariff 0.20/kWh, PUE 1):
    big8    8 GPUs, per GPU idle 30 W, max 207 W, exponent 2.65 (V100-like, convex); platform 200→400 W
    small1  1 GPU, idle 10 W, max 110 W, exponent 1.2; platform 100→200 W
    cheaphw / dearhw   CPU only, platform 100→300 W; cheap hardware on a dear tariff, and the reverse
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import yaml

from lepton_core.profiles import ProfileSet, build_profile_set
from lepton_core.scoring import (
    MAX_SCORE,
    NodeCostTable,
    NodeState,
    PodDemand,
    ScoringPolicy,
    ScoringWeights,
    score_nodes,
)

NOW = 1_700_000_000.0
PROFILES_YAML = """
apiVersion: lepton.ai/v1alpha1
kind: CostProfileSet
currency: USD
defaultProfile: cheaphw
tariffs:
  default: {flat: {pricePerKWh: 0.20}}
  dear: {flat: {pricePerKWh: 2.0}}
  cheap: {flat: {pricePerKWh: 0.02}}
profiles:
  - name: big8
    platform: {curve: [[0, 200], [1, 400]]}
    gpu: {model: BIG, count: 8, idleWatts: 30, maxWatts: 207, exponent: 2.65, pricePerGpu: 10000}
    hardware: {purchasePrice: 20000, lifetimeYears: 4}
    operations: {perNodeYear: 2000}
  - name: small1
    platform: {curve: [[0, 100], [1, 200]]}
    gpu: {model: SMALL, count: 1, idleWatts: 10, maxWatts: 110, exponent: 1.2, pricePerGpu: 10000}
    hardware: {purchasePrice: 20000, lifetimeYears: 4}
    operations: {perNodeYear: 2000}
  - name: cheaphw
    platform: {curve: [[0, 100], [1, 300]]}
    hardware: {purchasePrice: 2000, lifetimeYears: 4}
    operations: {perNodeYear: 200}
    tariff: dear
  - name: dearhw
    platform: {curve: [[0, 100], [1, 300]]}
    hardware: {purchasePrice: 40000, lifetimeYears: 4}
    operations: {perNodeYear: 4000}
    tariff: cheap
"""
PROFILES: ProfileSet = build_profile_set(yaml.safe_load(PROFILES_YAML))
GPUS = {"big8": 8, "small1": 1, "cheaphw": 0, "dearhw": 0}


def cluster(nodes: dict[str, dict[str, Any]]) -> tuple[list[str], NodeState]:
    """``{name: {"profile": ..., state fields...}}`` → names and a state with fresh telemetry (defaults:
    idle, nothing requested, one workload pod, not autoscaled)."""
    names = list(nodes)
    profiles = [PROFILES.by_name(n["profile"]) for n in nodes.values()]
    gpus = [GPUS[n["profile"]] for n in nodes.values()]
    columns: dict[str, list[float]] = {}
    defaults = {
        "requested_cpu_cores": 0.0,
        "requested_gpus": 0.0,
        "cpu_utilization": 0.0,
        "gpu_utilization": 0.0,
        "workload_pods": 1.0,
        "autoscaled": False,
        "telemetry_observed_at": NOW,
    }
    for key, default in defaults.items():
        columns[key] = [n.get(key, default) for n in nodes.values()]
    state = NodeState.build(
        costs=NodeCostTable.from_profiles(profiles, gpus),
        now=NOW,
        allocatable_cpu_cores=[64.0] * len(names),
        allocatable_memory_bytes=[256e9] * len(names),
        allocatable_gpus=[float(g) for g in gpus],
        **columns,  # type: ignore[arg-type]
    )
    return names, state


def ranked(names: list[str], scores: np.ndarray[Any, Any]) -> list[str]:
    return [names[i] for i in sorted(range(len(names)), key=lambda i: (-int(scores[i]), names[i]))]


def weights(**overrides: float) -> ScoringPolicy:
    return ScoringPolicy(weights=ScoringWeights().with_overrides(overrides))


# --- 1. whole-GPU allocation is not overload ------------------------------------------------------------


def test_a_pod_taking_every_gpu_of_a_node_places() -> None:
    _names, state = cluster({"a": {"profile": "big8"}, "b": {"profile": "big8"}})
    r = score_nodes(PodDemand(cpu_cores=8, gpus=8), state, NOW)
    assert not r.rejected.any()
    assert r.scores.tolist() == [MAX_SCORE, MAX_SCORE]


@pytest.mark.parametrize(("autoscaled", "expected"), [(True, ["seven-busy", "empty"]), (False, None)])
def test_the_last_gpu_of_a_node_is_usable(autoscaled: bool, expected: list[str] | None) -> None:
    """7 of 8 GPUs requested and busy: the 8th is a normal placement. Autoscaled, it beats waking an
    empty node; in a static cluster the two cost the same."""
    names, state = cluster(
        {
            "empty": {"profile": "big8", "workload_pods": 0.0, "autoscaled": autoscaled},
            "seven-busy": {
                "profile": "big8",
                "requested_gpus": 7.0,
                "gpu_utilization": 7 / 8,
                "workload_pods": 7.0,
                "autoscaled": autoscaled,
            },
        }
    )
    r = score_nodes(PodDemand(cpu_cores=4, gpus=1), state, NOW)
    assert not r.rejected.any()
    assert r.overload_risk_cost_per_hour.tolist() == [0.0, 0.0]
    if expected is None:
        assert r.scores.tolist() == [MAX_SCORE, MAX_SCORE]
    else:
        assert ranked(names, r.scores) == expected


def test_measured_gpu_load_beyond_requests_loses_and_past_the_threshold_is_filtered() -> None:
    names, state = cluster(
        {
            "rogue-load": {"profile": "big8", "requested_gpus": 2.0, "gpu_utilization": 0.8},
            "as-requested": {"profile": "big8", "requested_gpus": 2.0, "gpu_utilization": 0.25},
            "overloaded": {"profile": "big8", "requested_gpus": 2.0, "gpu_utilization": 0.97},
        }
    )
    r = score_nodes(PodDemand(cpu_cores=4, gpus=1), state, NOW)
    assert ranked(names, r.scores) == ["as-requested", "rogue-load", "overloaded"]
    assert r.rejected.tolist() == [False, False, True]


def test_fractional_gpu_sharing_keeps_its_protection() -> None:
    """A half-GPU pod may share a GPU whose shares leave room; a GPU whose co-tenant runs beyond its share
    is filtered."""
    names, state = cluster(
        {
            "half-used": {"profile": "small1", "requested_gpus": 0.5, "gpu_utilization": 0.5},
            "tenant-overruns": {"profile": "small1", "requested_gpus": 0.5, "gpu_utilization": 0.9},
        }
    )
    r = score_nodes(PodDemand(cpu_cores=1, gpus=0.5), state, NOW)
    assert r.rejected.tolist() == [False, True]
    assert ranked(names, r.scores) == ["half-used", "tenant-overruns"]


def test_cpu_load_beyond_requests_is_filtered_and_busy_cpus_lose() -> None:
    """CPU requests up to 100 % are what kube-scheduler's fit admits: a node they fill is not filtered
    (the pod would otherwise be unschedulable on a node it fits, which cluster-autoscaler cannot see), but
    CPU is shared, so it loses to a lighter node; load beyond requests past the threshold is filtered."""
    names, state = cluster(
        {
            "requests-full": {"profile": "cheaphw", "requested_cpu_cores": 57.6, "cpu_utilization": 0.9},
            "bursting": {"profile": "cheaphw", "requested_cpu_cores": 32.0, "cpu_utilization": 0.93},
            "light": {"profile": "cheaphw", "requested_cpu_cores": 12.8, "cpu_utilization": 0.2},
        }
    )
    r = score_nodes(PodDemand(cpu_cores=4), state, NOW)
    assert r.rejected.tolist() == [False, True, False]
    assert "cpu utilization 0.99 > 0.95 and beyond what requests account for (0.56)" in (r.reject_reason(1) or "")
    assert ranked(names, r.scores) == ["light", "requests-full", "bursting"]


# --- 2. GPU power per GPU, not at the node's mean -------------------------------------------------------


def test_one_busy_gpu_costs_a_whole_busy_gpu() -> None:
    """Energy only (fixed_share 0): one GPU of the 8-GPU node draws +177 W when busy, more than the
    small node's whole GPU (+100 W). At the node's mean utilization (1/8 on a 2.65 curve) it looked like
    +5.7 W and the big node won."""
    names, state = cluster({"big8": {"profile": "big8"}, "small1": {"profile": "small1"}})
    demand = PodDemand(gpus=1)
    r = score_nodes(demand, state, NOW, weights(fixed_share=0.0))
    assert ranked(names, r.scores) == ["small1", "big8"]
    np.testing.assert_allclose(r.delta_power_watts, [177.0, 100.0])


def test_a_gpu_busy_node_and_an_idle_one_pay_the_same_for_the_next_gpu() -> None:
    _names, state = cluster(
        {
            "half-busy": {"profile": "big8", "requested_gpus": 4.0, "gpu_utilization": 0.5},
            "idle": {"profile": "big8"},
        }
    )
    r = score_nodes(PodDemand(gpus=2), state, NOW, weights(fixed_share=0.0))
    assert r.delta_power_watts[0] == pytest.approx(r.delta_power_watts[1]) == pytest.approx(2 * 177.0)
    assert r.scores.tolist() == [MAX_SCORE, MAX_SCORE]


def test_a_gpu_share_goes_where_it_adds_least_power() -> None:
    """Convex curve: a 0.25 share on an idle GPU adds less than topping up a half-used one — unless that
    costs a whole node (autoscaled, empty)."""
    names, state = cluster(
        {
            "half-used": {"profile": "big8", "requested_gpus": 7.5, "gpu_utilization": 7.5 / 8},
            "idle": {"profile": "big8"},
        }
    )
    r = score_nodes(PodDemand(gpus=0.25), state, NOW, weights(fixed_share=0.0))
    span, k = 177.0, 2.65
    np.testing.assert_allclose(r.delta_power_watts, [span * (0.75**k - 0.5**k), span * 0.25**k])
    assert ranked(names, r.scores) == ["idle", "half-used"]


# --- 3. the weights: fixed share, keep-alive, overload risk ---------------------------------------------


@pytest.mark.parametrize(("fixed_share", "winner"), [(1.0, "cheap-hardware"), (0.0, "cheap-power")])
def test_fixed_share_decides_between_cheap_hardware_and_cheap_power(fixed_share: float, winner: str) -> None:
    names, state = cluster({"cheap-hardware": {"profile": "cheaphw"}, "cheap-power": {"profile": "dearhw"}})
    r = score_nodes(PodDemand(cpu_cores=16), state, NOW, weights(fixed_share=fixed_share))
    assert ranked(names, r.scores)[0] == winner


@pytest.mark.parametrize(("keep_alive", "expected"), [(1.0, ["used", "empty"]), (0.0, None)])
def test_keep_alive_charges_waking_an_empty_autoscaled_node(keep_alive: float, expected: list[str] | None) -> None:
    names, state = cluster(
        {
            "empty": {"profile": "cheaphw", "workload_pods": 0.0, "autoscaled": True},
            "used": {"profile": "cheaphw", "requested_cpu_cores": 8, "cpu_utilization": 0.125, "autoscaled": True},
        }
    )
    r = score_nodes(PodDemand(cpu_cores=2), state, NOW, weights(keep_alive=keep_alive))
    if expected is None:  # linear platform curves: the same ΔP and share on both
        assert r.scores.tolist() == [MAX_SCORE, MAX_SCORE]
    else:
        assert ranked(names, r.scores) == expected


@pytest.mark.parametrize(("overload_risk", "expected"), [(1.0, ["light", "busy"]), (0.0, None)])
def test_overload_risk_steers_away_from_busy_cpus(overload_risk: float, expected: list[str] | None) -> None:
    names, state = cluster(
        {
            "busy": {"profile": "cheaphw", "requested_cpu_cores": 32, "cpu_utilization": 0.85},
            "light": {"profile": "cheaphw", "requested_cpu_cores": 32, "cpu_utilization": 0.2},
        }
    )
    r = score_nodes(PodDemand(cpu_cores=2), state, NOW, weights(overload_risk=overload_risk))
    if expected is None:
        assert r.scores.tolist() == [MAX_SCORE, MAX_SCORE]
    else:
        assert ranked(names, r.scores) == expected
    assert not math.isnan(float(r.objective_per_hour.sum()))
