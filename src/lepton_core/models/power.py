"""Power as a function of utilization: P(u) per server platform, per GPU, per node.

* CPU platforms follow SPECpower_ssj2008: average wall power at active idle and at 10 %, 20 %, …, 100 %
  target load, joined by straight lines (``PowerCurve.specpower``). The published points are reproduced
  exactly.
* GPUs follow ``P(u) = idle + (max − idle) · u**exponent`` per GPU, with ``max`` and ``exponent``
  calibrated from measured data (``lepton_core.calibration``, documented in docs/models.md).
* A node draws ``(platform(u_cpu) + Σ_gpus gpu(u_gpu_i)) × PUE``: the PUE folds in the facility overhead
  (cooling, power distribution) that the meter upstream of the rack pays for.

Utilizations outside [0, 1] are clipped (over-commit cannot draw more than full load); NaN inputs are
rejected here, because the caller must decide what missing data means (see ``utilization``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

SPECPOWER_LOADS: tuple[float, ...] = tuple(i / 10 for i in range(11))
"""SPECpower's measurement points: active idle (0 %) and 10 % … 100 % target load."""


@dataclass(frozen=True)
class PowerCurve:
    """Piecewise-linear power curve through (utilization, watts) points, from u = 0 to u = 1."""

    utilization: tuple[float, ...]
    watts: tuple[float, ...]

    def __post_init__(self) -> None:
        u, w = self.utilization, self.watts
        if len(u) != len(w) or len(u) < 2:
            raise ValueError("a power curve needs at least two (utilization, watts) points of equal count")
        if u[0] != 0.0 or u[-1] != 1.0:
            raise ValueError("a power curve must start at utilization 0 and end at utilization 1")
        if any(b <= a for a, b in pairwise(u)):
            raise ValueError("power curve utilizations must be strictly increasing")
        if any(not np.isfinite(x) or x < 0.0 for x in w):
            raise ValueError("power curve watts must be finite and non-negative")
        if any(b < a for a, b in pairwise(w)):
            raise ValueError("power curve watts must not decrease as utilization rises")

    @classmethod
    def specpower(cls, active_idle_watts: float, load_watts: Sequence[float]) -> PowerCurve:
        """From SPECpower results: active idle, then the average power at 10 %, 20 %, …, 100 % load."""
        if len(load_watts) != 10:
            raise ValueError("SPECpower gives 10 load points (10 % … 100 %)")
        return cls(SPECPOWER_LOADS, (float(active_idle_watts), *map(float, load_watts)))

    @classmethod
    def linear(cls, idle_watts: float, max_watts: float) -> PowerCurve:
        return cls((0.0, 1.0), (float(idle_watts), float(max_watts)))

    @property
    def idle_watts(self) -> float:
        return self.watts[0]

    @property
    def max_watts(self) -> float:
        return self.watts[-1]

    def power_watts(self, utilization: float) -> float:
        if math.isnan(utilization):
            raise ValueError("utilization is NaN: decide what missing data means before asking for power")
        u = min(max(utilization, 0.0), 1.0)
        return float(np.interp(u, self.utilization, self.watts))

    def power_watts_array(self, utilization: NDArray[np.float64]) -> NDArray[np.float64]:
        u = np.clip(np.asarray(utilization, dtype=np.float64), 0.0, 1.0)
        return np.interp(u, self.utilization, self.watts)


@dataclass(frozen=True)
class GpuPowerModel:
    """One GPU: ``idle + (max − idle) · u**exponent``."""

    idle_watts: float
    max_watts: float
    exponent: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.idle_watts) and self.idle_watts >= 0.0):
            raise ValueError("GPU idle watts must be a non-negative number")
        if not (np.isfinite(self.max_watts) and self.max_watts >= self.idle_watts):
            raise ValueError("GPU max watts must be at least its idle watts")
        if not (np.isfinite(self.exponent) and self.exponent > 0.0):
            raise ValueError("GPU load-curve exponent must be positive")

    def power_watts(self, utilization: float) -> float:
        if math.isnan(utilization):
            raise ValueError("utilization is NaN: decide what missing data means before asking for power")
        u = min(max(utilization, 0.0), 1.0)
        return float(self.idle_watts + (self.max_watts - self.idle_watts) * u**self.exponent)


@dataclass(frozen=True)
class NodePowerModel:
    """A node's wall power: ``(platform(u_cpu) + Σ gpu(u_i)) × pue``."""

    platform: PowerCurve
    gpu: GpuPowerModel | None = None
    gpu_count: int = 0
    pue: float = 1.0

    def __post_init__(self) -> None:
        if self.gpu_count < 0:
            raise ValueError("GPU count must not be negative")
        if self.gpu_count > 0 and self.gpu is None:
            raise ValueError("a node with GPUs needs a GPU power model")
        if not (np.isfinite(self.pue) and self.pue >= 1.0):
            raise ValueError("PUE must be at least 1.0")

    def gpu_power_watts(self, gpu_utilization: float | Sequence[float]) -> float:
        """Power of all GPUs: one utilization for every GPU, or one per GPU."""
        if self.gpu is None or self.gpu_count == 0:
            return 0.0
        if isinstance(gpu_utilization, int | float):
            return self.gpu_count * self.gpu.power_watts(float(gpu_utilization))
        if len(gpu_utilization) != self.gpu_count:
            raise ValueError(f"expected {self.gpu_count} GPU utilizations, got {len(gpu_utilization)}")
        return sum(self.gpu.power_watts(u) for u in gpu_utilization)

    def power_watts(self, cpu_utilization: float, gpu_utilization: float | Sequence[float] = 0.0) -> float:
        return (self.platform.power_watts(cpu_utilization) + self.gpu_power_watts(gpu_utilization)) * self.pue

    @property
    def idle_watts(self) -> float:
        return self.power_watts(0.0, 0.0)

    @property
    def max_watts(self) -> float:
        return self.power_watts(1.0, 1.0)


class NodePowerTable:
    """Many nodes' power models as arrays, for one vectorized evaluation per tick.

    Platform curves are resampled onto the union of all their breakpoints. A piecewise-linear function
    evaluated on a superset of its own breakpoints and interpolated linearly is the same function, so
    this is exact, and it lets one ``searchsorted`` serve every node.
    """

    def __init__(self, models: Sequence[NodePowerModel]) -> None:
        if not models:
            raise ValueError("a power table needs at least one node")
        grid = sorted({u for m in models for u in m.platform.utilization})
        self.grid = np.asarray(grid, dtype=np.float64)
        # Distinct platform curves are few (one per profile): evaluate each once.
        curve_index: dict[PowerCurve, int] = {}
        rows: list[NDArray[np.float64]] = []
        idx = np.empty(len(models), dtype=np.intp)
        for n, m in enumerate(models):
            k = curve_index.get(m.platform)
            if k is None:
                k = len(rows)
                curve_index[m.platform] = k
                rows.append(m.platform.power_watts_array(self.grid))
            idx[n] = k
        self._curves = np.vstack(rows)
        self._curve_of_node = idx
        self.gpu_count = np.array([m.gpu_count for m in models], dtype=np.float64)
        self.gpu_idle_watts = np.array([m.gpu.idle_watts if m.gpu else 0.0 for m in models])
        self.gpu_max_watts = np.array([m.gpu.max_watts if m.gpu else 0.0 for m in models])
        self.gpu_exponent = np.array([m.gpu.exponent if m.gpu else 1.0 for m in models])
        self.pue = np.array([m.pue for m in models], dtype=np.float64)

    def __len__(self) -> int:
        return int(self.pue.size)

    def take(self, indices: NDArray[np.intp]) -> NodePowerTable:
        """The nodes at ``indices`` as a new table sharing the curves (scoring a subset of candidates)."""
        # Bypass __init__: the curves are already evaluated, only the per-node rows are selected.
        out = object.__new__(NodePowerTable)
        out.grid = self.grid
        out._curves = self._curves
        out._curve_of_node = self._curve_of_node[indices]
        out.gpu_count = self.gpu_count[indices]
        out.gpu_idle_watts = self.gpu_idle_watts[indices]
        out.gpu_max_watts = self.gpu_max_watts[indices]
        out.gpu_exponent = self.gpu_exponent[indices]
        out.pue = self.pue[indices]
        return out

    def platform_watts(self, cpu_utilization: NDArray[np.float64]) -> NDArray[np.float64]:
        u = np.clip(np.asarray(cpu_utilization, dtype=np.float64), 0.0, 1.0)
        if np.isnan(u).any():
            raise ValueError("CPU utilization contains NaN: fill missing data before asking for power")
        grid = self.grid
        j = np.clip(np.searchsorted(grid, u, side="right") - 1, 0, grid.size - 2)
        left = grid[j]
        frac = (u - left) / (grid[j + 1] - left)
        w0 = self._curves[self._curve_of_node, j]
        w1 = self._curves[self._curve_of_node, j + 1]
        out: NDArray[np.float64] = w0 + frac * (w1 - w0)
        return out

    def gpu_watts(self, gpu_utilization: NDArray[np.float64]) -> NDArray[np.float64]:
        """All GPUs of each node at the node's mean GPU utilization."""
        u = np.clip(np.asarray(gpu_utilization, dtype=np.float64), 0.0, 1.0)
        if np.isnan(u).any():
            raise ValueError("GPU utilization contains NaN: fill missing data before asking for power")
        dynamic = (self.gpu_max_watts - self.gpu_idle_watts) * np.power(u, self.gpu_exponent)
        out: NDArray[np.float64] = self.gpu_count * (self.gpu_idle_watts + dynamic)
        return out

    def power_watts(
        self, cpu_utilization: NDArray[np.float64], gpu_utilization: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Wall power of every node, PUE included."""
        out: NDArray[np.float64] = (self.platform_watts(cpu_utilization) + self.gpu_watts(gpu_utilization)) * self.pue
        return out
