"""The extender as a service: health and readiness, metrics, the decisions endpoint, the CLI process,
and fuzzed bodies sent over real HTTP to a running server (never a 500, never a crash)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lepton_core.profiles import load_profile_set
from lepton_extender.app import create_app
from lepton_extender.inventory import parse_inventory
from lepton_extender.metrics import ExtenderMetrics
from lepton_extender.settings import ExtenderSettings
from lepton_extender.snapshot import ClusterSnapshot
from lepton_extender.sources import InventorySource
from tests.conftest import REPO_ROOT
from tests.extender import fixtures as fx
from tests.extender.conftest import StartExtender, idle
from tests.extender.strategies import json_values, mutations


class NeverSyncs:
    """A cluster source that has not listed anything yet (an API server that is slow to answer)."""

    async def run(self, sink: ClusterSnapshot) -> None:
        del sink  # nothing ever arrives
        await asyncio.Event().wait()


async def test_readyz_waits_for_the_first_sync_and_healthz_does_not() -> None:
    app = create_app(ExtenderSettings(), source=NeverSyncs())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/healthz")).status == 200
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert "not listed" in (await resp.json())["reason"]
        # Not ready means fail-open, not failure: every node passes and scores 0.
        resp = await client.post("/prioritize", data=orjson.dumps(fx.args_names(fx.pod("p"), ["a", "b"])))
        assert resp.status == 200
        assert [h["Score"] for h in await resp.json()] == [0, 0]
        resp = await client.post("/filter", data=orjson.dumps(fx.args_names(fx.pod("p"), ["a", "b"])))
        assert (await resp.json())["NodeNames"] == ["a", "b"]


async def test_metrics_report_latency_outcomes_and_telemetry_age(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("a"), fx.node("b")])
    await ext.publish([idle("a", ext.clock()), idle("b", ext.clock() - 1000)])
    await ext.prioritize(fx.pod("p"), ["a", "b"])
    await ext.post("filter", b"{")
    ext.clock.advance(12.0)
    text = await (await ext.client.get("/metrics")).text()
    assert 'lepton_extender_request_duration_seconds_count{code="200",verb="prioritize"} 1.0' in text
    assert 'lepton_extender_request_duration_seconds_count{code="400",verb="filter"} 1.0' in text
    assert 'lepton_extender_nodes_scored_total{outcome="stale",verb="prioritize"} 1.0' in text
    assert "lepton_extender_telemetry_age_seconds 12.0" in text
    assert "lepton_extender_snapshot_nodes 2.0" in text
    assert "lepton_extender_pending_placements 1.0" in text


def test_latency_histogram_reads_as_prometheus_histograms_do() -> None:
    """The request-latency histogram is kept as plain per-bucket counts; what /metrics exposes must still
    mean what a Prometheus histogram means: ``le`` bounds are inclusive, buckets are cumulative, ``+Inf``
    equals ``_count``, and ``_sum`` adds every observation (``histogram_quantile`` relies on all four)."""
    metrics = ExtenderMetrics(ClusterSnapshot(load_profile_set(None), time.time), time.time)
    for seconds in (0.0001, 0.0005, 0.0007, 0.003, 7.0):
        metrics.observe_request("prioritize", 200, seconds)
    metrics.observe_request("filter", 400, 0.002)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    samples = families["lepton_extender_request_duration_seconds"].samples
    prioritize = {
        s.name.rsplit("_", 1)[1] + s.labels.get("le", ""): s.value
        for s in samples
        if s.labels["verb"] == "prioritize" and s.labels["code"] == "200"
    }
    assert prioritize["bucket0.0005"] == 2  # 0.0001 and 0.0005: the bound itself is inside
    assert prioritize["bucket0.001"] == 3
    assert prioritize["bucket0.005"] == 4 and prioritize["bucket5.0"] == 4
    assert prioritize["bucket+Inf"] == prioritize["count"] == 5
    assert prioritize["sum"] == pytest.approx(7.0043)
    filter_ = {s.labels.get("le", s.name): s.value for s in samples if s.labels["verb"] == "filter"}
    assert filter_["0.001"] == 0 and filter_["0.002"] == 1 and filter_["+Inf"] == 1


async def test_debug_decisions_explain_the_latest_choices(start_extender: StartExtender) -> None:
    ext = await start_extender([fx.node("a", gpus=8), fx.node("b", gpus=8, labels={"power": "cheap"})])
    await ext.publish([idle("a", ext.clock()), idle("b", ext.clock())])
    await ext.prioritize(fx.pod("first", gpus=1), ["a", "b"])
    await ext.filter(fx.pod("second", gpus=1), ["a", "b"])
    decisions = await (await ext.client.get("/debug/decisions")).json()
    assert [d["pod"] for d in decisions] == ["default/second", "default/first"]  # newest first
    first = decisions[1]
    assert first["chosen"] == "b" and first["verb"] == "prioritize"
    top = first["top"][0]
    assert top["node"] == "b" and top["score"] == 10
    for key in ("hardware", "energy", "operations", "keep_alive", "overload_risk", "marginal_cost_per_hour"):
        assert isinstance(top[key], float)
    assert top["marginal_cost_per_hour"] == pytest.approx(
        top["hardware"] + top["energy"] + top["operations"] + top["keep_alive"], rel=1e-4
    )
    assert (await ext.client.get("/debug/decisions?limit=0")).status == 400


async def test_decisions_are_logged_as_one_structured_line(
    start_extender: StartExtender, caplog: pytest.LogCaptureFixture
) -> None:
    ext = await start_extender([fx.node("a"), fx.node("b")])
    with caplog.at_level("INFO", logger="lepton.extender.decisions"):
        await ext.prioritize(fx.pod("p", cpu="2"), ["a", "b"])
        await ext.settle()  # lines are written by the background tick, off the request path
    lines = [r.getMessage() for r in caplog.records if r.name == "lepton.extender.decisions"]
    assert len(lines) == 1
    record = orjson.loads(lines[0])
    assert record["pod"] == "default/p" and record["candidates"] == 2
    assert {c["node"] for c in record["top"]} == {"a", "b"}


# --- a server in a thread, for synchronous hypothesis tests over HTTP -----------------------------


@pytest.fixture(scope="module")
def live_server() -> Iterator[int]:
    nodes = [fx.node(f"n{i}", gpus=8) for i in range(3)]
    inventory = parse_inventory(fx.node_list(*nodes))
    app = create_app(ExtenderSettings(max_body_bytes=64 * 1024), source=InventorySource(inventory))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@given(
    body=st.one_of(
        st.binary(max_size=300),
        json_values.map(orjson.dumps),
        mutations().map(lambda d: orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS)),
    ),
    verb=st.sampled_from(["filter", "prioritize"]),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_bodies_over_http_never_get_a_500(live_server: int, body: bytes, verb: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live_server, timeout=10)
    conn.request("POST", f"/{verb}", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    answer = orjson.loads(resp.read())
    conn.close()
    assert resp.status in (200, 400, 413)
    if resp.status != 200:
        assert answer["Error"]
    elif verb == "prioritize":
        assert all(type(h["Score"]) is int and 0 <= h["Score"] <= 10 for h in answer)


# --- the real command ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST" if body is not None else "GET", path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, orjson.loads(data)


def test_lepton_extender_command_serves_an_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "nodes.json"
    inv.write_bytes(orjson.dumps(fx.node_list(fx.node("a", gpus=8), fx.node("b", gpus=8))))
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lepton_cli.main",
            "extender",
            "--inventory",
            str(inv),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--preset",
            "pack",
            "--weight",
            "balance=0.5",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = _get(port, "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "lepton extender did not become ready"
            time.sleep(0.1)
        status, scores = _get(port, "/prioritize", orjson.dumps(fx.args_names(fx.pod("p", gpus=1), ["a", "b"])))
        assert status == 200 and [h["Host"] for h in scores] == ["a", "b"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert b"inventory: 2 nodes" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inventory", "/nonexistent/nodes.json"], "cannot read inventory"),
        (["--weight", "speed=2"], "weights.speed: unknown weight"),
        (["--soft-utilization", "0.99"], "soft_utilization"),
    ],
)
def test_lepton_extender_rejects_bad_settings_with_one_line(args: list[str], message: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lepton_cli.main", "extender", "--port", str(_free_port()), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
