"""One accounting tick for 5,000 nodes and 10,000 running jobs, telemetry already fetched.

What it measures (one process, no network: the inventory and the telemetry snapshot are built in
memory, so the figures are the accounting's own cost, not the API server's or Prometheus's):

* **tick time** of ``AccountingLoop.account`` — parse Nodes/Pods/LeptonJobs, sync ledgers, one window
  for the whole cluster (power, cost, attribution, per-job increments), budgets, choosing the writes,
  publishing the metrics view — steady (median), and the first tick after a start (cost tables built,
  the jobs' past recomputed in at most ``max_backfill_windows`` windows);
* **the window pipeline alone** (``account_window``) against a **baseline**: the same window computed
  one pod at a time in plain Python (what "one timer per job" code does), measured in the same run and
  checked to give the same numbers; the ratio is reported;
* **status writes chosen per tick** under the rate limit (default 50/s over a 30 s tick), and the CPU
  cost of building those patches (ledger settle + status body + JSON);
* **memory**: Python heap peak during a steady tick (tracemalloc) and the process's max RSS;
* **re-pricing** (``spec.costProfile``): a share of the jobs (``--repriced-share``, default 10 %) names a
  cost profile; the window pipeline with those jobs re-priced is timed against the same window without
  (same run, same pods), and the steady tick includes it.

Run: ``.venv/bin/python bench/accounting_tick.py [--nodes 5000] [--jobs 10000] [--ticks 6]
[--repriced-share 0.1] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import random
import resource
import statistics
import time
import tracemalloc
from typing import Any

import numpy as np
import orjson

from lepton_core.accounting.pipeline import NodeReadings, account_window
from lepton_core.models.attribution import dominant_shares
from lepton_core.profiles import default_profiles
from lepton_core.telemetry.types import NodeTelemetry, PowerSource, TelemetrySnapshot
from lepton_core.units import JOULES_PER_KWH, SECONDS_PER_HOUR
from lepton_operator.accounting.inventory import format_time
from lepton_operator.accounting.kube import KubeApi
from lepton_operator.accounting.loop import AccountingLoop
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.accounting.status import status_patch

T0 = 1_709_510_400.0
INTERVAL = 30.0
GPU_MODELS = ("A100", "H100", "V100M32", "T4", "A10")


def inventory(
    n_nodes: int, n_jobs: int, rng: random.Random, repriced_share: float = 0.0
) -> tuple[list[dict[str, Any]], ...]:
    nodes: list[dict[str, Any]] = []
    free: list[tuple[str, float, float]] = []  # (node, cpu left, gpus left)
    for i in range(n_nodes):
        name = f"node-{i:05d}"
        labels = {"kubernetes.io/hostname": name}
        alloc = {"cpu": "64", "memory": "256Gi", "pods": "110"}
        gpus = 0
        if rng.random() < 0.5:
            labels["lepton.ai/gpu-model"] = rng.choice(GPU_MODELS)
            gpus = 8
            alloc["nvidia.com/gpu"] = str(gpus)
        else:
            labels["lepton.ai/node-class"] = rng.choice(("cpu-small", "cpu-large", "cpu-xlarge"))
        nodes.append(
            {
                "metadata": {"name": name, "labels": labels, "resourceVersion": str(i)},
                "status": {
                    "allocatable": alloc,
                    "addresses": [{"type": "InternalIP", "address": f"10.{i // 250}.{i % 250}.1"}],
                },
            }
        )
        free.append((name, 64.0, float(gpus)))
    jobs: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    started = format_time(T0 - 3600.0)
    for j in range(n_jobs):
        name, uid = f"job-{j:05d}", f"uid-{j:05d}"
        spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}}
        if j % 10 == 0:
            spec["budget"] = {"maxCost": 1e6, "action": "notify"}
        if j % 7 == 0:
            spec["expectedDurationSeconds"] = 86400
        if (j * 7919) % 1000 < repriced_share * 1000:  # spread over namespaces and node kinds
            spec["costProfile"] = "gpu-h100"
        jobs.append(
            {
                "metadata": {"namespace": f"team-{j % 50}", "name": name, "uid": uid, "resourceVersion": f"{j}"},
                "spec": spec,
                "status": {"phase": "Running"},
            }
        )
        for w in range(1 + (j % 3 == 0)):  # a third of the jobs have two workers
            k = rng.randrange(n_nodes)
            node, cpu_left, gpu_left = free[k]
            gpus = 1.0 if gpu_left >= 1 and rng.random() < 0.7 else 0.0
            cpu = min(4.0, max(cpu_left, 0.5))
            free[k] = (node, cpu_left - cpu, gpu_left - gpus)
            requests = {"cpu": f"{cpu:g}", "memory": "16Gi"}
            if gpus:
                requests["nvidia.com/gpu"] = "1"
            pods.append(
                {
                    "metadata": {
                        "namespace": f"team-{j % 50}",
                        "name": f"{name}-worker-{w}",
                        "resourceVersion": f"{j}{w}",
                        "ownerReferences": [{"kind": "LeptonJob", "name": name, "uid": uid}],
                    },
                    "spec": {"nodeName": node, "containers": [{"name": "main", "resources": {"requests": requests}}]},
                    "status": {
                        "phase": "Running",
                        "containerStatuses": [{"state": {"running": {"startedAt": started}}}],
                    },
                }
            )
    return nodes, pods, jobs


def snapshot(nodes: list[dict[str, Any]], at: float, rng: random.Random) -> TelemetrySnapshot:
    out = {}
    for n in nodes:
        name = n["metadata"]["name"]
        gpus = "nvidia.com/gpu" in n["status"]["allocatable"]
        kepler = rng.uniform(150, 450)
        dcgm = rng.uniform(400, 2400) if gpus else None
        out[name] = NodeTelemetry(
            node=name,
            observed_at=at - 5,
            cpu_utilization=rng.random(),
            gpu_utilization=rng.random() if gpus else None,
            measured_power_watts=kepler + (dcgm or 0.0),
            power_source=PowerSource.KEPLER_DCGM if gpus else PowerSource.KEPLER,
            gpu_power_watts=dcgm,
            kepler_power_watts=kepler,
            kepler_includes_gpu=False,
        )
    return TelemetrySnapshot(fetched_at=at, nodes=out, window_seconds=INTERVAL)


def baseline_window(loop: AccountingLoop, readings: NodeReadings, t0: float, t1: float, n_jobs: int) -> np.ndarray:
    """The same window, one pod at a time in plain Python (no arrays across pods)."""
    table = loop._table
    assert table is not None
    pods = loop._bench_pods
    dt = t1 - t0
    p = table.power
    node_watts = []
    for i in range(len(table)):
        u_cpu = readings.cpu_utilization[i]
        u_gpu = readings.gpu_utilization[i] if not math.isnan(readings.gpu_utilization[i]) else 0.0
        gpu_part = (
            readings.gpu_watts[i]
            if not math.isnan(readings.gpu_watts[i])
            else (
                p.gpu_count[i]
                * (p.gpu_idle_watts[i] + (p.gpu_max_watts[i] - p.gpu_idle_watts[i]) * u_gpu ** p.gpu_exponent[i])
            )
        )
        it = (
            readings.kepler_watts[i] + gpu_part
            if not math.isnan(readings.kepler_watts[i])
            else float(p.platform_watts(np.array([u_cpu]))[0]) + gpu_part
        )
        node_watts.append(it * p.pue[i])
    share_sum = [0.0] * len(table)
    shares = []
    for k in range(len(pods.node)):
        n = int(pods.node[k])
        s = float(dominant_shares(pods.requests[k : k + 1], table.allocatable[n : n + 1])[0])
        shares.append(s)
        share_sum[n] += s
    out = np.zeros((n_jobs, 3))
    for k, s in enumerate(shares):
        n = int(pods.node[k])
        scale = 1.0 / share_sum[n] if share_sum[n] > 1.0 else 1.0
        tariff = table.tariffs[int(table.tariff_of_node[n])]
        j = int(pods.job[k])
        hours = dt / SECONDS_PER_HOUR
        out[j, 0] += s * scale * table.hardware_per_hour[n] * hours
        out[j, 1] += s * scale * node_watts[n] * tariff.price_integral(t0, t1) / JOULES_PER_KWH
        out[j, 2] += s * scale * table.operations_per_hour[n] * hours
    return out


async def run(n_nodes: int, n_jobs: int, ticks: int, repriced_share: float = 0.1) -> dict[str, Any]:
    rng = random.Random(7)
    raw_nodes, raw_pods, raw_jobs = inventory(n_nodes, n_jobs, rng, repriced_share)
    settings = AccountingSettings(interval_seconds=INTERVAL)
    api = KubeApi.for_url("http://127.0.0.1:9")  # never called: the inventory and telemetry are given
    loop = AccountingLoop(api, default_profiles(), settings)
    times: list[float] = []
    first_windows = 0
    due_counts: list[int] = []
    peak_heap = 0
    for k in range(ticks + 2):
        now = T0 + k * INTERVAL
        snaps = [snapshot(raw_nodes, now, rng)] if k else None
        traced = k == ticks + 1  # one extra steady tick under tracemalloc (it slows the tick down)
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        report = await loop.account(now, raw_nodes, raw_pods, raw_jobs, snaps)
        elapsed = time.perf_counter() - started
        if traced:
            peak_heap = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        else:
            times.append(elapsed)
            due_counts.append(report.due)
            if k == 0:
                first_windows = len(report.windows)
        # What write_due would send: settle + status body + JSON, for the chosen jobs (not sent).
        t_build = time.perf_counter()
        for uid in loop._due:
            st = loop.jobs[uid]
            new = st.ledger.settle(st.pending)
            if new.observed_at_ms is not None:
                orjson.dumps(status_patch(new, currency="USD", per_hour=st.per_hour, to_complete=None))
                st.ledger, st.last_write_at = new, now
                st.clear_pending()
            if st.profile_condition is not None:  # as if the API server had stored the condition
                st.info = dataclasses.replace(st.info, conditions=(st.profile_condition.as_dict(),))
        build = time.perf_counter() - t_build
        loop._due = []
    # The window pipeline alone, against the per-pod baseline (same numbers, checked).
    table = loop._table
    assert table is not None
    job_index = {j["metadata"]["uid"]: k for k, j in enumerate(raw_jobs)}
    from lepton_operator.accounting.inventory import parse_all

    _, pods, _, _ = parse_all(raw_nodes, raw_pods, raw_jobs)
    loop._bench_pods = loop._pod_table(table, pods, job_index)  # type: ignore[attr-defined]
    readings = NodeReadings.from_snapshot(snapshot(raw_nodes, T0, rng), table.names)
    t0, t1 = T0, T0 + INTERVAL
    vec = []
    for _ in range(5):
        s = time.perf_counter()
        acc = account_window(table, loop._bench_pods, readings, t0=t0, t1=t1, jobs=n_jobs)  # type: ignore[attr-defined]
        vec.append(time.perf_counter() - s)
    # The same window with the jobs naming a cost profile re-priced (the tick's path), against it.
    jobs_info = [loop.jobs[j["metadata"]["uid"]].info for j in raw_jobs]
    overrides, repriced_pods = loop._reprice(table, jobs_info, loop._bench_pods)  # type: ignore[attr-defined]
    repriced = int(((repriced_pods.pricing if repriced_pods.pricing is not None else np.zeros(0)) >= 0).sum())
    rep_times = []
    for _ in range(5):
        s = time.perf_counter()
        rep_acc = account_window(table, repriced_pods, readings, t0=t0, t1=t1, jobs=n_jobs, overrides=overrides)
        rep_times.append(time.perf_counter() - s)
    # Conservation with re-pricing: Σ jobs + other + idle = node totals + re-pricing, per component.
    np.testing.assert_allclose(
        rep_acc.job_cost.sum(axis=0) + rep_acc.other_cost.sum(axis=0) + rep_acc.idle_cost.sum(axis=0),
        rep_acc.node_cost.sum(axis=0) + rep_acc.repricing_cost.sum(axis=0),
        rtol=1e-9,
    )
    s = time.perf_counter()
    base = baseline_window(loop, readings, t0, t1, n_jobs)
    base_s = time.perf_counter() - s
    # Energy prices come from prefix sums in one and direct integrals in the other: equal to ~1e-9.
    np.testing.assert_allclose(acc.job_cost, base, rtol=1e-7, atol=1e-15)
    writes_per_tick = statistics.median(due_counts[2:])
    return {
        "nodes": n_nodes,
        "jobs": n_jobs,
        "pods": len(raw_pods),
        "first_tick_seconds": times[0],
        "first_tick_windows": first_windows,
        "tick_steady_seconds": statistics.median(times[2:]),
        "window_pipeline_seconds": statistics.median(vec),
        "repriced_pods": repriced,
        "window_pipeline_repriced_seconds": statistics.median(rep_times),
        "repricing_overhead_ratio": statistics.median(rep_times) / statistics.median(vec),
        "baseline_per_pod_python_seconds": base_s,
        "speedup_vs_baseline": base_s / statistics.median(vec),
        "status_writes_per_tick": writes_per_tick,
        "status_writes_per_second": writes_per_tick / INTERVAL,
        "status_build_seconds_last_tick": build,
        "jobs_status_lag_seconds": n_jobs / settings.max_writes_per_second,
        "heap_peak_mib_steady_tick": peak_heap / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--ticks", type=int, default=6)
    parser.add_argument("--repriced-share", type=float, default=0.1, help="share of jobs naming a cost profile")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(run(args.nodes, args.jobs, args.ticks, args.repriced_share))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"accounting tick: {out['nodes']} nodes, {out['jobs']} running jobs ({out['pods']} pods), telemetry given")
    print(
        f"  first tick after start           {out['first_tick_seconds'] * 1000:8.0f} ms"
        f"   (cost tables built; {out['first_tick_windows']} windows recomputed since the pods started, model only)"
    )
    print(f"  tick, steady (median)            {out['tick_steady_seconds'] * 1000:8.0f} ms")
    print(f"  window pipeline alone            {out['window_pipeline_seconds'] * 1000:8.1f} ms")
    print(
        f"  ... with spec.costProfile        {out['window_pipeline_repriced_seconds'] * 1000:8.1f} ms"
        f"   ({out['repriced_pods']} pods re-priced; ratio {out['repricing_overhead_ratio']:.2f}x)"
    )
    print(
        f"  baseline: same window per pod    {out['baseline_per_pod_python_seconds'] * 1000:8.0f} ms"
        f"   ratio {out['speedup_vs_baseline']:.0f}x"
    )
    print(
        f"  status writes per {INTERVAL:.0f} s tick       {out['status_writes_per_tick']:8.0f}"
        f"   = {out['status_writes_per_second']:.1f} writes/s (limit 50/s)"
    )
    print(f"  building those patches           {out['status_build_seconds_last_tick'] * 1000:8.0f} ms")
    print(f"  a job's status lags its live cost by at most ~{out['jobs_status_lag_seconds']:.0f} s (metrics never)")
    print(f"  heap peak during a steady tick   {out['heap_peak_mib_steady_tick']:8.0f} MiB")
    print(f"  process max RSS                  {out['max_rss_mib']:8.0f} MiB")


if __name__ == "__main__":
    main()
