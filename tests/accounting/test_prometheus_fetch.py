"""The telemetry fetcher against the session's real Prometheus scraping exporter-shaped series.

What a user relies on: the right number comes back for the right Kubernetes node whatever exporter
version is deployed, a broken query costs only its own signal, stale data is dropped and said so, and
an unreachable Prometheus is reported rather than raised.
"""

from __future__ import annotations

import time

import pytest

from lepton_core.telemetry import PowerSource, Signal
from lepton_core.telemetry.identity import NodeIdentity
from lepton_core.telemetry.prometheus import PrometheusSettings, TelemetryFetcher
from lepton_core.telemetry.promql import GPU_POWER_WATTS, MetricSource, MetricSources, MetricVariant
from tests.prometheus_fixture import (
    PrometheusFixture,
    set_cadvisor_pod_cpu,
    set_dcgm_gpus,
    set_kepler_node_power,
    set_kepler_pod_power,
    set_node_cpu,
)

pytestmark = pytest.mark.prometheus


WINDOW_SECONDS = 4.0


def _wait_rates(prometheus: PrometheusFixture, selector: str, count: int = 1) -> None:
    # A rate is exact only once the series spans the whole window (Prometheus extrapolates a younger
    # series only part of the way to the window's start): wait for a full window of 1 s scrapes.
    w = int(WINDOW_SECONDS) + 1
    prometheus.wait_until(f"count_over_time({selector}[{w}s]) >= {w}", lambda r: len(r) >= count, timeout=30)


async def test_one_fetch_joins_every_exporter_per_kubernetes_node(prometheus: PrometheusFixture) -> None:
    gpu_node = prometheus.unique("gpu")
    legacy_node = prometheus.unique("legacy")
    ip = "10.9.8.7"
    # node_exporter names the GPU node by its InternalIP:port; DCGM and Kepler 0.10+ by its name.
    set_node_cpu(prometheus.node_exporter, f"{ip}:9100", busy_ratio=0.25)
    set_dcgm_gpus(prometheus.dcgm, gpu_node, [50.0, 100.0], [150.0, 250.0])
    set_kepler_node_power(prometheus.kepler, gpu_node, 300.0)
    # The legacy node runs Kepler <= 0.7 (platform counter, identity from `instance`).
    set_kepler_node_power(prometheus.kepler, f"{legacy_node}:9102", 420.0, legacy=True)
    set_cadvisor_pod_cpu(prometheus.cadvisor, gpu_node, "team-a", "train-0", cores=3.0)
    set_kepler_pod_power(prometheus.kepler, gpu_node, "team-a", "train-0", watts=40.0)
    _wait_rates(prometheus, f'kepler_node_cpu_joules_total{{node_name="{gpu_node}"}}', 3)
    _wait_rates(prometheus, f'kepler_node_platform_joules_total{{instance="{legacy_node}:9102"}}', 2)
    _wait_rates(prometheus, f'node_cpu_seconds_total{{instance="{ip}:9100"}}', 8)
    _wait_rates(prometheus, f'container_cpu_usage_seconds_total{{pod="train-0",node="{gpu_node}"}}', 2)
    _wait_rates(prometheus, f'kepler_pod_cpu_joules_total{{node_name="{gpu_node}"}}', 1)

    identity = NodeIdentity().with_nodes({gpu_node: [ip], legacy_node: []})
    async with TelemetryFetcher(PrometheusSettings(prometheus.url, min_rate_window_seconds=0.0)) as fetcher:
        snap = await fetcher.fetch(window_seconds=WINDOW_SECONDS, identity=identity)

    assert not snap.errors, snap.errors
    gpu = snap.nodes[gpu_node]
    assert gpu.cpu_utilization == pytest.approx(0.25, abs=0.02)
    assert gpu.gpu_utilization == pytest.approx(0.75)
    assert gpu.gpu_power_watts == pytest.approx(400.0)
    # Kepler 0.10+ counts package + dram (not the core zone inside package) and no GPUs: DCGM is added.
    assert gpu.kepler_power_watts == pytest.approx(300.0, rel=0.02)
    assert gpu.power_source is PowerSource.KEPLER_DCGM
    assert gpu.measured_power_watts == pytest.approx(700.0, rel=0.02)
    assert set(gpu.sample_times) >= {Signal.CPU_UTILIZATION, Signal.GPU_POWER, Signal.NODE_POWER}

    legacy = snap.nodes[legacy_node]
    assert legacy.power_source is PowerSource.KEPLER
    assert legacy.measured_power_watts == pytest.approx(420.0, rel=0.02)  # idle + dynamic modes summed

    pod = snap.pods[("team-a", "train-0")]
    assert pod.node == gpu_node
    assert pod.cpu_cores == pytest.approx(3.0, rel=0.02)  # the container="" cgroup is not added
    assert pod.power_watts == pytest.approx(40.0, rel=0.02)
    # Series of other tests' nodes are not this run's nodes: they are reported, never guessed.
    assert ip not in snap.unmatched_identities


async def test_a_broken_query_costs_only_its_own_signal(prometheus: PrometheusFixture) -> None:
    node = prometheus.unique("partial")
    set_dcgm_gpus(prometheus.dcgm, node, [40.0], [120.0])
    prometheus.wait_for_series(f'DCGM_FI_DEV_POWER_USAGE{{Hostname="{node}"}}')
    broken = MetricSource(
        Signal.GPU_POWER, GPU_POWER_WATTS, (MetricVariant("DCGM_FI_DEV_POWER_USAGE", node_label="Hostname", scale=1.0),)
    )
    # A syntactically invalid matcher makes Prometheus refuse that one query with a 400.
    bad = MetricSource(
        Signal.GPU_POWER,
        GPU_POWER_WATTS,
        (MetricVariant("DCGM_FI_DEV_POWER_USAGE", node_label="Hostname", matchers='gpu=~"("'),),
    )
    settings = PrometheusSettings(prometheus.url, sources=MetricSources(gpu_power=bad, pod_cpu=None, pod_power=None))
    async with TelemetryFetcher(settings) as fetcher:
        snap = await fetcher.fetch(identity=NodeIdentity(known_nodes=frozenset({node})))
    assert any("gpu_power_watts" in name and "HTTP 400" in err for name, err in snap.errors.items()), snap.errors
    assert snap.nodes[node].gpu_utilization == pytest.approx(0.40)  # the other queries still answered
    assert snap.nodes[node].gpu_power_watts is None
    assert not snap.complete_failure

    good = PrometheusSettings(prometheus.url, sources=MetricSources(gpu_power=broken, pod_cpu=None, pod_power=None))
    async with TelemetryFetcher(good) as fetcher:
        snap = await fetcher.fetch(identity=NodeIdentity(known_nodes=frozenset({node})))
    assert snap.nodes[node].gpu_power_watts == pytest.approx(120.0)


async def test_stale_values_are_dropped_and_reported(prometheus: PrometheusFixture) -> None:
    node = prometheus.unique("stale")
    set_dcgm_gpus(prometheus.dcgm, node, [10.0], [60.0])
    prometheus.wait_for_series(f'DCGM_FI_DEV_GPU_UTIL{{Hostname="{node}"}}')
    settings = PrometheusSettings(prometheus.url, max_sample_age_seconds=5.0)
    identity = NodeIdentity(known_nodes=frozenset({node}))
    async with TelemetryFetcher(settings) as fetcher:
        fresh = await fetcher.fetch(identity=identity)
        assert fresh.nodes[node].gpu_power_watts == pytest.approx(60.0)
        # Evaluated 60 s after the newest sample, within Prometheus's 5-minute lookback: Prometheus
        # still answers, but the value is older than our limit.
        late = await fetcher.fetch(at=time.time() + 60.0, identity=identity)
    assert late.nodes.get(node) is None or late.nodes[node].gpu_power_watts is None
    assert Signal.GPU_POWER in late.stale[node]


async def test_unreachable_prometheus_is_a_reported_complete_failure() -> None:
    settings = PrometheusSettings("http://127.0.0.1:9", timeout_seconds=2.0)
    async with TelemetryFetcher(settings) as fetcher:
        snap = await fetcher.fetch(at=1_700_000_000.0)
    assert snap.complete_failure
    assert snap.nodes == {}
    assert all("Connect" in err or "refused" in err.lower() for err in snap.errors.values()), snap.errors


async def test_range_fetch_tiles_past_windows(prometheus: PrometheusFixture) -> None:
    node = prometheus.unique("range")
    set_kepler_node_power(prometheus.kepler, node, 200.0)
    _wait_rates(prometheus, f'kepler_node_cpu_joules_total{{node_name="{node}"}}', 3)
    time.sleep(4.0)
    now = time.time()
    async with TelemetryFetcher(PrometheusSettings(prometheus.url, min_rate_window_seconds=0.0)) as fetcher:
        snaps = await fetcher.fetch_range(now - 4.0, now, 2.0, identity=NodeIdentity(known_nodes=frozenset({node})))
    assert [s.fetched_at for s in snaps] == pytest.approx([now - 2.0, now])
    assert all(s.window_seconds == 2.0 for s in snaps)
    for s in snaps:
        assert s.nodes[node].kepler_power_watts == pytest.approx(200.0, rel=0.05)
