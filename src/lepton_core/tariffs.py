"""Reading tariff data files: hourly price series in the ``grid-hourly`` format.

The format (``Datetime (UTC)``, …, ``Price (USD/MWh)``) is what ``../shared/data/grid-hourly`` ships;
any CSV with a ``Datetime (UTC)`` column and one ``Price (<CUR>/MWh)`` or ``Price (<CUR>/kWh)`` column
works. Timestamps are ISO-8601; a naive one is taken as UTC. Prices may be negative (markets do that).
A bundled week of CAISO 2023 prices lets everything run with no data directory at all.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from lepton_core.models.tariff import HourlySeriesTariff

_PRICE_COLUMN = re.compile(r"^Price \((?P<cur>[A-Z]{3})/(?P<unit>MWh|kWh)\)$")


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


def load_hourly_price_csv(path: Path, cyclic: bool = False) -> HourlySeriesTariff:
    """Load a price series; errors name the file and line."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "Datetime (UTC)" not in fields:
            raise ValueError(f"{path}: no 'Datetime (UTC)' column")
        price_col = next((c for c in fields if _PRICE_COLUMN.match(c)), None)
        if price_col is None:
            raise ValueError(f"{path}: no 'Price (USD/MWh)'-style column")
        m = _PRICE_COLUMN.match(price_col)
        assert m is not None
        per_kwh_factor = 1e-3 if m["unit"] == "MWh" else 1.0
        times: list[float] = []
        prices: list[float] = []
        for lineno, row in enumerate(reader, start=2):
            try:
                t = parse_timestamp(row["Datetime (UTC)"])
                price = float(row[price_col]) * per_kwh_factor
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: bad row ({exc})") from exc
            if times and t <= times[-1]:
                raise ValueError(f"{path}:{lineno}: timestamps must increase")
            times.append(t)
            prices.append(price)
    if not times:
        raise ValueError(f"{path}: no prices")
    return HourlySeriesTariff(tuple(times), tuple(prices), currency=m["cur"], cyclic=cyclic)


def resolve_zone_file(source: TariffSource, zone: str, year: int | None = None) -> Path:
    """``price_<ZONE>_<YEAR>_usd_mwh.csv`` in the data folder (latest year when none is given)."""
    folder = source.data_dir or bundled_data_dir()
    pattern = f"price_{zone}_{year if year is not None else '*'}_usd_mwh.csv"
    matches = sorted(folder.glob(pattern))
    if not matches:
        found = sorted({p.name.split("_")[1] for p in folder.glob("price_*_usd_mwh.csv")})
        raise ValueError(f"no price file for zone {zone!r} in {folder} (zones there: {', '.join(found) or 'none'})")
    return matches[-1]
