"""Piecewise-constant functions of time and their exact integrals.

Both measured power (a sample holds until the next one) and electricity tariffs (a price holds for its
hour or its time-of-use period) are step functions, so every energy and energy-cost integral in Lepton
reduces to sums of value × duration over the pieces. Integrals are computed from a prefix sum, so a
window that crosses any number of boundaries costs O(log n) and is exact up to floating-point rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class StepFunction:
    """f(t) = values[i] for breakpoints[i] <= t < breakpoints[i + 1].

    The last value holds until ``end`` (``+inf`` by default). With ``period`` set, the pattern defined
    on ``[breakpoints[0], breakpoints[0] + period)`` repeats forever in both directions (daily or weekly
    time-of-use schedules, a cyclic price series); ``end`` is then ignored.
    """

    breakpoints: NDArray[np.float64]
    values: NDArray[np.float64]
    end: float = math.inf
    period: float | None = None
    _cumulative: NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        b = np.ascontiguousarray(self.breakpoints, dtype=np.float64)
        v = np.ascontiguousarray(self.values, dtype=np.float64)
        if b.ndim != 1 or v.shape != b.shape or b.size == 0:
            raise ValueError("breakpoints and values must be non-empty 1-D arrays of the same length")
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(v))):
            raise ValueError("breakpoints and values must be finite numbers")
        if np.any(np.diff(b) <= 0.0):
            raise ValueError("breakpoints must be strictly increasing")
        if self.period is not None:
            if not self.period > 0.0 or b[-1] >= b[0] + self.period:
                raise ValueError("period must be positive and longer than the span of the breakpoints")
            last_edge = b[0] + self.period
        else:
            if not self.end > b[-1]:
                raise ValueError("end must be after the last breakpoint")
            last_edge = self.end
        object.__setattr__(self, "breakpoints", b)
        object.__setattr__(self, "values", v)
        widths = np.diff(np.append(b, last_edge))
        cumulative = np.zeros(b.size + 1)
        if math.isfinite(last_edge):
            np.cumsum(widths * v, out=cumulative[1:])
        else:
            np.cumsum(widths[:-1] * v[:-1], out=cumulative[1:-1])
            cumulative[-1] = math.inf
        object.__setattr__(self, "_cumulative", cumulative)

    @classmethod
    def from_samples(
        cls,
        times: Sequence[float] | NDArray[np.float64],
        values: Sequence[float] | NDArray[np.float64],
        end: float = math.inf,
    ) -> StepFunction:
        return cls(np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64), end=end)

    @property
    def start(self) -> float:
        return float(self.breakpoints[0])

    def _check_domain(self, t: NDArray[np.float64]) -> None:
        if self.period is not None:
            return
        if np.any(t < self.breakpoints[0]) or np.any(t > self.end):
            lo, hi = float(self.breakpoints[0]), self.end
            raise ValueError(f"time outside the function's domain [{lo}, {hi}]")

    def _antiderivative(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """F(t) = ∫ f from breakpoints[0] to t (negative before it for periodic functions)."""
        b = self.breakpoints
        if self.period is not None:
            cycles = np.floor((t - b[0]) / self.period)
            local = t - cycles * self.period
            # Rounding can put `local` a hair outside one period; clamp into it.
            local = np.clip(local, b[0], b[0] + self.period)
            out: NDArray[np.float64] = cycles * self._cumulative[-1] + self._antiderivative_local(local)
            return out
        return self._antiderivative_local(t)

    def _antiderivative_local(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        b = self.breakpoints
        i = np.searchsorted(b, t, side="right") - 1
        i = np.clip(i, 0, b.size - 1)
        out: NDArray[np.float64] = self._cumulative[i] + self.values[i] * (t - b[i])
        return out

    def integral(self, t0: float, t1: float) -> float:
        """∫_{t0}^{t1} f(t) dt (t0 <= t1)."""
        if t1 < t0:
            raise ValueError(f"window end {t1} is before its start {t0}")
        if t1 == t0:
            return 0.0
        return float(self.integral_many(np.array([t0]), np.array([t1]))[0])

    def integral_many(self, t0: NDArray[np.float64], t1: NDArray[np.float64]) -> NDArray[np.float64]:
        """Vectorized :meth:`integral` over many windows."""
        t0 = np.asarray(t0, dtype=np.float64)
        t1 = np.asarray(t1, dtype=np.float64)
        if np.any(t1 < t0):
            raise ValueError("a window ends before it starts")
        self._check_domain(t0)
        self._check_domain(t1)
        out: NDArray[np.float64] = self._antiderivative(t1) - self._antiderivative(t0)
        return np.where(t1 == t0, 0.0, out)

    def value_at(self, t: float) -> float:
        """f(t)."""
        arr = np.array([t], dtype=np.float64)
        self._check_domain(arr)
        b = self.breakpoints
        if self.period is not None:
            arr = b[0] + np.mod(arr - b[0], self.period)
        i = int(np.clip(np.searchsorted(b, arr, side="right")[0] - 1, 0, b.size - 1))
        return float(self.values[i])

    def mean(self, t0: float, t1: float) -> float:
        """Time-weighted mean over [t0, t1]."""
        if t1 <= t0:
            return self.value_at(t0)
        return self.integral(t0, t1) / (t1 - t0)
