"""The whole path in real time: `lepton operator` (a real process, accounting installed through the
operator's extension hook) against the Kubernetes emulator, reading the session's real Prometheus.

A LeptonJob is created; the lifecycle operator creates its worker, the emulator's autopilot runs it; the
accounting loop prices it from Kepler/DCGM/node_exporter-shaped series and writes ``status.cost`` and
``status.energy``; the operator's ``/metrics`` serves the job's cost, which Prometheus scrapes so that
dashboards' PromQL (``sum by (job) (lepton_job_cost_total)``, OpenCost's ``node_total_hourly_cost``) works.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lepton_core import metrics_names as mn
from lepton_operator.crd import build_crd
from lepton_operator.metrics import AccountingCollector
from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.cluster import node
from tests.kube_emulator.runner import running_emulator
from tests.operator.conftest import OperatorProcess
from tests.prometheus_fixture import (
    PrometheusFixture,
    set_dcgm_gpus,
    set_kepler_node_power,
    set_node_cpu,
)

pytestmark = pytest.mark.prometheus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text: str = resp.read().decode()
        return text


def test_operator_accounts_a_job_from_prometheus_and_serves_it(prometheus: PrometheusFixture, tmp_path: Path) -> None:
    node_name = prometheus.unique("e2e-gpu")
    with running_emulator(autopilot=True) as emulator:
        kube = KubeClient(emulator.url)
        kube.create(build_crd())
        body = kube.create(node(node_name, cpu=32, gpus=4, labels={"lepton.ai/node-class": "gpu"}))
        ip = body["status"]["addresses"][0]["address"]
        set_node_cpu(prometheus.node_exporter, f"{ip}:9100", busy_ratio=0.5)
        set_dcgm_gpus(prometheus.dcgm, node_name, [80.0] * 4, [250.0] * 4)
        set_kepler_node_power(prometheus.kepler, node_name, 200.0)
        prometheus.wait_for_series(f'rate(kepler_node_cpu_joules_total{{node_name="{node_name}"}}[3s])', 3)
        kube.ensure_namespace("ml")
        port = _free_port()
        operator = OperatorProcess(
            emulator.write_kubeconfig(tmp_path / "kubeconfig.yaml"),
            tmp_path / "operator.log",
            "--standalone",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={port}",
            f"--prometheus-url={prometheus.url}",
            "--accounting-interval=1",
        ).start()
        try:
            kube.create(
                {
                    "apiVersion": "lepton.ai/v1alpha1",
                    "kind": "LeptonJob",
                    "metadata": {"name": "train", "namespace": "ml"},
                    "spec": {
                        "workers": 1,
                        "budget": {"maxCost": 1000.0},
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": "example.com/train:1",
                                        "resources": {
                                            "requests": {"cpu": "8", "nvidia.com/gpu": 2},
                                            "limits": {"nvidia.com/gpu": 2},
                                        },
                                    }
                                ]
                            }
                        },
                    },
                },
                "ml",
            )

            def accounted() -> dict[str, Any] | None:
                status = kube.get("leptonjobs.lepton.ai", "ml", "train").get("status") or {}
                cost = status.get("cost") or {}
                return status if cost.get("total", 0) > 0 and cost.get("estimated") is False else None

            status = KubeClient.wait_for(accounted, timeout_seconds=40, what="a measured status.cost")
            assert status["cost"]["currency"] == "USD"
            assert status["cost"]["perHour"] > 0
            assert status["energy"]["joules"] > 0 and status["energy"]["averageWatts"] > 0
            assert status["cost"]["history"]["buckets"]

            # The operator's own /metrics, then the same series through Prometheus (dashboards' path).
            def scraped() -> str | None:
                text = _scrape(port)
                return text if 'job="train"' in text else None

            text = KubeClient.wait_for(scraped, timeout_seconds=20, what="job metrics")
            assert f'{mn.JOB_COST_TOTAL.name}{{component="energy",currency="USD",job="train",namespace="ml"}}' in text
            assert f'{mn.NODE_POWER_WATTS.name}{{node="{node_name}",source="kepler+dcgm"}}' in text
            assert f'{mn.JOB_BUDGET_COST.name}{{currency="USD",job="train",namespace="ml"}} 1000.0' in text
            assert f'{mn.JOB_BUDGET_EXCEEDED.name}{{job="train",namespace="ml"}} 0.0' in text
            assert f"{mn.ACCOUNTING_ACTIVE.name} 1.0" in text  # standalone: always the active replica
            prometheus.add_target("lepton-operator-e2e", f"127.0.0.1:{port}")
            result = prometheus.wait_for_series('sum by (job) (lepton_job_cost_total{namespace="ml"})', timeout=30)
            assert float(result[0]["value"][1]) > 0
            hourly = prometheus.wait_for_series(f'node_total_hourly_cost{{node="{node_name}"}}', timeout=30)
            assert float(hourly[0]["value"][1]) > 0
            # The budget recording rule's division, as Prometheus evaluates it from the scraped gauges.
            used = prometheus.wait_for_series(
                'sum by (namespace, job, currency) (lepton_job_cost_total{namespace="ml",job="train"})'
                ' / on (namespace, job, currency) lepton_job_budget_cost{namespace="ml",job="train"}',
                timeout=30,
            )
            assert 0.0 < float(used[0]["value"][1]) < 1.0
        finally:
            prometheus.remove_target("lepton-operator-e2e")
            operator.stop()
        log = operator.log()
        assert "live cost accounting every 1 s" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


def test_every_operator_metric_name_comes_from_the_registry() -> None:
    """Names, kinds and labels exported by the collector are exactly those in lepton_core.metrics_names."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from lepton_operator.accounting.loop import AccountingView, NodeTotals

    view = AccountingView(
        0.0, "USD", None, None, (), __import__("numpy").zeros(0), NodeTotals(), {}, 0.0, {"ok": 1}, {"q": 1}, 0, 0
    )
    registry = CollectorRegistry()
    registry.register(AccountingCollector(lambda: view))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    declared = {
        m.name.removesuffix("_total"): m
        for m in vars(mn).values()
        if isinstance(m, mn.MetricName) and not m.name.startswith("lepton_extender")
    }
    assert set(families) <= set(declared)
    for name, family in families.items():
        assert family.type == declared[name].kind
        assert family.documentation == declared[name].help
        for sample in family.samples:
            assert set(sample.labels) == set(declared[name].labels), name
    json.dumps(sorted(families))  # the set is plain data (docs are generated from metrics_names)
