"""The "done when" scenario: three simulated hours of a cluster, accounted through the real wire.

Real parts: a Prometheus (backfilled with node_exporter-, DCGM- and Kepler-shaped series of known
power), reached through a TCP proxy that the test cuts for a quarter of an hour; the Kubernetes
emulator holding Nodes, LeptonJobs and pods; the accounting loop writing status over HTTP. Time is
injected (``tick(now)``), so three hours take seconds. Along the way: jobs start and stop at odd
moments, the price changes every hour, the operator restarts (gracefully, then with a crash and two
replicas), and Prometheus goes away and comes back.

Each job's recorded cost must equal the integral the test computes by hand (``scenario``) within
0.1 % (in practice ~1e-9), Σ jobs + idle must equal the node totals, and nothing may be counted twice.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lepton_core.accounting.amounts import NANO_PER_UNIT
from lepton_core.telemetry.prometheus import MetricSources, PrometheusSettings, TelemetryFetcher
from lepton_operator.accounting.kube import KubeApi
from lepton_operator.accounting.loop import AccountingLoop
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.accounting.status import ledger_from_status
from lepton_operator.metrics import accounting_registry
from lepton_operator.naming import ANNOTATION_STOP
from tests.accounting import cluster
from tests.accounting.proxy import ToggleProxy
from tests.accounting.scenario import (
    HOUR,
    MINUTE,
    T0,
    JobPlan,
    Outage,
    expected_job_cost,
    expected_node_cost,
    jobs,
    profiles,
    samples,
)
from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.runner import EmulatorThread
from tests.prometheus_fixture import OpenMetricsWriter, PrometheusServer

pytestmark = pytest.mark.prometheus

NS = "team"
NODES = (("gpu-a", 32, 4, "gpu"), ("gpu-b", 32, 4, "gpu"), ("cpu-c", 32, 0, "cpu"))


class Cluster:
    """Plays kubelet and lifecycle operator for the planned jobs, in simulated time."""

    def __init__(self, kube: KubeClient, plans: list[JobPlan]) -> None:
        self.kube = kube
        self.plans = plans
        self.bodies: dict[str, dict[str, Any]] = {}

    def setup(self) -> dict[str, str]:
        cluster.install(self.kube, NS)
        ips = {
            name: cluster.add_node(self.kube, name, cpu=cpu, gpus=gpus, node_class=c) for name, cpu, gpus, c in NODES
        }
        for plan in self.plans:
            body = cluster.add_job(
                self.kube, NS, plan.name, budget=plan.budget, expected_duration_seconds=plan.expected_duration_seconds
            )
            self.bodies[plan.name] = body
            plan.uid = body["metadata"]["uid"]
        return ips

    def advance(self, now: float) -> None:
        """Start the pods whose start time has come, finish those whose end has."""
        for plan in self.plans:
            for pod in plan.pods:
                if not pod.created and pod.start <= now:
                    cluster.start_pod(
                        self.kube,
                        self.bodies[plan.name],
                        pod.name,
                        node_name=pod.node,
                        cpu=pod.cpu,
                        gpus=pod.gpus,
                        started_at=pod.start,
                    )
                    pod.created = True
                if pod.created and not pod.finished and pod.end <= now:
                    cluster.finish_pod(self.kube, NS, pod.name, started_at=pod.start, finished_at=pod.end)
                    pod.finished = True

    def honour_stop_annotations(self, now: float) -> None:
        """The lifecycle's part of a budget's ``stop``/``suspend``: the pods end shortly afterwards."""
        stopped = {
            j["metadata"]["name"]
            for j in self.kube.list("leptonjobs.lepton.ai", NS)
            if ANNOTATION_STOP in (j["metadata"].get("annotations") or {}) or j["spec"].get("suspend")
        }
        for plan in self.plans:
            if plan.name in stopped:
                for pod in plan.pods:
                    if math.isinf(pod.end):
                        pod.end = now + 12.25

    def job(self, name: str) -> dict[str, Any]:
        return self.kube.get("leptonjobs.lepton.ai", NS, name)


def _settings(url: str) -> AccountingSettings:
    return AccountingSettings(
        interval_seconds=MINUTE,
        # 3 status writes per one-minute tick for 9 jobs: statuses lag, nothing may be lost.
        max_writes_per_second=0.05,
        write_burst=3.0,
        min_flush_interval_seconds=MINUTE,
        prometheus=PrometheusSettings(
            url, min_rate_window_seconds=0.0, timeout_seconds=5.0, sources=MetricSources(pod_cpu=None, pod_power=None)
        ),
    )


async def _close(*loops: AccountingLoop) -> None:
    for loop in loops:
        await loop.close()
        await loop.kube.close()


def _new_loop(api: KubeApi, settings: AccountingSettings) -> AccountingLoop:
    assert settings.prometheus is not None
    return AccountingLoop(api, profiles(), settings, TelemetryFetcher(settings.prometheus))


def _check_jobs(world: Cluster, plans: list[JobPlan], until: float, outage: Outage | None) -> dict[str, Any]:
    all_pods = [p for j in plans for p in j.pods]
    ledgers = {}
    for plan in plans:
        status = world.job(plan.name).get("status") or {}
        ledger = ledger_from_status(status, _settings("http://x").history)
        money, joules = expected_job_cost(plan, all_pods, until, outage)
        got_money = ledger.amounts.total / NANO_PER_UNIT
        assert got_money == pytest.approx(money, rel=1e-3), plan.name
        assert ledger.amounts.joules == pytest.approx(joules, rel=1e-3), plan.name
        # In practice the agreement is to rounding (half a nano-unit per window), not merely 0.1 %.
        windows = (until - plan.first_start) / MINUTE + 1
        assert got_money == pytest.approx(money, rel=1e-9, abs=windows * 1e-9), plan.name
        # The watermark is the end of the last window the job accrued in: the last tick for a running
        # job, the first tick after its end for a finished one.
        last_end = max(min(p.end, until) for p in plan.pods)
        assert (
            until - MINUTE < ledger.observed_at_ms / 1000 <= until
            if last_end >= until
            else (last_end <= ledger.observed_at_ms / 1000 < last_end + MINUTE)
        ), plan.name
        assert ledger.history.total() == ledger.amounts, plan.name
        assert len(ledger.history.buckets) <= ledger.history.policy.max_buckets
        ledgers[plan.name] = (ledger, status)
    return ledgers


async def _run(
    world: Cluster,
    loops: list[AccountingLoop],
    *,
    start: float,
    end: float,
    proxy: ToggleProxy,
    outage: Outage | None,
) -> None:
    t = start
    while t <= end:
        world.advance(t)
        if outage is not None and outage.covers(t):
            proxy.cut()
        else:
            proxy.restore()
        # Replicas read the same objects, then write at the same time: every shared job is a race.
        for loop in loops:
            await loop.tick(t)
        await asyncio.gather(*(loop.write_due() for loop in loops))
        world.honour_stop_annotations(t)
        t += MINUTE


async def test_three_hours_of_jobs_cost_exactly_what_they_used(
    kube: KubeClient,
    kube_emulator: EmulatorThread,
    prometheus_history: Callable[[OpenMetricsWriter], PrometheusServer],
) -> None:
    plans = jobs()
    world = Cluster(kube, plans)
    ips = world.setup()
    end = T0 + 3 * HOUR
    prom = prometheus_history(samples(-60, 200, ips))
    outage = Outage(T0 + 2 * HOUR, T0 + 2 * HOUR + 15 * MINUTE)
    restart_at, resume_at = T0 + 5400.0, T0 + 5820.0
    api = KubeApi.for_url(kube_emulator.url)
    async with ToggleProxy("127.0.0.1", prom.port) as proxy:
        settings = _settings(proxy.url)
        first = _new_loop(api, settings)
        await _run(world, [first], start=T0, end=restart_at, proxy=proxy, outage=outage)
        before_flush = api.writes
        await first.flush_all()  # a graceful stop writes every pending window
        flushed = api.writes - before_flush
        # The operator is away for 7 minutes (epsilon starts meanwhile); the next process recomputes
        # the gap from Prometheus's history.
        for t in range(int(restart_at + MINUTE), int(resume_at), int(MINUTE)):
            world.advance(float(t))
        second = _new_loop(api, settings)
        await _run(world, [second], start=resume_at, end=end, proxy=proxy, outage=outage)
        in_ticks = api.writes - flushed
        await second.flush_all()
        ledgers = _check_jobs(world, plans, end, outage)

        # --- Σ jobs + idle + other pods = node totals, per node, and the node totals are the exact integral.
        all_pods = [p for j in plans for p in j.pods]
        node_total = {n: 0.0 for n, *_ in NODES}
        idle_and_other = 0.0
        for loop in (first, second):
            totals = loop.view().totals
            for n in node_total:
                node_total[n] += float(totals.cost[n].sum())
                idle_and_other += float(totals.idle[n].sum() + totals.other[n].sum())

        # A finished job deleted (its TTL ran out) keeps its final cost in /metrics for a while.
        final_alpha = second.view().jobs[(NS, "alpha")].amounts
        kube.delete("leptonjobs.lepton.ai", NS, "alpha")
        await second.tick(end + MINUTE)
        assert second.view().jobs[(NS, "alpha")].amounts == final_alpha
        await _close(first, second)

    for n, got in node_total.items():
        assert got == pytest.approx(expected_node_cost(n, T0, end, all_pods, outage), rel=1e-9), n
    jobs_total = sum(ledger.amounts.total for ledger, _ in ledgers.values()) / NANO_PER_UNIT
    # Ledgers are exact integers of 1e-9 currency units: a few thousand increments, each rounded once.
    assert jobs_total + idle_and_other == pytest.approx(sum(node_total.values()), rel=1e-7)

    # --- the outage was accounted from the model on requests, marked, and switched back
    alpha, alpha_status = ledgers["alpha"]
    assert alpha.estimated_ms == round((7805.5 - 7200.0) * 1000)  # it ran 605.5 s of the outage
    assert any(b.estimated for b in alpha.history.buckets)
    assert alpha_status["cost"]["estimated"] is True  # it finished during the outage
    assert ledgers["beta"][1]["cost"]["estimated"] is False  # running on: back to measurements
    assert ledgers["epsilon"][0].estimated_ms == 15 * 60_000

    # --- rate limit: 3 writes a minute on average (plus the burst), whatever the number of jobs
    minutes = (end - T0) / MINUTE - (resume_at - restart_at) / MINUTE
    assert in_ticks <= 0.05 * 60 * minutes + 2 * settings.write_burst + 3 * 3

    # --- budgets: condition, event and action, once
    budgets = (
        ("notify", "CostBudgetExceeded"),
        ("stopper", "EnergyBudgetExceeded"),
        ("suspender", "CostBudgetExceeded"),
    )
    for name, reason in budgets:
        body = world.job(name)
        cond = next(c for c in body["status"]["conditions"] if c["type"] == "BudgetExceeded")
        assert (cond["status"], cond["reason"]) == ("True", reason)
        events = [e for e in kube.events(NS, name) if e["reason"] == "BudgetExceeded"]
        assert len(events) == 1, events
        assert "spec.budget" in events[0]["message"]
    assert ANNOTATION_STOP in world.job("stopper")["metadata"]["annotations"]
    assert ANNOTATION_STOP not in (world.job("notify")["metadata"].get("annotations") or {})
    assert world.job("suspender")["spec"]["suspend"] is True
    assert world.job("notify")["spec"]["suspend"] is False

    # --- what people read: rate, cost to complete, energy
    beta = world.job("beta")["status"]
    assert beta["cost"]["perHour"] > 0.0
    elapsed = end - (T0 + 2400.0)
    assert beta["cost"]["toComplete"] == pytest.approx(beta["cost"]["perHour"] * (3 * HOUR - elapsed) / HOUR)
    assert ledgers["gamma"][1]["cost"]["perHour"] == 0.0  # finished
    energy = world.job("delta")["status"]["energy"]
    assert energy["kWh"] == pytest.approx(energy["joules"] / 3.6e6)
    assert energy["averageWatts"] == pytest.approx(energy["joules"] / (end - (T0 + 300.0)), rel=1e-6)

    # --- /metrics shows the same ledger, live
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(accounting_registry(second.view)).decode())
    }
    alpha_money = {
        s.labels["component"]: s.value
        for s in families["lepton_job_cost"].samples
        if s.labels.get("job") == "alpha" and s.name == "lepton_job_cost_total"
    }
    assert sum(alpha_money.values()) == pytest.approx(alpha.amounts.total / NANO_PER_UNIT, rel=1e-9)
    # Budgets as gauges (what the budget rules and alerts divide by) and the operator's verdict.
    budget_cost = {s.labels["job"]: s.value for s in families["lepton_job_budget_cost"].samples}
    assert budget_cost == {"notify": 0.05, "suspender": 0.02}
    budget_joules = {s.labels["job"]: s.value for s in families["lepton_job_budget_energy_joules"].samples}
    assert budget_joules == {"stopper": pytest.approx(0.2 * 3.6e6)}
    exceeded = {s.labels["job"]: s.value for s in families["lepton_job_budget_exceeded"].samples}
    assert exceeded == {"notify": 1.0, "stopper": 1.0, "suspender": 1.0}
    assert {s.labels["node"] for s in families["node_total_hourly_cost"].samples} == {"gpu-a", "gpu-b", "cpu-c"}
    gpu_hourly = {s.labels["node"] for s in families["node_gpu_hourly_cost"].samples}
    assert gpu_hourly == {"gpu-a", "gpu-b"}


async def test_a_crash_and_two_replicas_neither_lose_nor_double_a_window(
    kube: KubeClient,
    kube_emulator: EmulatorThread,
    prometheus_history: Callable[[OpenMetricsWriter], PrometheusServer],
) -> None:
    plans = [p for p in jobs() if p.name in ("alpha", "gamma", "delta", "multi")]
    world = Cluster(kube, plans)
    ips = world.setup()
    end = T0 + 1.5 * HOUR
    prom = prometheus_history(samples(-10, 100, ips))
    api = KubeApi.for_url(kube_emulator.url)
    async with ToggleProxy("127.0.0.1", prom.port) as proxy:
        settings = _settings(proxy.url)
        crashing = _new_loop(api, settings)
        await _run(world, [crashing], start=T0, end=T0 + 50 * MINUTE, proxy=proxy, outage=None)
        # A crash: the windows it accounted but had not written yet are simply gone.
        assert crashing.view().pending_jobs > 0
        for t in range(int(T0 + 51 * MINUTE), int(T0 + 55 * MINUTE), int(MINUTE)):
            world.advance(float(t))
        # Two replicas come up and both account and write every job, racing on every status.
        replicas = [_new_loop(KubeApi.for_url(kube_emulator.url), _settings(proxy.url)) for _ in range(2)]
        await _run(world, replicas, start=T0 + 55 * MINUTE, end=end, proxy=proxy, outage=None)
        for r in replicas:
            await r.flush_all(end)
        await _close(crashing, *replicas)
    _check_jobs(world, plans, end, None)
    conflicts = sum(r.view().writes["conflict"] for r in replicas)
    assert conflicts > 0  # they did race, and lost races were re-read, not double-counted
