"""The Prometheus fetcher: the only code in Lepton that speaks HTTP and PromQL to Prometheus.

One ``fetch`` runs every query of every configured metric variant concurrently (``asyncio.gather``
over one aiohttp session, bounded by a semaphore), evaluated at one explicit time so all answers agree,
and joins the answers per Kubernetes node through ``identity.NodeIdentity``. Failures are per query:
a failed or empty query leaves its signal ``None`` on the nodes it would have filled, is named in
``TelemetrySnapshot.errors`` / ``queries``, and everything else is still used. A value whose newest raw
sample is older than ``max_sample_age_seconds`` is dropped and reported in ``TelemetrySnapshot.stale``.

``fetch_range`` answers the same questions for a run of past windows with ``query_range``: the
operator uses it after a restart to account the time it was away from the counters Prometheus kept.

Neighbours: ``promql`` (the queries), ``identity`` (node names), ``types`` (the results). The operator's
accounting loop and the extender's refresher call this module; nothing else in Lepton may
(import-linter contract "Only lepton_core.telemetry talks to Prometheus").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from lepton_core.telemetry.identity import NodeIdentity
from lepton_core.telemetry.promql import (
    SAMPLE_FRESHNESS,
    MetricSource,
    MetricSources,
    MetricVariant,
    promql_duration,
)

__all__ = [
    "MetricSource",
    "MetricSources",
    "MetricVariant",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusResponseError",
    "PrometheusSettings",
    "QueryData",
    "Sample",
    "TelemetryFetcher",
    "parse_query_response",
]
from lepton_core.telemetry.types import (
    NodeTelemetry,
    PodTelemetry,
    PowerSource,
    QueryReport,
    Signal,
    TelemetrySnapshot,
)


class PrometheusError(Exception):
    """Prometheus could not answer a query (network, HTTP status, or an error in the answer)."""


class PrometheusResponseError(PrometheusError):
    """The answer was not a well-formed Prometheus API response."""


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Mapping[str, str]
    time: float
    """Evaluation time of the sample, Unix seconds."""
    value: float


@dataclass(frozen=True, slots=True)
class QueryData:
    result_type: str
    """``vector``, ``matrix`` or ``scalar``."""
    samples: tuple[Sample, ...]
    """Matrix results are flattened: one ``Sample`` per (series, time)."""


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise PrometheusResponseError(f"{where}: expected a number, got {type(raw).__name__}")
    try:
        return float(raw)
    except ValueError as exc:
        raise PrometheusResponseError(f"{where}: {raw!r} is not a number") from exc


def _pair(raw: Any, where: str) -> tuple[float, float]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise PrometheusResponseError(f'{where}: expected [time, "value"]')
    return _number(raw[0], f"{where}[0]"), _number(raw[1], f"{where}[1]")


def _labels(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise PrometheusResponseError(f"{where}: expected an object of string labels")
    return raw


def parse_query_response(body: bytes) -> QueryData:
    """Parse a ``/api/v1/query`` or ``/api/v1/query_range`` body; raise ``PrometheusError`` otherwise.

    Any input either parses into typed samples or raises ``PrometheusError`` (fuzz-tested): an error
    answer from Prometheus (``status: error``) becomes a ``PrometheusError`` naming its type and text.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PrometheusResponseError(f"response is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise PrometheusResponseError("response is not a JSON object")
    status = doc.get("status")
    if status == "error":
        raise PrometheusError(f"{doc.get('errorType', 'error')}: {doc.get('error', 'no message')}")
    if status != "success":
        raise PrometheusResponseError(f"status: expected 'success' or 'error', got {status!r}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PrometheusResponseError("data: expected an object")
    result_type = data.get("resultType")
    result = data.get("result")
    samples: list[Sample] = []
    if result_type == "scalar":
        t, v = _pair(result, "data.result")
        samples.append(Sample({}, t, v))
    elif result_type in ("vector", "matrix"):
        if not isinstance(result, list):
            raise PrometheusResponseError("data.result: expected a list")
        for i, series in enumerate(result):
            where = f"data.result[{i}]"
            if not isinstance(series, dict):
                raise PrometheusResponseError(f"{where}: expected an object")
            labels = _labels(series.get("metric", {}), f"{where}.metric")
            if result_type == "vector":
                t, v = _pair(series.get("value"), f"{where}.value")
                samples.append(Sample(labels, t, v))
            else:
                values = series.get("values")
                if not isinstance(values, list):
                    raise PrometheusResponseError(f"{where}.values: expected a list")
                for j, pair in enumerate(values):
                    t, v = _pair(pair, f"{where}.values[{j}]")
                    samples.append(Sample(labels, t, v))
    else:
        raise PrometheusResponseError(f"data.resultType: unsupported {result_type!r}")
    return QueryData(str(result_type), tuple(samples))


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """How to reach Prometheus and what to ask it. Read once at start-up."""

    url: str
    """Base URL, e.g. ``http://prometheus.monitoring:9090`` (a path prefix is kept)."""
    timeout_seconds: float = 10.0
    """Per query, both for the HTTP round trip and Prometheus's own evaluation limit."""
    max_sample_age_seconds: float = 180.0
    """A value whose newest raw sample is older than this is dropped as stale."""
    max_concurrency: int = 8
    """Queries in flight at once."""
    min_rate_window_seconds: float = 120.0
    """Counter rates look back at least this far: a rate needs two samples, so a window shorter than
    twice the exporters' scrape interval would come back empty. Longer windows are used as asked (a
    counter's rate over exactly the accounted window is its exact mean power there)."""
    sources: MetricSources = field(default_factory=MetricSources)
    identity: NodeIdentity = field(default_factory=NodeIdentity)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra HTTP headers, e.g. ``Authorization`` for a proxy in front of Prometheus."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus url: expected http:// or https://, got {self.url!r}")
        if not self.timeout_seconds > 0.0:
            raise ValueError("prometheus timeout_seconds must be positive")
        if self.max_concurrency < 1:
            raise ValueError("prometheus max_concurrency must be at least 1")


@dataclass(frozen=True, slots=True)
class _Job:
    """One HTTP query of one variant of one source."""

    source: MetricSource
    variant_index: int
    freshness: bool

    @property
    def variant(self) -> MetricVariant:
        return self.source.variants[self.variant_index]

    @property
    def name(self) -> str:
        q = SAMPLE_FRESHNESS if self.freshness else self.source.query
        return f"{q.name}[{self.variant.metric}]"

    def promql(self, window: str) -> str:
        q = SAMPLE_FRESHNESS if self.freshness else self.source.query
        return q.render(**self.variant.params(window))


@dataclass(slots=True)
class _Answer:
    job: _Job
    data: QueryData | None
    report: QueryReport


class PrometheusClient:
    """Thin async HTTP client for the two query endpoints. Owns no session unless it creates one."""

    def __init__(self, settings: PrometheusSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self._base = settings.url.rstrip("/")

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout, headers=dict(self.settings.headers))
        return self._session

    async def _post(self, path: str, form: dict[str, str]) -> QueryData:
        session = self._get_session()
        form = {**form, "timeout": promql_duration(self.settings.timeout_seconds)}
        try:
            async with session.post(f"{self._base}{path}", data=form) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    try:
                        parse_query_response(body)
                    except PrometheusError as exc:
                        raise PrometheusError(f"HTTP {resp.status}: {exc}") from None
                    raise PrometheusError(f"HTTP {resp.status}")
                return parse_query_response(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PrometheusError(f"{type(exc).__name__}: {exc or 'no answer'}") from exc

    async def query(self, promql: str, at: float) -> QueryData:
        return await self._post("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})

    async def query_range(self, promql: str, start: float, end: float, step_seconds: float) -> QueryData:
        form = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": promql_duration(step_seconds)}
        return await self._post("/api/v1/query_range", form)


def _time_key(t: float) -> int:
    """Prometheus evaluates at whole milliseconds; key times by them so floats compare exactly."""
    return round(t * 1000.0)


class TelemetryFetcher:
    """Fetch every node's (and pod's) telemetry in one concurrent round of queries."""

    def __init__(
        self,
        settings: PrometheusSettings,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = PrometheusClient(settings, session)
        self._clock = clock
        self._limit = asyncio.Semaphore(settings.max_concurrency)

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> TelemetryFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _jobs(self) -> list[_Job]:
        jobs: list[_Job] = []
        sources = self.settings.sources
        for source in sources.node_sources():
            for i in range(len(source.variants)):
                jobs.append(_Job(source, i, freshness=False))
                jobs.append(_Job(source, i, freshness=True))
        for source in sources.pod_sources():
            for i in range(len(source.variants)):
                jobs.append(_Job(source, i, freshness=False))
        return jobs

    async def _run(self, job: _Job, window: str, at: float, start: float | None, step: float | None) -> _Answer:
        promql = job.promql(window)
        started = time.perf_counter()
        async with self._limit:
            try:
                if start is None or step is None:
                    data = await self.client.query(promql, at)
                else:
                    data = await self.client.query_range(promql, start, at, step)
            except PrometheusError as exc:
                elapsed = time.perf_counter() - started
                return _Answer(job, None, QueryReport(job.name, ok=False, seconds=elapsed, error=str(exc)))
        elapsed = time.perf_counter() - started
        series = len({tuple(sorted(s.labels.items())) for s in data.samples})
        return _Answer(job, data, QueryReport(job.name, ok=True, series=series, seconds=elapsed))

    async def fetch(
        self, at: float | None = None, window_seconds: float = 60.0, identity: NodeIdentity | None = None
    ) -> TelemetrySnapshot:
        """Telemetry at ``at`` (default: now), rates averaged over ``[at - window_seconds, at]``."""
        at = self._clock() if at is None else at
        at = _time_key(at) / 1000.0  # Prometheus evaluates at whole milliseconds
        window = promql_duration(max(window_seconds, self.settings.min_rate_window_seconds))
        answers = await asyncio.gather(*(self._run(j, window, at, None, None) for j in self._jobs()))
        snapshots = _assemble(answers, [at], window_seconds, identity or self.settings.identity, self.settings)
        return snapshots[0]

    async def fetch_range(
        self, start: float, end: float, step_seconds: float, identity: NodeIdentity | None = None
    ) -> list[TelemetrySnapshot]:
        """One snapshot per window ``(start + k·step - step, start + k·step]`` for k = 1 … up to ``end``.

        Each snapshot's rates are the means over its own window, so consecutive snapshots tile
        ``[start, start + n·step]`` with no gap and no overlap.
        """
        if not step_seconds > 0.0 or end < start + step_seconds:
            return []
        steps = math.floor((end - start) / step_seconds + 1e-9)
        first = start + step_seconds
        last = start + steps * step_seconds
        window = promql_duration(max(step_seconds, self.settings.min_rate_window_seconds))
        answers = await asyncio.gather(*(self._run(j, window, last, first, step_seconds) for j in self._jobs()))
        times = [start + k * step_seconds for k in range(1, steps + 1)]
        return _assemble(answers, times, step_seconds, identity or self.settings.identity, self.settings)


def _assemble(
    answers: Sequence[_Answer],
    times: Sequence[float],
    window_seconds: float,
    identity: NodeIdentity,
    settings: PrometheusSettings,
) -> list[TelemetrySnapshot]:
    """Join per-query answers into one snapshot per evaluation time."""
    reports = tuple(a.report for a in answers)
    errors = {a.report.name: a.report.error or "" for a in answers if not a.report.ok}
    unmatched: set[str] = set()
    resolved: dict[str, str | None] = {}

    def node_of(raw: str) -> str | None:
        if raw not in resolved:
            resolved[raw] = identity.resolve(raw)
            if resolved[raw] is None and raw:
                unmatched.add(raw)
        return resolved[raw]

    # values[signal][time_key][node] = (variant_index, value); lower variant index wins.
    values: dict[Signal, dict[int, dict[str, tuple[int, float]]]] = defaultdict(lambda: defaultdict(dict))
    fresh: dict[tuple[Signal, int], dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    pods: dict[int, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    node_power_variant: dict[int, dict[str, MetricVariant]] = defaultdict(dict)
    pod_signals = {s.signal for s in settings.sources.pod_sources()}

    for ans in answers:
        if ans.data is None:
            continue
        job = ans.job
        variant = job.variant
        signal = job.source.signal
        for s in ans.data.samples:
            if not math.isfinite(s.value):
                continue  # NaN from 0/0 or Inf: no data, never a number
            key = _time_key(s.time)
            node = node_of(s.labels.get(variant.node_label, ""))
            if signal in pod_signals:
                ns = s.labels.get(variant.namespace_label)
                pod = s.labels.get(variant.pod_label)
                if not ns or not pod:
                    continue
                rec = pods[key].setdefault((ns, pod), {"node": node, "variants": {}})
                if rec["node"] is None:
                    rec["node"] = node
                prev = rec["variants"].get(signal)
                if prev is None or job.variant_index < prev[0]:
                    rec["variants"][signal] = (job.variant_index, s.value)
                elif job.variant_index == prev[0]:
                    rec["variants"][signal] = (prev[0], prev[1] + s.value)
                continue
            if node is None:
                continue
            if job.freshness:
                cell = fresh[(signal, job.variant_index)][key]
                cell[node] = max(cell.get(node, -math.inf), s.value)
                continue
            bucket = values[signal][key]
            prev_v = bucket.get(node)
            if prev_v is None or job.variant_index < prev_v[0]:
                bucket[node] = (job.variant_index, s.value)
                if signal is Signal.NODE_POWER:
                    node_power_variant[key][node] = variant
            elif job.variant_index == prev_v[0]:
                # Two raw label values resolved to one node (e.g. two exporters): add their parts.
                bucket[node] = (prev_v[0], prev_v[1] + s.value)

    snapshots: list[TelemetrySnapshot] = []
    max_age = settings.max_sample_age_seconds
    for at in times:
        key = _time_key(at)
        nodes: dict[str, NodeTelemetry] = {}
        stale: dict[str, list[Signal]] = defaultdict(list)
        node_names = {n for sig in values.values() for n in sig.get(key, {})}
        for node in sorted(node_names):
            got: dict[Signal, float] = {}
            sample_times: dict[Signal, float] = {}
            for signal, per_time in values.items():
                hit = per_time.get(key, {}).get(node)
                if hit is None:
                    continue
                variant_index, value = hit
                sampled = fresh.get((signal, variant_index), {}).get(key, {}).get(node, at)
                if at - sampled > max_age:
                    stale[node].append(signal)
                    continue
                got[signal] = value
                sample_times[signal] = sampled
            kepler = got.get(Signal.NODE_POWER)
            gpu_power = got.get(Signal.GPU_POWER)
            pv = node_power_variant.get(key, {}).get(node)
            includes_gpu = True if pv is None else pv.includes_gpu
            measured: float | None = None
            source: PowerSource | None = None
            if kepler is not None:
                if not includes_gpu and gpu_power is not None:
                    measured, source = kepler + gpu_power, PowerSource.KEPLER_DCGM
                else:
                    measured, source = kepler, PowerSource.KEPLER
            elif gpu_power is not None:
                measured, source = gpu_power, PowerSource.DCGM
            cpu = got.get(Signal.CPU_UTILIZATION)
            gpu = got.get(Signal.GPU_UTILIZATION)
            nodes[node] = NodeTelemetry(
                node=node,
                observed_at=max(sample_times.values(), default=at),
                cpu_utilization=None if cpu is None else min(max(cpu, 0.0), 1.0),
                gpu_utilization=None if gpu is None else min(max(gpu, 0.0), 1.0),
                measured_power_watts=measured,
                power_source=source,
                gpu_power_watts=gpu_power,
                kepler_power_watts=kepler,
                kepler_includes_gpu=includes_gpu,
                sample_times=sample_times,
            )
        pod_out: dict[tuple[str, str], PodTelemetry] = {}
        for (ns, pod), rec in pods.get(key, {}).items():
            variants = rec["variants"]
            cpu_hit = variants.get(Signal.POD_CPU)
            power_hit = variants.get(Signal.POD_POWER)
            pod_out[(ns, pod)] = PodTelemetry(
                namespace=ns,
                pod=pod,
                node=rec["node"],
                observed_at=at,
                cpu_cores=None if cpu_hit is None else cpu_hit[1],
                power_watts=None if power_hit is None else power_hit[1],
            )
        snapshots.append(
            TelemetrySnapshot(
                fetched_at=at,
                nodes=nodes,
                errors=errors,
                pods=pod_out,
                stale={n: tuple(s) for n, s in stale.items()},
                unmatched_identities=tuple(sorted(unmatched)),
                queries=reports,
                window_seconds=window_seconds,
            )
        )
    return snapshots
