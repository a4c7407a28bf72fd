"""Electricity tariffs: the price of a kWh as a step function of time, integrated exactly.

Three shapes cover what operators are billed by:

* ``FlatTariff``: one price.
* ``TimeOfUseTariff``: a daily schedule (optionally a different one on weekends) in a fixed UTC offset.
  DST shifts are not modelled; quote the schedule in the utility's standard time.
* ``HourlySeriesTariff``: a measured price series (e.g. day-ahead market prices per hour), optionally
  cyclic so a week of prices can drive a longer replay.

Energy cost over a window is ``Σ_segments P × ∫ price(t) dt``: exact across any number of tariff
boundaries, because power is piecewise constant and so is price.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.stepfunction import StepFunction
from lepton_core.units import JOULES_PER_KWH

SECONDS_PER_DAY = 86400.0
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
_FIRST_MONDAY_UTC = 4 * SECONDS_PER_DAY  # 1970-01-05 00:00 UTC was a Monday.


class Tariff(ABC):
    """Price per kWh over time, in ``currency``."""

    currency: str

    @property
    @abstractmethod
    def prices(self) -> StepFunction:
        """The price per kWh as a step function of Unix time (seconds)."""

    def price_per_kwh_at(self, t: float) -> float:
        return self.prices.value_at(t)

    def price_integral(self, t0: float, t1: float) -> float:
        """∫ price dt over [t0, t1], in currency·seconds per kWh."""
        return self.prices.integral(t0, t1)

    def energy_cost(self, t0: float, t1: float, power_watts: float) -> float:
        """Cost of drawing a constant ``power_watts`` over [t0, t1]."""
        if power_watts < 0.0:
            raise ValueError("power must not be negative")
        return power_watts * self.price_integral(t0, t1) / JOULES_PER_KWH

    def energy_cost_many(
        self, t0: NDArray[np.float64], t1: NDArray[np.float64], power_watts: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Vectorized :meth:`energy_cost`: one constant power per window."""
        integral: NDArray[np.float64] = power_watts * self.prices.integral_many(t0, t1) / JOULES_PER_KWH
        return integral

    def energy_cost_samples(self, times: Sequence[float], power_watts: Sequence[float], end: float) -> float:
        """Cost of piecewise-constant power samples, each held until the next (the last until ``end``)."""
        t = np.asarray(times, dtype=np.float64)
        p = np.asarray(power_watts, dtype=np.float64)
        if t.size == 0 or t.shape != p.shape:
            raise ValueError("need one power value per sample time, and at least one sample")
        ends = np.append(t[1:], end)
        if np.any(ends < t):
            raise ValueError("sample times must increase and end must not precede the last sample")
        return float(np.sum(self.energy_cost_many(t, ends, p)))

    def mean_price_per_kwh(self, t0: float, t1: float) -> float:
        return self.prices.mean(t0, t1)


def _check_price(price: float, what: str) -> float:
    if not np.isfinite(price):
        raise ValueError(f"{what} must be a finite number")
    return float(price)


@dataclass(frozen=True)
class FlatTariff(Tariff):
    price_per_kwh: float
    currency: str = "USD"
    _prices: StepFunction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_price(self.price_per_kwh, "price_per_kwh")
        f = StepFunction(np.array([0.0]), np.array([self.price_per_kwh]), period=SECONDS_PER_DAY)
        object.__setattr__(self, "_prices", f)

    @property
    def prices(self) -> StepFunction:
        return self._prices

    def price_integral(self, t0: float, t1: float) -> float:
        if t1 < t0:
            raise ValueError(f"window end {t1} is before its start {t0}")
        return self.price_per_kwh * (t1 - t0)


@dataclass(frozen=True)
class TimeOfUseTariff(Tariff):
    """Daily price periods: ``periods`` is a list of (start second of the local day, price per kWh).

    The first period must start at 0 (midnight). ``weekend`` (same shape) applies on Saturday and Sunday
    when given. Local time is UTC + ``utc_offset_hours``.
    """

    periods: tuple[tuple[float, float], ...]
    weekend: tuple[tuple[float, float], ...] | None = None
    utc_offset_hours: float = 0.0
    currency: str = "USD"
    _prices: StepFunction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        days: list[tuple[tuple[float, float], ...]] = [self.periods] * 5 + [self.weekend or self.periods] * 2
        for name, schedule in (("periods", self.periods), ("weekend", self.weekend)):
            if schedule is None:
                continue
            starts = [s for s, _ in schedule]
            if not schedule or starts[0] != 0.0:
                raise ValueError(f"{name}: the first period must start at 00:00")
            if any(b <= a for a, b in pairwise(starts)) or starts[-1] >= SECONDS_PER_DAY:
                raise ValueError(f"{name}: period starts must increase within one day")
            for _, price in schedule:
                _check_price(price, f"{name} price")
        base = _FIRST_MONDAY_UTC - self.utc_offset_hours * 3600.0
        bps: list[float] = []
        vals: list[float] = []
        for d, schedule in enumerate(days):
            for start, price in schedule:
                bps.append(base + d * SECONDS_PER_DAY + start)
                vals.append(price)
        f = StepFunction(np.array(bps), np.array(vals), period=SECONDS_PER_WEEK)
        object.__setattr__(self, "_prices", f)

    @property
    def prices(self) -> StepFunction:
        return self._prices


@dataclass(frozen=True)
class HourlySeriesTariff(Tariff):
    """Measured prices: ``prices_per_kwh[i]`` holds from ``times[i]`` until ``times[i + 1]``.

    The last price holds for one ``step_seconds``. With ``cyclic`` the series repeats, so a short series
    can price a long replay; otherwise asking outside the series is an error.
    """

    times: tuple[float, ...]
    prices_per_kwh: tuple[float, ...]
    currency: str = "USD"
    step_seconds: float = 3600.0
    cyclic: bool = False
    _prices: StepFunction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.times:
            raise ValueError("an hourly tariff needs at least one price")
        for p in self.prices_per_kwh:
            _check_price(p, "price_per_kwh")
        end = self.times[-1] + self.step_seconds
        t = np.asarray(self.times, dtype=np.float64)
        v = np.asarray(self.prices_per_kwh, dtype=np.float64)
        if self.cyclic:
            f = StepFunction(t, v, period=end - t[0])
        else:
            f = StepFunction(t, v, end=end)
        object.__setattr__(self, "_prices", f)

    @property
    def prices(self) -> StepFunction:
        return self._prices

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1] + self.step_seconds
