"""Reading tariff data files: hourly price series in the ``grid-hourly`` format.

The format (``Datetime (UTC)``, …, ``Price (USD/MWh)``) is what ``../shared/data/grid-hourly`` ships;
any CSV with a ``Datetime (UTC)`` column and one ``Price (<CUR>/MWh)`` or ``Price (<CUR>/kWh)`` column
works. Timestamps are ISO-8601; a naive one is taken as UTC. Prices may be negative (markets do that).
A bundled week of CAISO 2023 prices lets everything run with no data directory at all.

``read_hourly_csv`` and ``find_zone_file`` read any column of a ``grid-hourly`` file and find a zone's
file; the simulator's carbon-intensity series (``lepton_simulator.carbon``) is read through them too.
Neighbours: ``lepton_core.profiles`` (``hourly``/``zone`` tariffs), ``lepton_simulator.scenario``.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from lepton_core.models.tariff import HourlySeriesTariff

_PRICE_COLUMN = re.compile(r"^Price \((?P<cur>[A-Z]{3})/(?P<unit>MWh|kWh)\)$")
TIME_COLUMN = "Datetime (UTC)"


def bundled_data_dir() -> Path:
    """The package's own data folder (shipped samples)."""
    return Path(str(resources.files("lepton_core").joinpath("data")))


@dataclass(frozen=True, slots=True)
class TariffSource:
    """Where tariff files are looked up."""

    base_dir: Path | None = None
    """Relative ``hourly.file`` paths resolve against this (the profile file's folder)."""
    data_dir: Path | None = None
    """A ``grid-hourly`` folder for ``zone`` tariffs; the bundled sample folder when None."""

    def resolve_file(self, name: str) -> Path:
        p = Path(name)
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p


def parse_timestamp(text: str) -> float:
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(frozen=True, slots=True)
class HourlyColumn:
    """One value column of a ``grid-hourly`` file, with its times."""

    column: str
    """The column's header, e.g. ``Price (USD/MWh)``."""
    times: tuple[float, ...]
    """Unix seconds, strictly increasing."""
    values: tuple[float, ...]


def read_hourly_csv(
    path: Path, pick: Callable[[Sequence[str]], str | None], wanted: str, *, non_negative: bool = False
) -> HourlyColumn:
    """The ``Datetime (UTC)`` column and the value column ``pick`` chooses from the header (``wanted``
    describes it when there is none); ``non_negative`` refuses values below 0 (and NaN). Errors are
    ValueErrors naming the file and line; an unreadable file is the OSError."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if TIME_COLUMN not in fields:
            raise ValueError(f"{path}:1: no {TIME_COLUMN!r} column")
        column = pick(fields)
        if column is None:
            raise ValueError(f"{path}:1: no {wanted!r}-style column")
        times: list[float] = []
        values: list[float] = []
        for lineno, row in enumerate(reader, start=2):
            try:
                t = parse_timestamp(row[TIME_COLUMN])
                v = float(row[column])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: bad row ({exc})") from None
            if non_negative and not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{path}:{lineno}: {column}: must be a non-negative number (got {v!r})")
            if times and t <= times[-1]:
                raise ValueError(f"{path}:{lineno}: {TIME_COLUMN}: timestamps must increase")
            times.append(t)
            values.append(v)
    if not times:
        raise ValueError(f"{path}: no {column!r} values")
    return HourlyColumn(column, tuple(times), tuple(values))


def _price_column(fields: Sequence[str]) -> str | None:
    return next((c for c in fields if _PRICE_COLUMN.match(c)), None)


def load_hourly_price_csv(path: Path, cyclic: bool = False) -> HourlySeriesTariff:
    """Load a price series; errors name the file and line."""
    series = read_hourly_csv(path, _price_column, "Price (USD/MWh)")
    m = _PRICE_COLUMN.match(series.column)
    assert m is not None
    per_kwh = 1e-3 if m["unit"] == "MWh" else 1.0
    return HourlySeriesTariff(series.times, tuple(v * per_kwh for v in series.values), currency=m["cur"], cyclic=cyclic)


def find_zone_file(folder: Path, kind: str, suffix: str, zone: str, year: int | None = None) -> Path:
    """``<kind>_<ZONE>_<YEAR>_<suffix>`` in a ``grid-hourly`` folder (the latest year when none is given)."""
    matches = sorted(folder.glob(f"{kind}_{zone}_{year if year is not None else '*'}_{suffix}"))
    if not matches:
        found = sorted({p.name.split("_")[1] for p in folder.glob(f"{kind}_*_{suffix}")})
        raise ValueError(f"no {kind} file for zone {zone!r} in {folder} (zones there: {', '.join(found) or 'none'})")
    return matches[-1]


def resolve_zone_file(source: TariffSource, zone: str, year: int | None = None) -> Path:
    """``price_<ZONE>_<YEAR>_usd_mwh.csv`` in the data folder (latest year when none is given)."""
    return find_zone_file(source.data_dir or bundled_data_dir(), "price", "usd_mwh.csv", zone, year)
