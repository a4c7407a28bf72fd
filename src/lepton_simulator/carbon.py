"""Grid carbon intensity as a step function of time (gCO₂eq per kWh), integrated exactly like a tariff.

Neighbours: ``lepton_simulator.scenario`` loads it (``--carbon ZONE|FILE``); ``lepton_simulator.accounting``
multiplies it with each node's piecewise-constant power. The file format is the one of
``../shared/data/grid-hourly`` (Electricity Maps exports): a ``Datetime (UTC)`` column and a
``Carbon Intensity gCO₂eq/kWh (LCA)`` column (life-cycle intensity, Electricity Maps' headline figure);
files with only the ``(direct)`` column, or a single ``… gCO2eq/kWh`` column, work too. The series repeats
(cyclic) so a week or a year of intensity can drive a longer replay. Files are read and found the way
price files are (``lepton_core.tariffs.read_hourly_csv``, ``find_zone_file``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.stepfunction import StepFunction
from lepton_core.tariffs import find_zone_file, read_hourly_csv
from lepton_core.units import JOULES_PER_KWH

_COLUMN = re.compile(r"^Carbon Intensity gCO[₂2]eq/kWh(?: \((?P<basis>LCA|direct)\))?$")
_STEP_SECONDS = 3600.0
GRAMS_PER_KG = 1000.0


@dataclass(frozen=True)
class CarbonSeries:
    """Hourly carbon intensity, cyclic."""

    intensity: StepFunction
    """gCO₂eq per kWh as a function of Unix time."""
    source: str
    basis: str
    """``LCA`` (life cycle) or ``direct`` (combustion only)."""

    def kg_for_power(
        self, t0: NDArray[np.float64], t1: NDArray[np.float64], power_watts: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """kg CO₂eq of drawing ``power_watts`` over each [t0, t1] (exact: both factors are step functions)."""
        grams_seconds_per_kwh = self.intensity.integral_many(t0, t1)
        out: NDArray[np.float64] = power_watts * grams_seconds_per_kwh / JOULES_PER_KWH / GRAMS_PER_KG
        return out


def _carbon_column(fields: Sequence[str]) -> str | None:
    """The life-cycle column where there is one, else the direct one, else an unqualified one."""
    candidates = {m["basis"] or "": c for c in fields if (m := _COLUMN.match(c))}
    return next((candidates[b] for b in ("LCA", "direct", "") if b in candidates), None)


def load_carbon_csv(path: Path) -> CarbonSeries:
    """Read a carbon-intensity series; errors name the file and line."""
    try:
        series = read_hourly_csv(path, _carbon_column, "Carbon Intensity gCO₂eq/kWh (LCA)", non_negative=True)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read carbon series ({exc.strerror or exc})") from None
    m = _COLUMN.match(series.column)
    assert m is not None
    period = series.times[-1] + _STEP_SECONDS - series.times[0]
    fn = StepFunction(np.asarray(series.times), np.asarray(series.values), period=period)
    return CarbonSeries(intensity=fn, source=str(path), basis=m["basis"] or "unspecified")


def resolve_carbon_zone(folder: Path, zone: str, year: int | None = None) -> Path:
    """``carbon_<ZONE>_<YEAR>_hourly.csv`` in a ``grid-hourly`` folder (latest year when none given)."""
    return find_zone_file(folder, "carbon", "hourly.csv", zone, year)
