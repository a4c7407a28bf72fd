"""Utilization: how busy a node is, per resource.

The founding document's definition is *utilization = actual / maximum*. Lepton uses it twice:

* **allocation** = requested / allocatable (what the scheduler has promised away);
* **usage** = measured / capacity (what the hardware is actually doing).

Both are reported in [0, 1]. Two edge cases are explicit rather than silently wrong:

* **over-commit** (actual > maximum: limits above allocatable, burstable pods, a counter glitch): the value
  is clipped to 1.0 and ``overcommitted`` is set, so callers can tell "full" from "over-full";
* **missing data** (actual unknown or NaN, maximum unknown, zero or negative, or a negative actual): the
  value is ``None`` (``NaN`` in the vectorized form). Missing is never reported as 0 % busy, because an
  idle-looking node would then attract work; scoring treats missing as "unknown" (see ``scoring``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class Resource(StrEnum):
    """Resource names exactly as Kubernetes spells them."""

    CPU = "cpu"
    MEMORY = "memory"
    GPU = "nvidia.com/gpu"


@dataclass(frozen=True, slots=True)
class Ratio:
    """actual / maximum, clipped into [0, 1], with the raw quotient kept for over-commit reporting."""

    value: float | None
    """The ratio in [0, 1]; ``None`` when data is missing."""
    raw: float | None
    """The unclipped quotient (may exceed 1 when over-committed); ``None`` when data is missing."""

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def overcommitted(self) -> bool:
        return self.raw is not None and self.raw > 1.0


MISSING = Ratio(value=None, raw=None)


def _is_bad(x: float | None) -> bool:
    return x is None or math.isnan(x) or math.isinf(x)


def ratio(actual: float | None, maximum: float | None) -> Ratio:
    """actual / maximum with the missing-data and over-commit rules of this module."""
    if _is_bad(actual) or _is_bad(maximum):
        return MISSING
    assert actual is not None and maximum is not None
    if maximum <= 0.0 or actual < 0.0:
        return MISSING
    raw = actual / maximum
    return Ratio(value=min(raw, 1.0), raw=raw)


def allocation(requested: float | None, allocatable: float | None) -> Ratio:
    """Allocation = requested / allocatable."""
    return ratio(requested, allocatable)


def usage(measured: float | None, capacity: float | None) -> Ratio:
    """Usage = measured / capacity."""
    return ratio(measured, capacity)


def aggregate_ratio(pairs: Iterable[tuple[float | None, float | None]]) -> Ratio:
    """Σ actual / Σ maximum over the pairs that have data (e.g. a cluster's utilization from its nodes).

    Pairs with missing data are left out of both sums; if none has data the result is missing.
    """
    total_actual = 0.0
    total_max = 0.0
    seen = False
    for actual, maximum in pairs:
        one = ratio(actual, maximum)
        if one.missing:
            continue
        assert actual is not None and maximum is not None
        total_actual += actual
        total_max += maximum
        seen = True
    return ratio(total_actual, total_max) if seen else MISSING


def ratio_array(
    actual: NDArray[np.float64], maximum: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Vectorized :func:`ratio`: returns (values in [0, 1] with NaN where missing, over-commit mask)."""
    actual = np.asarray(actual, dtype=np.float64)
    maximum = np.asarray(maximum, dtype=np.float64)
    valid = np.isfinite(actual) & np.isfinite(maximum) & (maximum > 0.0) & (actual >= 0.0)
    raw = np.full(np.broadcast(actual, maximum).shape, np.nan)
    with np.errstate(over="ignore"):  # a ratio too large for a float is over-commit like any ratio > 1
        np.divide(actual, maximum, out=raw, where=valid)
    over = valid & (raw > 1.0)
    return np.where(over, 1.0, raw), over
