"""Grid carbon intensity as a step function of time (gCO₂eq per kWh), integrated exactly like a tariff.

Neighbours: ``lepton_simulator.scenario`` loads it (``--carbon ZONE|FILE``); ``lepton_simulator.accounting``
multiplies it with each node's piecewise-constant power. The file format is the one of
``../shared/data/grid-hourly`` (Electricity Maps exports): a ``Datetime (UTC)`` column and a
``Carbon Intensity gCO₂eq/kWh (LCA)`` column (life-cycle intensity, Electricity Maps' headline figure);
files with only the ``(direct)`` column, or a single ``… gCO2eq/kWh`` column, work too. The series repeats
(cyclic) so a week or a year of intensity can drive a longer replay.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.stepfunction import StepFunction
from lepton_core.tariffs import parse_timestamp
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


def load_carbon_csv(path: Path) -> CarbonSeries:
    """Read a carbon-intensity series; errors name the file and line."""
    try:
        f = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read carbon series ({exc.strerror or exc})") from None
    with f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "Datetime (UTC)" not in fields:
            raise ValueError(f"{path}:1: no 'Datetime (UTC)' column")
        candidates = {m["basis"] or "": c for c in fields if (m := _COLUMN.match(c))}
        basis = next((b for b in ("LCA", "direct", "") if b in candidates), None)
        if basis is None:
            raise ValueError(f"{path}:1: no 'Carbon Intensity gCO₂eq/kWh (LCA)'-style column")
        column = candidates[basis]
        times: list[float] = []
        values: list[float] = []
        for lineno, row in enumerate(reader, start=2):
            try:
                t = parse_timestamp(row["Datetime (UTC)"])
                v = float(row[column])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: bad row ({exc})") from None
            if not (np.isfinite(v) and v >= 0.0):
                raise ValueError(f"{path}:{lineno}: {column}: must be a non-negative number (got {v!r})")
            if times and t <= times[-1]:
                raise ValueError(f"{path}:{lineno}: Datetime (UTC): timestamps must increase")
            times.append(t)
            values.append(v)
    if not times:
        raise ValueError(f"{path}: no carbon intensities")
    period = times[-1] + _STEP_SECONDS - times[0]
    fn = StepFunction(np.asarray(times), np.asarray(values), period=period)
    return CarbonSeries(intensity=fn, source=str(path), basis=basis or "unspecified")


def resolve_carbon_zone(folder: Path, zone: str, year: int | None = None) -> Path:
    """``carbon_<ZONE>_<YEAR>_hourly.csv`` in a ``grid-hourly`` folder (latest year when none given)."""
    matches = sorted(folder.glob(f"carbon_{zone}_{year if year is not None else '*'}_hourly.csv"))
    if not matches:
        found = sorted({p.name.split("_")[1] for p in folder.glob("carbon_*_hourly.csv")})
        raise ValueError(f"no carbon file for zone {zone!r} in {folder} (zones there: {', '.join(found) or 'none'})")
    return matches[-1]
