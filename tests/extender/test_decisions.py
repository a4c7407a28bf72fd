"""Where pods land, over real HTTP: orders of nodes for representative cases, filter semantics,
stale telemetry, and burst compensation. Assertions are about order and counts, not magic numbers."""

from __future__ import annotations

from collections import Counter

import pytest

from lepton_core.profiles import ProfileSet
from lepton_core.scoring import ScoringPolicy, ScoringWeights
from lepton_core.telemetry import NodeTelemetry
from tests.extender import fixtures as fx
from tests.extender.conftest import StartExtender, idle


def ranked(scores: dict[str, int]) -> list[str]:
    return sorted(scores, key=lambda k: (-scores[k], k))


async def test_cheaper_tariff_node_wins(start_extender: StartExtender) -> None:
    nodes = [fx.node("dear-a"), fx.node("cheap", labels={"power": "cheap"}), fx.node("dear-b")]
    ext = await start_extender(nodes)
    await ext.publish([idle(n["metadata"]["name"], ext.clock()) for n in nodes])
    scores = await ext.prioritize(fx.pod("p", cpu="8"), ["dear-a", "cheap", "dear-b"])
    assert ranked(scores)[0] == "cheap"
    assert scores["cheap"] == 10 and scores["dear-a"] < 10


async def test_loaded_node_loses(start_extender: StartExtender) -> None:
    nodes = [fx.node(f"n{i}") for i in range(3)]
    ext = await start_extender(nodes)
    now = ext.clock()
    await ext.publish([idle("n0", now, cpu=0.3), idle("n1", now, cpu=0.85), idle("n2", now, cpu=0.3)])
    scores = await ext.prioritize(fx.pod("p", cpu="4"), ["n1", "n0", "n2"])
    assert ranked(scores)[-1] == "n1"
    assert scores["n1"] < scores["n0"]


async def test_gpu_pod_prefers_the_idle_gpu_node_and_skips_nodes_without_gpus(start_extender: StartExtender) -> None:
    nodes = [fx.node("cpu-only"), fx.node("busy-gpu", gpus=8), fx.node("idle-gpu", gpus=8)]
    ext = await start_extender(nodes)
    now = ext.clock()
    await ext.publish([idle("cpu-only", now), idle("busy-gpu", now, gpu=0.8), idle("idle-gpu", now, gpu=0.1)])
    scores = await ext.prioritize(fx.pod("p", gpus=2), ["cpu-only", "busy-gpu", "idle-gpu"])
    assert ranked(scores) == ["idle-gpu", "busy-gpu", "cpu-only"]
    assert scores["cpu-only"] == 0  # it cannot hold a GPU pod


async def test_empty_node_loses_when_autoscaled(start_extender: StartExtender) -> None:
    autoscaled = {"lepton.ai/autoscaled": "true"}
    nodes = [fx.node("empty", labels=autoscaled), fx.node("used", labels=autoscaled)]
    pods = [fx.pod("resident", cpu="8", node_name="used", phase="Running")]
    ext = await start_extender(nodes, pods)
    now = ext.clock()
    await ext.publish([idle("empty", now), idle("used", now, cpu=8 / 64)])
    scores = await ext.prioritize(fx.pod("p", cpu="2"), ["empty", "used"])
    assert ranked(scores) == ["used", "empty"]
    decision = (await (await ext.client.get("/debug/decisions?limit=1")).json())[0]
    by_node = {c["node"]: c for c in decision["top"]}
    assert by_node["empty"]["keep_alive"] > 0 and by_node["used"]["keep_alive"] == 0


async def test_empty_node_is_not_penalised_when_not_autoscaled(start_extender: StartExtender) -> None:
    nodes = [fx.node("empty"), fx.node("used")]
    pods = [fx.pod("resident", cpu="8", node_name="used", phase="Running")]
    ext = await start_extender(nodes, pods)
    now = ext.clock()
    await ext.publish([idle("empty", now), idle("used", now, cpu=8 / 64)])
    decision_scores = await ext.prioritize(fx.pod("p", cpu="2"), ["empty", "used"])
    decision = (await (await ext.client.get("/debug/decisions?limit=1")).json())[0]
    assert all(c["keep_alive"] == 0 for c in decision["top"])
    assert min(decision_scores.values()) > 0


async def test_balance_spreads_and_pack_consolidates(start_extender: StartExtender, test_profiles: ProfileSet) -> None:
    nodes = [fx.node("half"), fx.node("light")]
    pods = [fx.pod("resident", cpu="32", node_name="half", phase="Running")]
    orders = {}
    for preset in ("balance", "pack"):
        policy = ScoringPolicy(weights=ScoringWeights.preset(preset))
        ext = await start_extender(nodes, pods, policy=policy)
        now = ext.clock()
        await ext.publish([idle("half", now, cpu=0.5), idle("light", now, cpu=0.05)])
        orders[preset] = ranked(await ext.prioritize(fx.pod("p", cpu="2"), ["half", "light"]))
    assert orders["balance"] == ["light", "half"]
    assert orders["pack"] == ["half", "light"]


async def test_filter_rejects_predicted_overload_and_power_cap_with_reasons(start_extender: StartExtender) -> None:
    nodes = [
        fx.node("ok-1"),
        fx.node("hot"),
        fx.node("capped", annotations={"lepton.ai/power-cap-watts": "120"}),
        fx.node("ok-2"),
    ]
    ext = await start_extender(nodes)
    now = ext.clock()
    await ext.publish(
        [idle("ok-1", now, 0.2), idle("hot", now, 0.93), idle("capped", now, 0.2), idle("ok-2", now, 0.2)]
    )
    answer = await ext.filter(fx.pod("p", cpu="4"), ["ok-2", "hot", "capped", "ok-1"])
    assert answer["NodeNames"] == ["ok-2", "ok-1"]  # survivors keep the request's order
    assert set(answer["FailedNodes"]) == {"hot", "capped"}
    assert "utilization" in answer["FailedNodes"]["hot"]
    assert "power cap" in answer["FailedNodes"]["capped"]
    assert answer["Error"] == ""
    # The same pod that fits under the threshold passes everywhere but on the capped node.
    answer = await ext.filter(fx.pod("small", cpu="100m"), ["ok-2", "hot", "capped", "ok-1"])
    assert answer["NodeNames"] == ["ok-2", "hot", "ok-1"]


async def test_stale_telemetry_fails_open_and_never_wins(start_extender: StartExtender) -> None:
    nodes = [fx.node("fresh"), fx.node("stale", labels={"power": "cheap"})]
    ext = await start_extender(nodes)
    now = ext.clock()
    # The stale node is cheaper (tariff) and looked idle long ago; the fresh node is a bit busy.
    await ext.publish([idle("fresh", now, cpu=0.3), idle("stale", now - 600, cpu=0.97)])
    scores = await ext.prioritize(fx.pod("p", cpu="2"), ["fresh", "stale"])
    assert scores["fresh"] == 10
    assert 0 < scores["stale"] <= 9
    answer = await ext.filter(fx.pod("q", cpu="2"), ["fresh", "stale"])
    assert answer["NodeNames"] == ["fresh", "stale"]  # fail-open: an old 97 % is not a hard fact


async def test_without_any_telemetry_every_node_is_scored_below_the_top(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("a"), fx.node("b", labels={"power": "cheap"})])
    scores = await ext.prioritize(fx.pod("p", cpu="2"), ["a", "b"])
    assert scores["b"] == 9 and scores["a"] < 9  # the cost order holds, capped below 10


async def test_fail_closed_rejects_stale_nodes(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("fresh"), fx.node("stale")], policy=ScoringPolicy(fail_open=False))
    now = ext.clock()
    await ext.publish([idle("fresh", now), idle("stale", now - 600)])
    answer = await ext.filter(fx.pod("p", cpu="2"), ["fresh", "stale"])
    assert answer["NodeNames"] == ["fresh"]
    assert "stale" in answer["FailedNodes"]["stale"]


async def test_telemetry_ageing_makes_a_node_stale(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("a"), fx.node("b")])
    now = ext.clock()
    await ext.publish([idle("a", now, cpu=0.1), idle("b", now, cpu=0.2)])
    assert max((await ext.prioritize(fx.pod("p1", cpu="1"), ["a", "b"])).values()) == 10
    ext.clock.advance(10_000)  # no new telemetry for hours
    scores = await ext.prioritize(fx.pod("p2", cpu="1"), ["a", "b"])
    assert max(scores.values()) <= 9


async def test_gpu_burst_spreads_as_capacity_requires(start_extender: StartExtender) -> None:
    nodes = [fx.node(f"g{i:02d}", gpus=8) for i in range(20)]
    names = [n["metadata"]["name"] for n in nodes]
    ext = await start_extender(nodes)
    await ext.publish([idle(n, ext.clock()) for n in names])
    placed: Counter[str] = Counter()
    for k in range(100):
        scores = await ext.prioritize(fx.pod(f"burst-{k}", cpu="2", gpus=1), names)
        best = ranked(scores)[0]
        assert scores[best] > 0
        placed[best] += 1
    assert sum(placed.values()) == 100
    assert max(placed.values()) <= 8  # never more GPUs than a node has
    assert len(placed) >= 13  # 100 pods need at least 13 eight-GPU nodes


async def test_cpu_burst_is_not_piled_onto_one_cheapest_node(start_extender: StartExtender) -> None:
    """Telemetry lags: all nodes look idle for the whole burst. Counting recent placements as load keeps
    any node from being predicted past the utilization threshold (without it, 64 pods would fit by requests
    on the first node)."""
    nodes = [fx.node(f"c{i}", cpu="64") for i in range(4)]
    names = [n["metadata"]["name"] for n in nodes]
    ext = await start_extender(nodes)
    await ext.publish([idle(n, ext.clock(), cpu=0.0) for n in names])
    placed: Counter[str] = Counter()
    for k in range(100):
        scores = await ext.prioritize(fx.pod(f"burst-{k}", cpu="1", memory="1Gi"), names)
        placed[ranked(scores)[0]] += 1
    assert len(placed) >= 2
    assert max(placed.values()) <= 0.95 * 64


async def test_placements_expire_without_a_bind(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("a", gpus=8), fx.node("b", gpus=8)], assume_ttl_seconds=30.0)
    await ext.publish([idle("a", ext.clock()), idle("b", ext.clock())])
    for k in range(8):
        await ext.prioritize(fx.pod(f"p{k}", gpus=1), ["a", "b"])
    assert ext.snapshot.assumptions == 8
    ext.clock.advance(31.0)
    await ext.settle()
    assert ext.snapshot.assumptions == 0
    assert ext.snapshot.state is not None
    assert float(ext.snapshot.state.requested_gpus.sum()) == 0.0


async def test_repeated_prioritize_for_one_pod_counts_it_once(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("a", gpus=8)])
    await ext.publish([NodeTelemetry(node="a", observed_at=ext.clock(), cpu_utilization=0.0, gpu_utilization=0.0)])
    for _ in range(5):
        await ext.prioritize(fx.pod("same", gpus=2), ["a"])
    assert ext.snapshot.state is not None
    assert float(ext.snapshot.state.requested_gpus[0]) == 2.0


@pytest.mark.parametrize("overloaded", [False, True])
async def test_prioritize_after_filter_answers_what_prioritize_alone_answers(
    start_extender: StartExtender, overloaded: bool
) -> None:
    """kube-scheduler calls filter, then prioritize with the nodes that passed; the extender re-ranks the
    filter's scoring instead of scoring again, and must answer exactly what scoring them anew answers —
    when every node passed (the same list again) and when filter rejected one (a shorter list)."""
    nodes = [fx.node("a", gpus=8), fx.node("b", gpus=8, labels={"power": "cheap"}), fx.node("c", gpus=8)]
    names = ["a", "b", "c"]
    pod = fx.pod("p", cpu="8", gpus=2)
    answers = []
    passed = names
    for with_filter in (True, False):  # the second extender gets prioritize alone, with the same nodes
        ext = await start_extender(nodes)
        now = ext.clock()
        busy_c = 0.99 if overloaded else 0.1
        await ext.publish([idle("a", now, cpu=0.3), idle("b", now, cpu=0.5), idle("c", now, cpu=busy_c)])
        if with_filter:
            passed = (await ext.filter(pod, names))["NodeNames"]
            assert passed == (["a", "b"] if overloaded else names)
        answers.append(await ext.prioritize(pod, passed))
        decision = (await (await ext.client.get("/debug/decisions?limit=1")).json())[0]
        assert decision.get("reused_filter_scoring", False) is with_filter
    assert answers[0] == answers[1]
    assert max(answers[0], key=answers[0].__getitem__) == "b"  # the cheap tariff wins either way
