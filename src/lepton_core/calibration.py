"""Calibrating the GPU load curve from measured power (Zeus traces).

The Zeus power traces (``zeus-gpu-power/summary_power_{gpu}.csv``) give, for each training workload
(dataset, network, batch size, optimizer), the average GPU power and the time per epoch under a sweep of
power limits. Within one workload, lowering the limit slows the GPU down, so

    u = fastest time per epoch / time per epoch        (delivered work relative to the workload's peak)

is the GPU's load in the founding document's sense (actual / maximum), and the power drawn at that load
traces the load curve. We fit

    P(u) = idle + (P_top − idle) · u**k

per workload (``P_top`` = its power at the fastest setting), sharing one exponent ``k`` per GPU model,
by least squares in watts over a grid of ``k``. The level ``P_top`` varies a lot between workloads
(a small network does not load a big GPU), so the default ``max_watts`` of a profile is the median
``P_top / TDP`` times the TDP, and the spread is reported as the level error. This module is pure
(numbers in, numbers out); ``load_zeus_power_csv`` reads the file.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class ZeusPowerRow:
    workload: tuple[str, str, str, str]
    power_limit_watts: float
    time_per_epoch_s: float
    average_power_watts: float


@dataclass(frozen=True, slots=True)
class GpuCurveFit:
    exponent: float
    """Fitted k of P(u) = idle + (P_top − idle)·u**k."""
    shape_rmse_watts: float
    """RMS error of the fitted curve in watts, each workload at its own measured P_top."""
    shape_mape: float
    """Mean absolute percentage error of the same."""
    median_top_fraction_of_tdp: float
    """Median over workloads of P_top / TDP: the default max_watts is this × TDP."""
    level_mape: float
    """Mean absolute percentage error of using the median P_top for every workload."""
    workloads: int
    points: int


def load_zeus_power_csv(path: Path) -> list[ZeusPowerRow]:
    with path.open(newline="") as f:
        return [
            ZeusPowerRow(
                workload=(r["dataset"], r["network"], r["batch_size"], r["optimizer"]),
                power_limit_watts=float(r["power_limit"]),
                time_per_epoch_s=float(r["time_per_epoch"]),
                average_power_watts=float(r["average_power"]),
            )
            for r in csv.DictReader(f)
        ]


def fit_gpu_curve(rows: Iterable[ZeusPowerRow], idle_watts: float, tdp_watts: float) -> GpuCurveFit:
    by_workload: dict[tuple[str, str, str, str], list[ZeusPowerRow]] = defaultdict(list)
    for row in rows:
        by_workload[row.workload].append(row)
    if not by_workload:
        raise ValueError("no measurements to fit")
    loads: list[float] = []
    powers: list[float] = []
    tops: list[float] = []
    top_per_point: list[float] = []
    for runs in by_workload.values():
        fastest = min(r.time_per_epoch_s for r in runs)
        top = max(r.average_power_watts for r in runs)
        tops.append(top)
        for r in runs:
            loads.append(fastest / r.time_per_epoch_s)
            powers.append(r.average_power_watts)
            top_per_point.append(top)
    u = np.asarray(loads)
    p = np.asarray(powers)
    top_arr = np.asarray(top_per_point)
    best_k, best_rmse = 1.0, np.inf
    for k in np.arange(0.25, 6.0001, 0.05):
        pred = idle_watts + (top_arr - idle_watts) * u**k
        rmse = float(np.sqrt(np.mean((pred - p) ** 2)))
        if rmse < best_rmse:
            best_k, best_rmse = float(k), rmse
    pred = idle_watts + (top_arr - idle_watts) * u**best_k
    tops_arr = np.asarray(tops)
    median_top = float(np.median(tops_arr))
    return GpuCurveFit(
        exponent=round(best_k, 2),
        shape_rmse_watts=best_rmse,
        shape_mape=float(np.mean(np.abs(pred - p) / p)),
        median_top_fraction_of_tdp=median_top / tdp_watts,
        level_mape=float(np.mean(np.abs(tops_arr - median_top) / tops_arr)),
        workloads=len(tops),
        points=int(u.size),
    )
