"""Presenting replays: the comparison table, the JSON document and the plot.

Neighbours: ``lepton_simulator.engine`` produces the ``ReplayResult``s, ``lepton_simulator.lower_bound``
the bound; ``lepton_simulator.cli`` prints and writes what this module renders.

JSON (``--json FILE``)::

    {"trace": ..., "lifecycle": ..., "currency": ..., "policies": {NAME: {
        "cost": {"hardware", "energy", "operations", "total"}, "energy_kwh", "carbon_kg",
        "wait_s": {"mean", "p95"}, "makespan_s", "mean_cpu_allocation", "mean_gpu_allocation",
        "jobs_completed", "jobs_unplaced", "provisions", "node_hours", "wall_s",
        "vs_baseline": {"total_cost", "energy_cost", "energy_kwh", "carbon_kg", "wait_mean_s"}}},
     "baseline": "kube-default", "lower_bound": {"energy_cost", "energy_kwh", "jobs_counted"}, ...}

``vs_baseline`` values are relative differences ``(policy − baseline) / |baseline|`` (−0.05 = 5 % less).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lepton_simulator.engine import ReplayResult
from lepton_simulator.lower_bound import LowerBound
from lepton_simulator.policies import BASELINE
from lepton_simulator.scenario import Scenario
from lepton_simulator.settings import Lifecycle

LOWER_BOUND_METHOD = (
    "perfect packing: every job at the smallest power increment of the node class it fits best, priced "
    "over its cheapest possible window; idle power of every node (static) or of just enough capacity "
    "(autoscaled). See lepton_simulator.lower_bound."
)


def relative(value: float | None, base: float | None) -> float | None:
    """(value − base) / |base|; None when either is missing or the base is 0."""
    if value is None or base is None or base == 0.0 or not math.isfinite(base):
        return None
    return (value - base) / abs(base)


@dataclass(frozen=True, eq=False)
class SimulationReport:
    scenario: Scenario
    lifecycle: Lifecycle
    results: tuple[ReplayResult, ...]
    lower_bound: LowerBound
    wall_seconds: float

    @property
    def baseline(self) -> ReplayResult | None:
        return next((r for r in self.results if r.policy == BASELINE), None)

    def vs_baseline(self, r: ReplayResult) -> dict[str, float | None]:
        b = self.baseline
        if b is None:
            return {}
        return {
            "total_cost": relative(r.cost.total, b.cost.total),
            "energy_cost": relative(r.cost.energy, b.cost.energy),
            "energy_kwh": relative(r.energy_kwh, b.energy_kwh),
            "carbon_kg": relative(r.carbon_kg, b.carbon_kg),
            "wait_mean_s": relative(r.wait_mean_s, b.wait_mean_s),
        }

    def as_dict(self) -> dict[str, Any]:
        sc = self.scenario
        policies: dict[str, Any] = {}
        for r in self.results:
            policies[r.policy] = {
                "cost": r.cost.as_dict(),
                "energy_kwh": r.energy_kwh,
                "carbon_kg": r.carbon_kg,
                "wait_s": {"mean": r.wait_mean_s, "p95": r.wait_p95_s},
                "makespan_s": r.makespan_s,
                "mean_cpu_allocation": r.mean_cpu_allocation,
                "mean_gpu_allocation": r.mean_gpu_allocation,
                "jobs_completed": r.jobs_completed,
                "jobs_unplaced": r.jobs_unplaced,
                "provisions": r.provisions,
                "node_hours": r.node_hours,
                "wall_s": r.wall_seconds,
                "vs_baseline": self.vs_baseline(r),
            }
        return {
            "trace": sc.trace.source,
            "jobs": len(sc.trace.jobs),
            "nodes": len(sc.catalog),
            "lifecycle": self.lifecycle.value,
            "currency": sc.catalog.currency,
            "tariff": sc.tariff_description,
            "carbon": None if sc.carbon is None else {"source": sc.carbon.source, "basis": sc.carbon.basis},
            "start": datetime.fromtimestamp(sc.start_epoch_s, UTC).isoformat(),
            "baseline": BASELINE if self.baseline is not None else None,
            "policies": policies,
            "lower_bound": {**self.lower_bound.as_dict(), "method": LOWER_BOUND_METHOD},
            "warnings": list(sc.warnings),
            "notes": list(sc.trace.notes),
            "wall_s": self.wall_seconds,
        }


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100.0 * x:+.1f} %"


def _duration(seconds: float) -> str:
    if seconds < 120.0:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600.0:
        return f"{seconds / 60.0:,.1f} min"
    if seconds < 2 * 86400.0:
        return f"{seconds / 3600.0:,.1f} h"
    return f"{seconds / 86400.0:,.1f} d"


def render_table(report: SimulationReport) -> str:
    sc = report.scenario
    results = report.results
    cur = sc.catalog.currency
    start = datetime.fromtimestamp(sc.start_epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Trace: {sc.trace.source}: {len(sc.trace.jobs):,} jobs on {len(sc.catalog):,} nodes, "
        f"{report.lifecycle.value} lifecycle, starting {start}",
        f"Tariff: {sc.tariff_description}",
        f"Carbon: {sc.carbon.source} ({sc.carbon.basis})" if sc.carbon is not None else "Carbon: none",
        "",
    ]
    width = max(14, *(len(r.policy) + 2 for r in results))
    label_width = 28
    header = " " * label_width + "".join(f"{r.policy:>{width}}" for r in results)
    lines.append(header)
    rows: list[tuple[str, Callable[[ReplayResult], str]]] = [
        (f"cost total ({cur})", lambda r: _money(r.cost.total)),
        (f"  vs {BASELINE}", lambda r: _pct(report.vs_baseline(r).get("total_cost"))),
        ("  hardware", lambda r: _money(r.cost.hardware)),
        ("  energy", lambda r: _money(r.cost.energy)),
        (f"    vs {BASELINE}", lambda r: _pct(report.vs_baseline(r).get("energy_cost"))),
        ("  operations", lambda r: _money(r.cost.operations)),
        ("energy (kWh)", lambda r: f"{r.energy_kwh:,.1f}"),
        ("carbon (kg CO2e)", lambda r: "—" if r.carbon_kg is None else f"{r.carbon_kg:,.1f}"),
        ("wait mean", lambda r: _duration(r.wait_mean_s)),
        ("wait p95", lambda r: _duration(r.wait_p95_s)),
        ("makespan", lambda r: _duration(r.makespan_s)),
        ("mean CPU allocation", lambda r: f"{100.0 * r.mean_cpu_allocation:.1f} %"),
        ("mean GPU allocation", lambda r: f"{100.0 * r.mean_gpu_allocation:.1f} %"),
        ("node-hours powered", lambda r: f"{r.node_hours:,.0f}"),
        ("jobs completed", lambda r: f"{r.jobs_completed:,}"),
        ("jobs never placed", lambda r: f"{r.jobs_unplaced:,}"),
    ]
    if report.lifecycle is Lifecycle.AUTOSCALED:
        rows.append(("nodes provisioned", lambda r: f"{r.provisions:,}"))
    rows.append(("replay wall time", lambda r: f"{r.wall_seconds:.1f} s"))
    for label, cell in rows:
        lines.append(f"{label:<{label_width}}" + "".join(f"{cell(r):>{width}}" for r in results))
    lb = report.lower_bound
    lines.append("")
    lines.append(
        f"Lower bound on energy cost: {_money(lb.energy_cost)} {cur} ({lb.energy_kwh:,.1f} kWh) for the "
        f"{lb.jobs_counted:,} jobs every policy ran: {LOWER_BOUND_METHOD}"
    )
    above = ", ".join(f"{r.policy} {_pct(relative(r.cost.energy, lb.energy_cost))}" for r in results)
    lines.append(f"Energy cost above the bound: {above}")
    return "\n".join(lines)


def write_plot(report: SimulationReport, path: Path) -> None:
    """Cost and waiting time per policy, and cluster power over time (PNG, SVG or PDF by suffix)."""
    # Imported here: matplotlib takes a noticeable fraction of a second to load, and only --plot needs it.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    results = report.results
    names = [r.policy for r in results]
    cur = report.scenario.catalog.currency
    fig = plt.figure(figsize=(12, 8), constrained_layout=True)
    grid = fig.add_gridspec(2, 2)
    ax_cost = fig.add_subplot(grid[0, 0])
    ax_wait = fig.add_subplot(grid[0, 1])
    ax_power = fig.add_subplot(grid[1, :])
    bottom = [0.0] * len(results)
    for part, color in (("hardware", "#4c72b0"), ("energy", "#dd8452"), ("operations", "#55a868")):
        values = [getattr(r.cost, part) for r in results]
        ax_cost.bar(names, values, bottom=bottom, label=part, color=color)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax_cost.axhline(report.lower_bound.energy_cost, color="black", linestyle=":", label="energy lower bound")
    ax_cost.set_ylabel(f"cost ({cur})")
    ax_cost.set_title(f"Cost ({report.lifecycle.value})")
    ax_cost.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4)
    ax_cost.tick_params(axis="x", labelrotation=20)
    xs = range(len(results))
    ax_wait.bar([x - 0.2 for x in xs], [r.wait_mean_s for r in results], width=0.4, label="mean")
    ax_wait.bar([x + 0.2 for x in xs], [r.wait_p95_s for r in results], width=0.4, label="p95")
    ax_wait.set_xticks(list(xs), names, rotation=20)
    ax_wait.set_ylabel("waiting time (s)")
    ax_wait.set_title("Waiting time")
    ax_wait.legend(fontsize="small")
    for r in results:
        ax_power.step(r.power_t_s / 86400.0, r.power_watts / 1000.0, where="post", label=r.policy, linewidth=0.9)
    ax_power.set_xlabel("trace time (days)")
    ax_power.set_ylabel("cluster power (kW)")
    ax_power.set_title("Cluster power over time (time-weighted means)")
    ax_power.legend(fontsize="small", ncol=len(results))
    fig.savefig(path)
    plt.close(fig)
