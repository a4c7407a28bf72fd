"""Grafana dashboards: the committed JSON is what hack/dashboards.py generates, the layout is sound, and
every panel's PromQL parses and returns data from a real Prometheus fed by the real operator and extender.

The live test runs Lepton as it runs in a cluster, scaled down to one machine: the Kubernetes emulator
(tests/kube_emulator) with two nodes and two LeptonJobs; exporters shaped like node_exporter, DCGM and
Kepler (tests/prometheus_fixture) for those nodes; ``lepton operator`` accounting every second and
``lepton extender`` answering filter/prioritize calls, both real subprocesses on loopback; and a
Prometheus that scrapes all of them and evaluates deploy/monitoring's recording rules (each group's
interval dropped to the global 1 s, so the test waits seconds, not minutes). Grafana's variables are given
concrete values (``$namespace`` → every namespace, ``$__rate_interval`` → 30 s, ``$__range`` → 2 m).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO_ROOT, by_kind, render
from tests.deploy.series import PROPOSED_METRICS, exported_series, metric_names_in, promtool, rule_groups
from tests.extender.fixtures import pod
from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.cluster import node
from tests.kube_emulator.runner import running_emulator
from tests.prometheus_fixture import (
    Exporter,
    PrometheusServer,
    prometheus_binaries,
    set_dcgm_gpus,
    set_kepler_node_power,
    set_node_cpu,
    start_prometheus,
)

DASHBOARDS = DEPLOY / "monitoring" / "dashboards"
CRD = DEPLOY / "base" / "crd-leptonjob.yaml"
GRAFANA_VARIABLES = {"$namespace": ".*", "$__rate_interval": "30s", "$__range": "2m"}


def load_generator() -> ModuleType:
    """hack/dashboards.py, imported from its path (hack/ is not a package)."""
    spec = importlib.util.spec_from_file_location("lepton_dashboards", REPO_ROOT / "hack" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with Grafana's variables made concrete) for every target."""
    found = []
    for name, board in committed().items():
        for panel in panels(board):
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                assert "$" not in expr, f"{name} / {panel['title']}: unknown variable in {target['expr']!r}"
                found.append((name, panel["title"], expr))
    return found


# --- Source of truth and layout ---------------------------------------------------------------------------


def test_committed_json_is_what_the_source_generates() -> None:
    generator = load_generator()
    boards = generator.dashboards()
    assert sorted(boards) == sorted(committed()), "dashboard files differ from hack/dashboards.py's list"
    for name, board in boards.items():
        assert (DASHBOARDS / name).read_text() == generator.render(board), (
            f"{name} is out of date: run `python hack/dashboards.py`"
        )
    assert generator.main(["--check"]) == 0


def test_configmap_ships_every_dashboard_unchanged() -> None:
    [config_map] = [
        c for c in by_kind(render(DEPLOY / "monitoring"), "ConfigMap") if "dashboards" in c["metadata"]["name"]
    ]
    shipped = {name: json.loads(text) for name, text in config_map["data"].items()}
    assert shipped == committed()


def test_panels_are_described_laid_out_without_overlap_and_use_the_datasource_variable() -> None:
    for name, board in committed().items():
        assert board["uid"].startswith("lepton-") and board["title"].startswith("Lepton / ")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        occupied: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{name} / {panel['title']}: off the grid"
            cells = {
                (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & occupied, f"{name} / {panel['title']} overlaps another panel"
            occupied |= cells
        for panel in panels(board):
            assert panel["description"], f"{name} / {panel['title']}: no description"
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
            assert panel["fieldConfig"]["defaults"]["unit"], f"{name} / {panel['title']}: no unit"


def test_panels_read_only_series_lepton_exports_or_records() -> None:
    recorded = {r["record"] for g in rule_groups()["groups"] for r in g["rules"] if "record" in r}
    known = exported_series() | recorded | PROPOSED_METRICS
    for name, title, expr in queries():
        unknown = metric_names_in(expr) - known
        assert not unknown, f"{name} / {title}: unknown series {unknown}"


def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule: a syntax error is named with its panel, offline."""
    rules = [{"record": f"panel:query_{i}:check", "expr": expr} for i, (_, _, expr) in enumerate(queries())]
    path = tmp_path / "panels.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --- Live: every panel returns data -------------------------------------------------------------------------


@dataclass
class LiveLepton:
    prometheus: PrometheusServer
    operator_log: Path
    extender_log: Path

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:])
            for path in (self.operator_log, self.extender_log, self.prometheus.log_path)
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _job(name: str, *, gpus: int, budget: dict[str, Any] | None = None) -> dict[str, Any]:
    resources = {"requests": {"cpu": "4", "memory": "8Gi"}}
    if gpus:
        resources = {
            "requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": str(gpus)},
            "limits": {"nvidia.com/gpu": str(gpus)},
        }
    spec: dict[str, Any] = {
        "workers": 1,
        "template": {
            "spec": {"containers": [{"name": "main", "image": "example.com/train:1", "resources": resources}]}
        },
    }
    if budget:
        spec["budget"] = budget
    return {"apiVersion": "lepton.ai/v1alpha1", "kind": "LeptonJob", "metadata": {"name": name}, "spec": spec}


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with contextlib.suppress(urllib.error.URLError, OSError), urllib.request.urlopen(request, timeout=2) as resp:
        resp.read()


def _scheduler_traffic(base: str, stop: threading.Event) -> None:
    """Play lepton-scheduler: a filter and a prioritize call every half second until told to stop."""
    args = {"Pod": pod("incoming", cpu="2"), "Nodes": None, "NodeNames": ["gpu-0", "cpu-0"]}
    deadline = time.monotonic() + 600  # bounded even if teardown never comes
    while not stop.is_set() and time.monotonic() < deadline:
        _post(f"{base}/filter", args)
        _post(f"{base}/prioritize", args)
        stop.wait(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLepton]:
    prometheus_binaries()  # skips, saying why, without prometheus/promtool
    tmp = tmp_path_factory.mktemp("live-lepton")
    # Torn down in reverse: traffic, then the operator and extender, Prometheus, the emulator, exporters.
    with contextlib.ExitStack() as cleanup:
        exporters = {job: Exporter(job) for job in ("node_exporter", "dcgm", "kepler")}
        for exporter in exporters.values():
            cleanup.callback(exporter.close)
        emulator = cleanup.enter_context(running_emulator(autopilot=True))
        kube = KubeClient(emulator.url)
        kube.apply_file(CRD)
        for name, gpus in (("gpu-0", 2), ("cpu-0", 0)):
            body = kube.create(node(name, cpu=32, gpus=gpus, gpu_model="NVIDIA-A100-SXM4-80GB" if gpus else None))
            ip = body["status"]["addresses"][0]["address"]
            set_node_cpu(exporters["node_exporter"], f"{ip}:9100", busy_ratio=0.6 if gpus else 0.3)
            set_kepler_node_power(exporters["kepler"], name, 320.0 if gpus else 180.0)
        set_dcgm_gpus(exporters["dcgm"], "gpu-0", [90.0, 40.0], [320.0, 180.0])
        # One budget of each kind, so both budget panels (and the budget gauges behind them) have data.
        jobs = {
            "team-a": _job("llm", gpus=1, budget={"maxCost": 1000}),
            "team-b": _job("sd", gpus=0, budget={"maxEnergyKWh": 1000}),
        }
        for namespace, job in jobs.items():
            kube.ensure_namespace(namespace)
            kube.create(job, namespace)
        kubeconfig = emulator.write_kubeconfig(tmp / "kubeconfig.yaml")

        operator_port, extender_port = _free_port(), _free_port()
        rules = {"groups": [{k: v for k, v in g.items() if k != "interval"} for g in rule_groups()["groups"]]}
        (tmp / "prometheus").mkdir()
        (tmp / "prometheus" / "lepton.rules.yaml").write_text(yaml.safe_dump(rules))
        targets = {job: e.target for job, e in exporters.items()}
        targets["lepton-operator"] = f"127.0.0.1:{operator_port}"
        targets["lepton-extender"] = f"127.0.0.1:{extender_port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["lepton.rules.yaml"],
            # honor_labels as the ServiceMonitor sets it: the operator's namespace/job labels win.
            "scrape_configs": [
                {"job_name": job, "honor_labels": True, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        server = start_prometheus(config, tmp / "prometheus")
        cleanup.callback(server.stop)

        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
        commands = {
            "operator.log": ["operator", "--standalone", f"--metrics-port={operator_port}",
                             f"--prometheus-url={server.url}", "--accounting-interval=1"],
            "extender.log": ["extender", "--host=127.0.0.1", f"--port={extender_port}",
                             f"--prometheus-url={server.url}", "--telemetry-interval-seconds=1"],
        }  # fmt: skip
        for log_name, args in commands.items():
            with (tmp / log_name).open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "lepton_cli.main", *args], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            cleanup.callback(_stop, process)
        stop = threading.Event()
        traffic = threading.Thread(
            target=_scheduler_traffic, args=(f"http://127.0.0.1:{extender_port}", stop), daemon=True
        )
        traffic.start()
        cleanup.callback(traffic.join, 5)
        cleanup.callback(stop.set)
        yield LiveLepton(server, tmp / "operator.log", tmp / "extender.log")


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in result)


@pytest.mark.prometheus
@pytest.mark.slow
def test_every_panel_returns_data_from_the_operator_and_the_extender(live: LiveLepton) -> None:
    # Every panel, budget panels included, must return data within two minutes of Lepton starting.
    pending = queries()
    deadline = time.monotonic() + 120
    last_error = ""
    while time.monotonic() < deadline:
        still = []
        for item in pending:
            try:
                ok = _has_data(live.prometheus.query(item[2]))
            except (AssertionError, urllib.error.URLError, OSError) as exc:
                last_error, ok = str(exc), False
            if not ok:
                still.append(item)
        pending = still
        if not pending:
            break
        time.sleep(1.0)
    missing = [f"{name} / {title}: {expr}" for name, title, expr in pending]
    assert not missing, "panels without data:\n" + "\n".join(missing) + f"\n{last_error}\n{live.logs()}"
