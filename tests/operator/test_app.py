"""The operator in-process (kopf's KopfRunner): the extension seam live cost accounting plugs into,
``/metrics``, the liveness endpoint, and the objects extensions see."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from kopf.testing import KopfRunner
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lepton_operator.app import OperatorContext, OperatorSettings, build_registry
from tests.kube_emulator.client import KubeClient
from tests.operator.conftest import CRD_PATH, job_manifest, wait_released


class JobsCollector(Collector):
    def __init__(self) -> None:
        self.context: OperatorContext | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = len(self.context.jobs) if self.context is not None else 0
        yield GaugeMetricFamily("lepton_test_jobs", "LeptonJobs the extension sees.", value=count)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_extensions_get_startup_background_cleanup_metrics_and_the_cluster_view(
    kubeconfig: Path, kube: KubeClient
) -> None:
    kube.apply_file(CRD_PATH)
    kube.ensure_namespace("ml")
    settings = OperatorSettings(standalone=True, metrics_host="127.0.0.1", metrics_port=0)
    registry, runtime = build_registry(settings, extensions=())
    calls: list[str] = []
    collector = JobsCollector()
    runtime.hooks.metrics.register(collector)

    @runtime.hooks.on_startup
    async def started(context: OperatorContext) -> None:
        namespaces = await context.kube.get("/api/v1/namespaces")
        calls.append(f"startup:{len(namespaces['items'])}")
        collector.context = context

    @runtime.hooks.in_background
    async def loop(context: OperatorContext) -> None:
        calls.append("background")
        await asyncio.Event().wait()

    @runtime.hooks.on_cleanup
    async def cleanup(context: OperatorContext) -> None:
        calls.append("cleanup")

    liveness = f"http://127.0.0.1:{_free_port()}/healthz"
    with KopfRunner(["run", "-A", "--standalone", f"--liveness={liveness}"], registry=registry, timeout=60) as runner:
        kube.create(job_manifest("train", workers=2), "ml")
        wait_released(kube, "ml", "train", 2)
        context = runtime.context
        assert context is not None and ("ml", "train") in context.jobs
        views = kube.wait_for(
            lambda: context.pods("ml", "train") if len(context.pods("ml", "train")) == 2 else None,
            what="the pod index to hold both workers",
        )
        assert sorted(v.index for v in views) == [0, 1]
        metrics = requests.get(f"http://127.0.0.1:{runtime.metrics_port}/metrics", timeout=5).text
        assert "lepton_test_jobs 1.0" in metrics
        health: dict[str, Any] = kube.wait_for(lambda: _get_json(liveness), what="the liveness endpoint")
        assert health["jobs"] == 1
    assert runner.exception is None, runner.output[-2000:]
    assert calls == ["startup:3", "background", "cleanup"]  # default, kube-system, ml


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        response = requests.get(url, timeout=2)
    except requests.ConnectionError:
        return None
    return response.json() if response.ok else None
