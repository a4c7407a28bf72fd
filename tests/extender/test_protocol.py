"""kube-scheduler's extender protocol over real HTTP: both node-list modes, Go field names and casing,
nulls, integer scores, and bad bodies answered with a 4xx and a reason (never a 500)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tests.extender import fixtures as fx
from tests.extender.conftest import StartExtender

FILTER_KEYS = {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}
NODES = [fx.node(f"n{i}", gpus=8, labels={"power": "cheap"} if i == 2 else {}) for i in range(4)]
NAMES = [n["metadata"]["name"] for n in NODES]


async def test_prioritize_by_name_answers_a_bare_array_of_integer_scores(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES)
    status, body = await ext.post("prioritize", fx.args_names(fx.pod("p", gpus=1), NAMES))
    assert status == 200
    assert isinstance(body, list)
    assert [h["Host"] for h in body] == NAMES  # request order
    for h in body:
        assert set(h) == {"Host", "Score"}
        assert type(h["Score"]) is int and 0 <= h["Score"] <= 10
    assert max(h["Score"] for h in body) > 0


async def test_filter_by_name_answers_an_extender_filter_result(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES)
    status, body = await ext.post("filter", fx.args_names(fx.pod("p", gpus=1), list(reversed(NAMES))))
    assert status == 200
    assert set(body) == FILTER_KEYS
    assert body["Nodes"] is None  # nodeCacheCapable: true answers by name only
    assert body["NodeNames"] == list(reversed(NAMES))
    assert body["FailedNodes"] == {}
    assert body["Error"] == ""


async def test_full_node_mode_filter_answers_the_full_node_objects(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES)
    sent = copy.deepcopy(NODES[:3])
    status, body = await ext.post("filter", fx.args_nodes(fx.pod("p", gpus=1), sent))
    assert status == 200
    assert set(body) == FILTER_KEYS
    assert body["NodeNames"] is None
    assert body["Nodes"]["items"] == sent  # the objects kube-scheduler gave us, unchanged


async def test_full_node_mode_prioritize_scores_like_name_mode(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES)
    by_name = await ext.prioritize(fx.pod("a", gpus=1), NAMES)
    ext.snapshot.expire()
    status, body = await ext.post("prioritize", fx.args_nodes(fx.pod("b", gpus=1), copy.deepcopy(NODES)))
    assert status == 200
    assert [h["Host"] for h in body] == NAMES
    # The cheap-power node wins in both modes.
    assert max(by_name, key=lambda k: by_name[k]) == "n2"
    assert max(body, key=lambda h: h["Score"])["Host"] == "n2"


def _recase(obj: Any, how: str) -> Any:
    """Go's encoding/json matches keys case-insensitively; so must we (envelope and nested objects)."""
    if isinstance(obj, dict):

        def key(k: str) -> str:
            if "/" in k or "." in k:  # label and resource names are data, not keys
                return k
            return {"lower": k.lower(), "upper": k.upper(), "title": k[:1].upper() + k[1:]}[how]

        return {
            key(k): (v if k in ("labels", "annotations", "requests", "limits") else _recase(v, how))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_recase(v, how) for v in obj]
    return obj


@pytest.mark.parametrize("how", ["lower", "upper", "title"])
async def test_keys_are_matched_case_insensitively(start_extender: StartExtender, how: str) -> None:
    ext = await start_extender(NODES)
    canonical = await ext.post("filter", fx.args_names(fx.pod("p", gpus=1), NAMES))
    status, body = await ext.post("filter", _recase(fx.args_names(fx.pod("p", gpus=1), NAMES), how))
    assert status == 200, body
    assert body == canonical[1]
    status, body = await ext.post("prioritize", _recase(fx.args_nodes(fx.pod("q", gpus=1), NODES), how))
    assert status == 200, body
    assert [h["Host"] for h in body] == NAMES


async def test_null_and_missing_fields(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES)
    # Omitted NodeNames with a NodeList; null items in a NodeList.
    status, body = await ext.post("filter", {"Pod": fx.pod("p"), "Nodes": {"metadata": {}, "items": None}})
    assert status == 200 and body["Nodes"] == {"metadata": {}, "items": []} and body["NodeNames"] is None
    # An empty candidate list is a valid (empty) question.
    status, body = await ext.post("prioritize", fx.args_names(fx.pod("p"), []))
    assert status == 200 and body == []
    # A pod without resources at all (BestEffort) is fine.
    best_effort = fx.pod("be", cpu=None, memory=None)
    status, body = await ext.post("prioritize", fx.args_names(best_effort, NAMES))
    assert status == 200 and len(body) == len(NAMES)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b'{"Pod": {"metadata": {"name": "p"}}, "NodeNames": ["n0"', "not valid JSON"),
        (b"[1, 2, 3]", "expected an ExtenderArgs object"),
        (b'{"Pod": null, "NodeNames": ["n0"]}', "Pod"),
        (b'{"Pod": {"metadata": {"name": "p"}}, "Nodes": null, "NodeNames": null}', "NodeNames and Nodes"),
        (b'{"Pod": {"metadata": {"name": "p"}}, "NodeNames": "n0"}', "NodeNames"),
        (b'{"Pod": {"metadata": {"name": "p"}}, "NodeNames": ["n0", 7]}', "NodeNames[1]"),
        (b'{"Pod": [], "NodeNames": ["n0"]}', "Pod"),
        (
            b'{"Pod": {"metadata": {"name": "p"}}, "Nodes": {"items": [{"metadata": {}}]}}',
            "Nodes.items[0].metadata.name",
        ),
        (orjson.dumps(fx.args_names(fx.pod("p", cpu="lots"), ["n0"])), "spec.containers[0].resources.requests.cpu"),
        (orjson.dumps(fx.args_names(fx.pod("p", cpu="-2"), ["n0"])), "must not be negative"),
        (
            orjson.dumps(fx.args_names(fx.pod("p", annotations={"lepton.ai/expected-gpu-utilization": "2"}), ["n0"])),
            "expected-gpu-utilization",
        ),
    ],
)
async def test_bad_bodies_get_400_with_a_reason(start_extender: StartExtender, body: bytes, reason: str) -> None:
    ext = await start_extender(NODES)
    status, answer = await ext.post("filter", body)
    assert status == 400
    assert set(answer) == FILTER_KEYS and answer["NodeNames"] is None and answer["Nodes"] is None
    assert reason in answer["Error"]
    status, answer = await ext.post("prioritize", body)
    assert status == 400
    assert reason in answer["Error"]


async def test_oversized_bodies_get_413(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES, max_body_bytes=4096)
    big = fx.args_names(fx.pod("p"), [f"node-{i:06d}" for i in range(1000)])
    status, answer = await ext.post("filter", big)
    assert status == 413
    assert "limit of 4096 bytes" in answer["Error"]

    async def chunks() -> Any:  # no Content-Length: the limit applies while reading
        data = orjson.dumps(big)
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    resp = await ext.client.post("/prioritize", data=chunks())
    assert resp.status == 413
    assert "limit" in (await resp.json())["Error"]
    # The server is fine afterwards.
    assert (await ext.client.get("/healthz")).status == 200


async def test_unknown_node_names_are_reported_not_fatal(start_extender: StartExtender) -> None:
    ext = await start_extender(NODES)
    names = ["n0", "ghost-1", "n1", "ghost-2"]
    scores = await ext.prioritize(fx.pod("p", gpus=1), names)
    assert scores["ghost-1"] == 0 and scores["ghost-2"] == 0
    assert scores["n0"] > 0 and scores["n1"] > 0
    answer = await ext.filter(fx.pod("q", gpus=1), names)
    assert answer["NodeNames"] == names  # fail-open: we cannot judge nodes we do not know
    decisions = await (await ext.client.get("/debug/decisions?limit=2")).json()
    assert [d["unknown"] for d in decisions] == [2, 2]
    metrics = await (await ext.client.get("/metrics")).text()
    assert 'lepton_extender_nodes_scored_total{outcome="unknown",verb="prioritize"} 2.0' in metrics
