"""A real Prometheus for the whole test run, scraping exporters whose series the tests control.

Registered in ``tests/conftest.py`` through ``pytest_plugins``. Fixtures:

* ``prometheus`` (session): ONE ``/usr/bin/prometheus`` on 127.0.0.1 (ephemeral port, temp config and
  TSDB, 1 s scrape interval, ``honor_labels`` so an exporter can speak for many nodes) scraping five
  exporters served with prometheus-client on loopback:

  - ``node_exporter``, ``dcgm``, ``kepler``, ``cadvisor``: shaped like the real exporters (helpers
    below set CPU busy ratios, GPU utilization and board power, node/pod energy counters in both
    Kepler's legacy and 0.10+ names, per-container CPU);
  - ``lepton``: serves any prometheus-client ``Collector`` a test registers, e.g. the operator's
    ``lepton_operator.metrics`` collector or the extender's metrics, so dashboards' PromQL can be run
    against Lepton's own series.

  More targets (a real ``/metrics`` server started by a test) join through ``add_target``
  (file-based service discovery). The first scrape of a new target takes a few seconds — Prometheus
  batches discovery updates every 5 s — which is why there is one Prometheus per run, not per test.
  Series persist across tests: use ``unique()`` names.
* ``prometheus_history`` (factory): a second, scrape-less Prometheus started on TSDB blocks built by
  ``promtool tsdb create-blocks-from openmetrics`` from series a test writes with timestamps, so PromQL
  can be evaluated at explicit past times (the accounting scenario runs a day in seconds that way).

Both skip cleanly, with the reason, when the ``prometheus``/``promtool`` binaries are absent (Debian
package ``prometheus``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SCRAPE_INTERVAL_SECONDS = 1.0
LabelSet = tuple[tuple[str, str], ...]


def _labelset(labels: Mapping[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


@dataclass
class _CounterSeries:
    """A counter that grows at ``rate`` per second from ``value`` at ``since`` (wall clock)."""

    value: float
    since: float
    rate: float

    def at(self, now: float) -> float:
        return self.value + self.rate * max(0.0, now - self.since)


class _ControlledCollector(Collector):
    """Builds the metric families at scrape time from what the test set (client_python's custom
    Collector pattern), so counters advance continuously between scrapes."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._gauges: dict[str, dict[LabelSet, float]] = {}
        self._counters: dict[str, dict[LabelSet, _CounterSeries]] = {}
        self._help: dict[str, str] = {}

    def set_gauge(self, name: str, labels: Mapping[str, str], value: float, help_text: str = "") -> None:
        with self._lock:
            self._gauges.setdefault(name, {})[_labelset(labels)] = value
            self._help.setdefault(name, help_text or name)

    def set_counter_rate(self, name: str, labels: Mapping[str, str], rate: float, help_text: str = "") -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        now = self._clock()
        with self._lock:
            series = self._counters.setdefault(name, {})
            key = _labelset(labels)
            old = series.get(key)
            start = 0.0 if old is None else old.at(now)
            series[key] = _CounterSeries(start, now, rate)
            self._help.setdefault(name, help_text or name)

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        with self._lock:
            for table in (self._gauges, self._counters):
                if name not in table:
                    continue
                if labels is None:
                    del table[name]
                else:
                    table[name].pop(_labelset(labels), None)  # type: ignore[arg-type]

    def remove_where(self, **labels: str) -> None:
        """Drop every series (of any metric) carrying all these label values."""
        want = set(labels.items())
        with self._lock:
            for table in (self._gauges, self._counters):
                for series in table.values():
                    for key in [k for k in series if want <= set(k)]:
                        del series[key]  # type: ignore[attr-defined]

    def collect(self) -> Iterable[Metric]:
        now = self._clock()
        with self._lock:
            for name, gauge_series in self._gauges.items():
                keys = sorted({k for ls in gauge_series for k, _ in ls})
                g = GaugeMetricFamily(name, self._help[name], labels=keys)
                for ls, v in gauge_series.items():
                    d = dict(ls)
                    g.add_metric([d.get(k, "") for k in keys], v)
                yield g
            for name, counter_series in self._counters.items():
                keys = sorted({k for ls in counter_series for k, _ in ls})
                c = CounterMetricFamily(name[: -len("_total")], self._help[name], labels=keys)
                for ls, cs in counter_series.items():
                    d = dict(ls)
                    c.add_metric([d.get(k, "") for k in keys], cs.at(now))
                yield c


class Exporter:
    """A prometheus-client HTTP exporter on 127.0.0.1 (ephemeral port) serving controlled series."""

    def __init__(self, job: str, clock: Callable[[], float] = time.time) -> None:
        self.job = job
        self.registry = CollectorRegistry()
        self.series = _ControlledCollector(clock)
        self.registry.register(self.series)
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port: int = self._server.server_port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def register(self, collector: Collector) -> None:
        """Serve another collector's metrics too (e.g. Lepton's operator or extender collector)."""
        self.registry.register(collector)

    def unregister(self, collector: Collector) -> None:
        self.registry.unregister(collector)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- Exporter shapes ------------------------------------------------------------------------------
# Each helper writes series under the real exporters' names and labels; ``instance``/``node`` labels are
# given explicitly (honor_labels keeps them) so one exporter can stand for a whole fleet.


def set_node_cpu(exporter: Exporter, instance: str, busy_ratio: float, cpus: int = 4) -> None:
    """node_exporter: ``node_cpu_seconds_total{cpu, mode}`` with idle and user rates per CPU."""
    for cpu in range(cpus):
        labels = {"instance": instance, "cpu": str(cpu)}
        exporter.series.set_counter_rate("node_cpu_seconds_total", {**labels, "mode": "idle"}, 1.0 - busy_ratio)
        exporter.series.set_counter_rate("node_cpu_seconds_total", {**labels, "mode": "user"}, busy_ratio)


def set_dcgm_gpus(
    exporter: Exporter, hostname: str, utilization_percent: Iterable[float], power_watts: Iterable[float]
) -> None:
    """DCGM exporter: ``DCGM_FI_DEV_GPU_UTIL`` (percent) and ``DCGM_FI_DEV_POWER_USAGE`` (W) per GPU."""
    for i, (util, watts) in enumerate(zip(utilization_percent, power_watts, strict=True)):
        labels = {"gpu": str(i), "UUID": f"GPU-{hostname}-{i}", "Hostname": hostname, "modelName": "NVIDIA A100"}
        exporter.series.set_gauge("DCGM_FI_DEV_GPU_UTIL", labels, util)
        exporter.series.set_gauge("DCGM_FI_DEV_POWER_USAGE", labels, watts)


def set_kepler_node_power(exporter: Exporter, node: str, watts: float, *, legacy: bool = False) -> None:
    """Kepler node energy counters growing at ``watts`` J/s.

    0.10+: ``kepler_node_cpu_joules_total{node_name, zone}`` split 80/20 between package and dram (the
    core zone is inside package and also exported, to check that it is not double counted).
    Legacy: ``kepler_node_platform_joules_total{instance, mode}`` split between idle and dynamic.
    """
    if legacy:
        exporter.series.set_counter_rate(
            "kepler_node_platform_joules_total", {"instance": node, "mode": "idle", "source": "acpi"}, watts * 0.4
        )
        exporter.series.set_counter_rate(
            "kepler_node_platform_joules_total", {"instance": node, "mode": "dynamic", "source": "acpi"}, watts * 0.6
        )
        return
    exporter.series.set_counter_rate(
        "kepler_node_cpu_joules_total", {"node_name": node, "zone": "package"}, watts * 0.8
    )
    exporter.series.set_counter_rate("kepler_node_cpu_joules_total", {"node_name": node, "zone": "core"}, watts * 0.5)
    exporter.series.set_counter_rate("kepler_node_cpu_joules_total", {"node_name": node, "zone": "dram"}, watts * 0.2)


def set_kepler_pod_power(exporter: Exporter, node: str, namespace: str, pod: str, watts: float) -> None:
    labels = {"node_name": node, "pod_namespace": namespace, "pod_name": pod}
    exporter.series.set_counter_rate("kepler_pod_cpu_joules_total", {**labels, "zone": "package"}, watts)


def set_cadvisor_pod_cpu(exporter: Exporter, node: str, namespace: str, pod: str, cores: float) -> None:
    labels = {"node": node, "namespace": namespace, "pod": pod, "container": "main"}
    exporter.series.set_counter_rate("container_cpu_usage_seconds_total", labels, cores)
    # The pod-level cgroup series (container="") must not be double counted by the query.
    exporter.series.set_counter_rate("container_cpu_usage_seconds_total", {**labels, "container": ""}, cores)


# --- Prometheus ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _http_json(url: str, data: Mapping[str, str] | None = None, timeout: float = 5.0) -> Any:
    body = None if data is None else urllib.parse.urlencode(data).encode()
    with urllib.request.urlopen(url, data=body, timeout=timeout) as resp:
        return json.loads(resp.read())


def prometheus_binaries() -> tuple[str, str]:
    """(prometheus, promtool) paths, or skip the test with the reason."""
    prom = shutil.which("prometheus")
    tool = shutil.which("promtool")
    if prom is None or tool is None:
        pytest.skip("prometheus/promtool not found (Debian package `prometheus`; `.ci/run` installs it)")
    return prom, tool


@dataclass
class PrometheusServer:
    """A running Prometheus process on loopback, and helpers to query it from tests."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the ``result`` list (raises on an error answer)."""
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{at:.3f}"
        doc = _http_json(f"{self.url}/api/v1/query", form)
        if doc.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {doc}")
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def wait_until(
        self, promql: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result)`` holds (or fail with the last answer)."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while True:
            with contextlib.suppress(urllib.error.URLError, OSError):
                last = self.query(promql)
                if predicate(last):
                    return last
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting on {promql!r}; last answer {last}")
            time.sleep(0.25)

    def wait_for_series(self, promql: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        return self.wait_until(promql, lambda r: len(r) >= count, timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_prometheus(config: Mapping[str, Any], workdir: Path, data_dir: Path | None = None) -> PrometheusServer:
    """Start ``prometheus`` on a free loopback port with ``config`` (a dict, written as JSON = YAML)."""
    prom, _ = prometheus_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=1))
    data = data_dir or workdir / "data"
    log_path = workdir / "prometheus.log"
    last_error: Exception | None = None
    for _ in range(3):  # the free port can be taken between probing and binding: retry
        port = _free_port()
        log = log_path.open("ab")
        proc = subprocess.Popen(
            [
                prom,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=100y",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        log.close()
        server = PrometheusServer(proc, port, workdir, log_path)
        try:
            server.wait_ready()
            return server
        except RuntimeError as exc:
            last_error = exc
            server.stop()
    raise RuntimeError(f"could not start prometheus: {last_error}")


@dataclass
class PrometheusFixture:
    """The session's Prometheus and its exporters."""

    server: PrometheusServer
    node_exporter: Exporter
    dcgm: Exporter
    kepler: Exporter
    cadvisor: Exporter
    lepton: Exporter
    sd_dir: Path
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        return self.server.query(promql, at)

    def wait_until(
        self, promql: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        return self.server.wait_until(promql, predicate, timeout)

    def wait_for_series(self, promql: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        return self.server.wait_for_series(promql, count, timeout)

    def unique(self, prefix: str) -> str:
        """A name no other test in this run uses (series outlive tests in the shared Prometheus)."""
        return f"{prefix}-{os.getpid()}-{next(self._counter)}"

    def add_target(self, job: str, target: str, labels: Mapping[str, str] | None = None) -> None:
        """Scrape another ``host:port`` (file service discovery; picked up within a few seconds)."""
        path = self.sd_dir / f"{job}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [target], "labels": {"job": job, **(labels or {})}}]))
        tmp.replace(path)  # atomic, so Prometheus never reads half a file

    def remove_target(self, job: str) -> None:
        (self.sd_dir / f"{job}.json").unlink(missing_ok=True)

    def exporters(self) -> tuple[Exporter, ...]:
        return (self.node_exporter, self.dcgm, self.kepler, self.cadvisor, self.lepton)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusFixture]:
    """ONE Prometheus for the whole run, scraping the controlled exporters every second."""
    prometheus_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="lepton-prometheus-"))
    exporters = {name: Exporter(name) for name in ("node_exporter", "dcgm", "kepler", "cadvisor", "lepton")}
    sd_dir = workdir / "targets"
    sd_dir.mkdir()
    interval = f"{int(SCRAPE_INTERVAL_SECONDS)}s"
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            *(
                {"job_name": name, "honor_labels": True, "static_configs": [{"targets": [e.target]}]}
                for name, e in exporters.items()
            ),
            {
                "job_name": "extra",
                "honor_labels": True,
                "file_sd_configs": [{"files": [str(sd_dir / "*.json")], "refresh_interval": "1s"}],
            },
        ],
    }
    server = start_prometheus(config, workdir)
    fixture = PrometheusFixture(server=server, sd_dir=sd_dir, **exporters)
    try:
        # Wait for every exporter to be scraped once, so tests start with a working pipeline.
        server.wait_until("up", lambda r: sum(1 for s in r if s["value"][1] == "1") >= len(exporters), timeout=60)
        yield fixture
    finally:
        server.stop()
        for e in exporters.values():
            e.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- Historical Prometheus: PromQL over series with known past timestamps -------------------------------


@dataclass
class OpenMetricsWriter:
    """Collects timestamped samples and writes them in OpenMetrics text for ``promtool`` backfill."""

    _types: dict[str, str] = field(default_factory=dict)
    _lines: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, kind: str, labels: Mapping[str, str], samples: Iterable[tuple[float, float]]) -> None:
        """``samples``: (unix seconds, value). Counter ``name`` must end in ``_total``."""
        family = name[: -len("_total")] if kind == "counter" else name
        if kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        self._types[family] = kind
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines = self._lines.setdefault(family, [])
        for t, v in samples:
            if not math.isfinite(v):
                raise ValueError(f"{name}: non-finite sample {v!r} at {t}")
            lines.append(f"{name}{{{label_text}}} {v!r} {t:.3f}")

    def text(self) -> str:
        out: list[str] = []
        for family, kind in self._types.items():
            out.append(f"# TYPE {family} {kind}")
            out.extend(self._lines[family])
        out.append("# EOF")
        return "\n".join(out) + "\n"


@pytest.fixture
def prometheus_history(tmp_path: Path) -> Iterator[Callable[[OpenMetricsWriter], PrometheusServer]]:
    """Factory: backfill the written series into a fresh TSDB and start a scrape-less Prometheus on it."""
    started: list[PrometheusServer] = []

    def start(series: OpenMetricsWriter) -> PrometheusServer:
        _, promtool = prometheus_binaries()
        workdir = tmp_path / f"history-{len(started)}"
        data = workdir / "data"
        data.mkdir(parents=True)
        source = workdir / "series.om"
        source.write_text(series.text())
        done = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {done.stderr.strip() or done.stdout.strip()}")
        server = start_prometheus({"global": {"scrape_interval": "1m"}, "scrape_configs": []}, workdir, data)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
