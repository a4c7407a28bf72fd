"""Benchmark: one accounting/scoring tick of the shared models for 5,000 nodes and 50,000 pods.

The tick = node power from utilization (NodePowerTable), cost rate per node (hardware + operations +
power × price), and attribution of each component to the pods (dominant-request shares). It runs
vectorized (what Lepton uses) and as a plain-Python loop over the same scalar models (the baseline),
in the same process, and reports the ratio. Both must produce the same numbers.

    .venv/bin/python bench/models_bench.py [--nodes 5000] [--pods 50000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from lepton_core.models import NodePowerModel, NodePowerTable, attribute, dominant_shares
from lepton_core.profiles import default_profiles
from lepton_core.units import JOULES_PER_KWH, SECONDS_PER_HOUR


def build(nodes: int, pods: int, seed: int = 1) -> dict[str, np.ndarray | list[NodePowerModel]]:
    rng = np.random.default_rng(seed)
    profiles = default_profiles().profiles
    which = rng.integers(0, len(profiles), nodes)
    models = [profiles[i].power_model() for i in which]
    fixed = np.array([profiles[i].fixed_cost_per_hour().total for i in which])
    alloc = np.array([[96.0, 768.0, float(profiles[i].gpu_count)] for i in which])
    pod_node = rng.integers(0, nodes, pods)
    req = np.column_stack(
        [rng.uniform(0.1, 8, pods), rng.uniform(0.5, 64, pods), (rng.random(pods) < 0.5) * (alloc[pod_node, 2] > 0)]
    )
    return {
        "models": models,
        "fixed": fixed,
        "alloc": alloc,
        "pod_node": pod_node,
        "req": req,
        "cpu_u": rng.random(nodes),
        "gpu_u": rng.random(nodes),
        "price": rng.uniform(0.05, 0.3, nodes),
    }


def tick_vectorized(d: dict, table: NodePowerTable) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    watts = table.power_watts(d["cpu_u"], d["gpu_u"])
    energy_per_hour = watts * SECONDS_PER_HOUR / JOULES_PER_KWH * d["price"]
    totals = d["fixed"] + energy_per_hour
    shares = dominant_shares(d["req"], d["alloc"][d["pod_node"]])
    res = attribute(totals, d["pod_node"], shares)
    return res.pod_amounts, res.idle_amounts


def tick_python(d: dict) -> tuple[list[float], list[float]]:  # type: ignore[type-arg]
    models = d["models"]
    cpu_u, gpu_u = d["cpu_u"].tolist(), d["gpu_u"].tolist()
    price, fixed = d["price"].tolist(), d["fixed"].tolist()
    totals = [
        fixed[n] + m.power_watts(cpu_u[n], gpu_u[n]) * SECONDS_PER_HOUR / JOULES_PER_KWH * price[n]
        for n, m in enumerate(models)
    ]
    alloc = d["alloc"].tolist()
    shares: list[float] = []
    share_sum = [0.0] * len(models)
    for p, n in enumerate(d["pod_node"].tolist()):
        r = d["req"][p].tolist()
        s = 0.0
        for k in range(3):
            a = alloc[n][k]
            f = (r[k] / a) if a > 0 else (1.0 if r[k] > 0 else 0.0)
            s = max(s, min(f, 1.0))
        shares.append(s)
        share_sum[n] += s
    out = []
    attributed = [0.0] * len(models)
    for p, n in enumerate(d["pod_node"].tolist()):
        scale = 1.0 / share_sum[n] if share_sum[n] > 1.0 else 1.0
        amount = shares[p] * scale * totals[n]
        out.append(amount)
        attributed[n] += amount
    idle = [0.0 if share_sum[n] >= 1.0 else totals[n] - attributed[n] for n in range(len(models))]
    return out, idle


def timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    d = build(args.nodes, args.pods)
    t0 = time.perf_counter()
    table = NodePowerTable(d["models"])  # type: ignore[arg-type]
    build_s = time.perf_counter() - t0
    vec_pods, vec_idle = tick_vectorized(d, table)
    py_pods, py_idle = tick_python(d)
    np.testing.assert_allclose(vec_pods, py_pods, rtol=1e-9)
    np.testing.assert_allclose(vec_idle, py_idle, rtol=1e-9, atol=1e-9)
    tracemalloc.start()
    tick_vectorized(d, table)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    vec = timeit(lambda: tick_vectorized(d, table), args.repeat)
    py = timeit(lambda: tick_python(d), max(3, args.repeat // 5))
    v, p = statistics.median(vec), statistics.median(py)
    print(f"models tick: {args.nodes} nodes, {args.pods} pods (results identical to 1e-9)")
    print(f"  vectorized   median {v * 1e3:8.2f} ms  (min {min(vec) * 1e3:.2f} ms)")
    print(f"  peak extra memory of one tick {peak / 2**20:.1f} MiB")
    print(f"  python loop  median {p * 1e3:8.2f} ms")
    print(f"  speed-up     {p / v:8.1f}x    power-table build (once per inventory change) {build_s * 1e3:.1f} ms")
    print(f"  target: tick under 50 ms -> {'met' if v < 0.050 else 'NOT met'}")


if __name__ == "__main__":
    main()
