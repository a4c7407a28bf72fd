"""The extender's Prometheus metrics, in a private registry per app (names from ``lepton_core.metrics_names``).

Request latencies and node outcome counts are plain sums the requests add to (a list item, a dict
entry: no lock, no per-bucket loop), exposed as a histogram and a counter at scrape time; snapshot gauges
(telemetry age, nodes, pending placements) are built at scrape time by a custom collector, so nothing
has to keep them current. All of it is read and written on the event loop's one thread.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from lepton_core import metrics_names as mn
from lepton_extender.snapshot import ClusterSnapshot

# Extender calls are sub-millisecond when healthy; kube-scheduler's default timeout is 5 s.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _base(name: mn.MetricName) -> str:
    """prometheus_client appends ``_total`` to counters itself."""
    return name.name.removesuffix("_total") if name.kind == "counter" else name.name


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: ClusterSnapshot, clock: Callable[[], float]) -> None:
        self._snapshot = snapshot
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        age = GaugeMetricFamily(mn.EXTENDER_TELEMETRY_AGE_SECONDS.name, mn.EXTENDER_TELEMETRY_AGE_SECONDS.help)
        fetched = snap.stats.telemetry_fetched_at
        if fetched is not None:
            age.add_metric([], max(0.0, self._clock() - fetched))
        yield age
        nodes = GaugeMetricFamily(mn.EXTENDER_SNAPSHOT_NODES.name, mn.EXTENDER_SNAPSHOT_NODES.help)
        nodes.add_metric([], float(len(snap.names)))
        yield nodes
        pending = GaugeMetricFamily(mn.EXTENDER_PENDING_PLACEMENTS.name, mn.EXTENDER_PENDING_PLACEMENTS.help)
        pending.add_metric([], float(snap.pending_placements))
        yield pending


class _LatencyCollector(Collector):
    """``lepton_extender_request_duration_seconds`` from per-(verb, code) bucket counts and sums kept by
    the requests (``ExtenderMetrics.observe_request``). prometheus_client's ``Histogram.observe`` walks
    its buckets in Python under a lock for every observation; here one observation is a bisect and two
    additions, and the cumulative buckets are built at scrape time."""

    def __init__(self, series: dict[tuple[str, str], tuple[list[int], list[float]]]) -> None:
        self._series = series
        self._bounds = [repr(float(b)) for b in _LATENCY_BUCKETS] + ["+Inf"]  # le="0.0005", as client_python writes

    def collect(self) -> Iterator[Metric]:
        d = mn.EXTENDER_REQUEST_DURATION_SECONDS
        family = HistogramMetricFamily(d.name, d.help, labels=list(d.labels))
        for (verb, code), (counts, total) in sorted(self._series.items()):
            buckets = list(zip(self._bounds, map(float, accumulate(counts)), strict=True))
            family.add_metric([verb, code], buckets, total[0])
        yield family


class _NodeCountCollector(Collector):
    """``lepton_extender_nodes_scored_total`` from plain per-(verb, outcome) sums kept by the requests:
    adding to a dict entry is several times cheaper than a locked ``Counter.inc`` on the request path,
    and three counts per request add up."""

    def __init__(self, counts: dict[tuple[str, str], float]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        n = mn.EXTENDER_NODES_SCORED_TOTAL
        family = CounterMetricFamily(_base(n), n.help, labels=list(n.labels))
        for (verb, outcome), value in sorted(self._counts.items()):
            family.add_metric([verb, outcome], value)
        yield family


class ExtenderMetrics:
    def __init__(self, snapshot: ClusterSnapshot, clock: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        """(verb, code) -> (observations per bucket, the last one above every bound; [sum of seconds])."""
        self._observers: dict[tuple[str, int], tuple[list[int], list[float]]] = {}
        self.registry.register(_LatencyCollector(self._latency))
        self.node_counts: dict[tuple[str, str], float] = {}
        """Nodes by (verb, outcome), exposed as ``lepton_extender_nodes_scored_total``."""
        self.registry.register(_NodeCountCollector(self.node_counts))
        e = mn.EXTENDER_INTERNAL_ERRORS_TOTAL
        self.internal_errors = Counter(_base(e), e.help, list(e.labels), registry=self.registry)
        t = mn.EXTENDER_TELEMETRY_FETCH_ERRORS_TOTAL
        self.telemetry_errors = Counter(_base(t), t.help, registry=self.registry)
        self.registry.register(_SnapshotCollector(snapshot, clock))

    def observe_request(self, verb: str, code: int, seconds: float) -> None:
        series = self._observers.get((verb, code))
        if series is None:
            series = self._latency.setdefault((verb, str(code)), ([0] * (len(_LATENCY_BUCKETS) + 1), [0.0]))
            self._observers[(verb, code)] = series
        counts, total = series
        counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        total[0] += seconds

    def count_nodes(self, verb: str, outcome: str, count: int) -> None:
        if count > 0:
            key = (verb, outcome)
            self.node_counts[key] = self.node_counts.get(key, 0.0) + count
