"""The extender's telemetry path end to end: exporter-shaped series -> a real Prometheus -> the shared
fetcher -> the snapshot -> a filter and prioritize answer. Skips where the prometheus binary is absent."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lepton_core.telemetry.prometheus import PrometheusSettings
from lepton_extender.app import SNAPSHOT, create_app
from lepton_extender.inventory import parse_inventory
from lepton_extender.settings import ExtenderSettings
from lepton_extender.sources import InventorySource
from tests.extender import fixtures as fx
from tests.prometheus_fixture import PrometheusFixture, set_dcgm_gpus, set_node_cpu

pytestmark = pytest.mark.prometheus
WINDOW_SECONDS = 4.0


async def test_busy_node_measured_by_prometheus_loses_and_is_filtered(prometheus: PrometheusFixture) -> None:
    busy, calm = prometheus.unique("busy"), prometheus.unique("calm")
    ips = {busy: "10.77.0.1", calm: "10.77.0.2"}
    nodes = []
    for name, ip in ips.items():
        node = fx.node(name, cpu="4", gpus=2)
        node["status"]["addresses"] = [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
        nodes.append(node)
    # node_exporter names nodes by InternalIP:port, DCGM by hostname: the extender maps both to node names.
    set_node_cpu(prometheus.node_exporter, f"{ips[busy]}:9100", busy_ratio=0.97)
    set_node_cpu(prometheus.node_exporter, f"{ips[calm]}:9100", busy_ratio=0.10)
    set_dcgm_gpus(prometheus.dcgm, busy, [90.0, 90.0], [250.0, 250.0])
    set_dcgm_gpus(prometheus.dcgm, calm, [5.0, 5.0], [60.0, 60.0])
    w = int(WINDOW_SECONDS) + 1
    prometheus.wait_until(
        f'count_over_time(node_cpu_seconds_total{{instance=~"10.77.0.[12]:9100"}}[{w}s]) >= {w}',
        lambda r: len(r) >= 16,
        timeout=30,
    )
    app = create_app(
        ExtenderSettings(telemetry_interval_seconds=0.5, telemetry_window_seconds=WINDOW_SECONDS),
        source=InventorySource(parse_inventory(fx.node_list(*nodes))),
        prometheus=PrometheusSettings(prometheus.url, min_rate_window_seconds=0.0),
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        snap = app[SNAPSHOT]
        for _ in range(300):
            s = snap.state
            if s is not None and snap.telemetry is not None and not (s.cpu_utilization != s.cpu_utilization).any():
                break
            await asyncio.sleep(0.05)
        assert snap.state is not None
        by_name = dict(zip(snap.names, snap.state.cpu_utilization.tolist(), strict=True))
        assert by_name[busy] == pytest.approx(0.97, abs=0.03)
        assert by_name[calm] == pytest.approx(0.10, abs=0.03)
        resp = await client.post("/prioritize", json=fx.args_names(fx.pod("p", cpu="100m", gpus=1), [busy, calm]))
        scores = {h["Host"]: h["Score"] for h in await resp.json()}
        assert scores[calm] == 10 and scores[busy] < scores[calm]
        resp = await client.post("/filter", json=fx.args_names(fx.pod("q", cpu="1"), [busy, calm]))
        answer = await resp.json()
        assert answer["NodeNames"] == [calm]
        assert "utilization" in answer["FailedNodes"][busy]
        metrics = await (await client.get("/metrics")).text()
        assert "lepton_extender_telemetry_age_seconds" in metrics
