"""Everything a replay needs besides the policy: trace, node costs, tariffs, carbon and calendar time.

Neighbours: ``lepton_simulator.readers`` reads traces; ``lepton_core.profiles`` matches each node to a
cost profile by its labels (the same profiles the extender and operator use); ``lepton_core.tariffs``
reads price series; ``lepton_simulator.carbon`` reads carbon series. ``lepton_simulator.engine`` replays
a ``Scenario``; ``lepton_simulator.cli`` builds one from the command line.

Where data comes from:

* ``--data-dir DIR`` (a folder holding ``alibaba-openb-2023/`` and ``grid-hourly/``), else ``../shared/data``
  next to the working directory or next to this checkout, if it exists (``--data-dir none``: never).
  Without one, only the embedded sample and the bundled one-week CAISO tariff and carbon series
  (``lepton_core/data``) are available.
* Tariff: a zone name (``US-CAL-CISO``, ``US-CAL-CISO:2022``) resolves to ``grid-hourly/price_<ZONE>_<YEAR>
  _usd_mwh.csv`` in the data folder, else to the bundled week; a path reads that price file; ``flat:0.12``
  is a flat price per kWh; ``profile`` keeps each cost profile's own tariff. Series are cyclic, so a week
  or a year of prices can price a replay of any length.
* Trace time 0 is mapped onto ``--start`` (ISO-8601), by default the first hour of the price series.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.cost import HardwareAmortization, OperationsCost
from lepton_core.models.power import NodePowerModel, NodePowerTable
from lepton_core.models.tariff import FlatTariff, HourlySeriesTariff, Tariff
from lepton_core.profiles import GPU_MODEL_LABEL, CostProfile, ProfileError, ProfileSet, load_profile_set
from lepton_core.tariffs import (
    TariffSource,
    bundled_data_dir,
    load_hourly_price_csv,
    parse_timestamp,
    resolve_zone_file,
)
from lepton_simulator.carbon import CarbonSeries, load_carbon_csv, resolve_carbon_zone
from lepton_simulator.readers import parse_openb_nodes, parse_openb_pods, parse_text, read_generic, read_openb
from lepton_simulator.trace import NODE_CLASS_LABEL, NodeSpec, Trace, TraceError

DEFAULT_ZONE = "US-CAL-CISO"
OPENB_FOLDER = "alibaba-openb-2023"
GRID_FOLDER = "grid-hourly"
SAMPLE_PODS = "openb_sample_pods.csv"
SAMPLE_NODES = "openb_sample_nodes.csv"
_FALLBACK_START = datetime(2023, 1, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True, eq=False)
class NodeCatalog:
    """Per node: its cost profile and the model objects built from it (index = node index)."""

    specs: tuple[NodeSpec, ...]
    profiles: tuple[CostProfile, ...]
    """Each node's profile, with the replay's tariff already substituted when one was chosen."""
    power_models: tuple[NodePowerModel, ...]
    power: NodePowerTable
    """The same models as arrays, for vectorized scoring."""
    hardware: tuple[HardwareAmortization, ...]
    operations: tuple[OperationsCost, ...]
    tariffs: tuple[Tariff, ...]
    tariff_index: NDArray[np.intp]
    """tariffs[tariff_index[i]] prices node i."""
    currency: str

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def gpu_counts(self) -> NDArray[np.int64]:
        return np.array([s.gpu for s in self.specs], dtype=np.int64)


def build_catalog(
    nodes: tuple[NodeSpec, ...], profiles: ProfileSet, tariff: Tariff | None
) -> tuple[NodeCatalog, list[str]]:
    """Match every node to a profile; unknown GPU models fall back to the default profile (one warning each)."""
    unmatched: Counter[str] = Counter()
    gpu_less: Counter[str] = Counter()
    chosen: list[CostProfile] = []
    by_id: dict[int, CostProfile] = {}

    def with_tariff(p: CostProfile) -> CostProfile:
        if tariff is None:
            return p
        hit = by_id.get(id(p))
        if hit is None:
            hit = dataclasses.replace(p, tariff=tariff)
            by_id[id(p)] = hit
        return hit

    models: list[NodePowerModel] = []
    cache: dict[tuple[int, int], NodePowerModel] = {}
    for node in nodes:
        match = profiles.resolve(node.labels)
        profile = match.profile
        if not match.matched:
            what = node.labels.get(GPU_MODEL_LABEL) or node.labels.get(NODE_CLASS_LABEL) or "no labels"
            unmatched[f"{GPU_MODEL_LABEL if GPU_MODEL_LABEL in node.labels else 'node'} {what!r}"] += 1
        elif node.gpu > 0 and profile.gpu is None:
            gpu_less[profile.name] += 1
            profile = profiles.default
        key = (id(profile), node.gpu)
        model = cache.get(key)
        if model is None:
            try:
                model = profile.power_model(node.gpu)
            except ProfileError as exc:
                raise ProfileError(f"node {node.name}: {exc}") from exc
            cache[key] = model
        models.append(model)
        chosen.append(with_tariff(profile))
    warnings = [
        f"no cost profile matches {what} ({count} node{'s' if count != 1 else ''}); "
        f"using the default profile {profiles.default.name!r}"
        for what, count in sorted(unmatched.items())
    ] + [
        f"cost profile {name!r} has no GPU model but matches {count} node(s) with GPUs; "
        f"using the default profile {profiles.default.name!r} for them"
        for name, count in sorted(gpu_less.items())
    ]
    tariffs: list[Tariff] = []
    tariff_ids: dict[int, int] = {}
    index = np.empty(len(nodes), dtype=np.intp)
    for i, p in enumerate(chosen):
        t = tariff_ids.setdefault(id(p.tariff), len(tariffs))
        if t == len(tariffs):
            tariffs.append(p.tariff)
        index[i] = t
    catalog = NodeCatalog(
        specs=nodes,
        profiles=tuple(chosen),
        power_models=tuple(models),
        power=NodePowerTable(models),
        hardware=tuple(p.hardware_for(n.gpu) for p, n in zip(chosen, nodes, strict=True)),
        operations=tuple(p.operations for p in chosen),
        tariffs=tuple(tariffs),
        tariff_index=index,
        currency=profiles.currency,
    )
    return catalog, warnings


@dataclass(frozen=True, eq=False)
class Scenario:
    trace: Trace
    catalog: NodeCatalog
    start_epoch_s: float
    """Calendar time (Unix seconds) of trace time 0."""
    carbon: CarbonSeries | None
    tariff_description: str
    warnings: tuple[str, ...] = ()

    def absolute(self, trace_seconds: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = trace_seconds + self.start_epoch_s
        return out


@dataclass(frozen=True, slots=True)
class ScenarioOptions:
    """What the command line asked for (``None``: the default described in the module docstring)."""

    trace: str | None = None
    """``sample`` (default) or ``openb[:VARIANT]``; ignored when ``jobs``/``nodes`` are given."""
    jobs: Path | None = None
    nodes: Path | None = None
    profiles: Path | None = None
    tariff: str | None = None
    carbon: str | None = None
    start: str | None = None
    data_dir: Path | None = None
    limit: int | None = None


def find_data_dir(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The shared data folder: ``explicit`` (must exist), else ``../shared/data`` if present.

    ``explicit`` = ``none`` means no data folder: only the embedded sample and the bundled week.
    """
    if explicit is not None and str(explicit) == "none":
        return None
    if explicit is not None:
        if not explicit.is_dir():
            raise ValueError(f"--data-dir: no such folder: {explicit}")
        return explicit
    here = Path(__file__).resolve()
    checkout = here.parents[2]  # src/lepton_simulator/scenario.py -> the checkout root
    for candidate in ((cwd or Path.cwd()) / ".." / "shared" / "data", checkout.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def sample_dir() -> Path:
    """The embedded openb slice (see ``data/ATTRIBUTION.md``)."""
    return Path(str(resources.files("lepton_simulator").joinpath("data")))


def load_sample() -> Trace:
    folder = sample_dir()
    pods = folder / SAMPLE_PODS
    nodes = folder / SAMPLE_NODES
    jobs = parse_text(parse_openb_pods, pods.read_text(encoding="utf-8"), str(pods))
    inventory = parse_text(parse_openb_nodes, nodes.read_text(encoding="utf-8"), str(nodes))
    return Trace(jobs, inventory, "embedded openb sample", _OPENB_NOTES)


_OPENB_NOTES = (
    "openb: a job is one pod, submitted at creation_time, running deletion_time - scheduled_time "
    "(deletion_time - creation_time for pods the real cluster never scheduled)",
)


def load_trace(options: ScenarioOptions, data_dir: Path | None) -> Trace:
    if (options.jobs is None) != (options.nodes is None):
        raise ValueError("--jobs and --nodes go together (a generic trace needs both files)")
    if options.jobs is not None and options.nodes is not None:
        if options.trace not in (None, "sample"):
            raise ValueError("--trace cannot be combined with --jobs/--nodes")
        jobs, nodes = read_generic(options.jobs, options.nodes)
        trace = Trace(jobs, nodes, f"{options.jobs} + {options.nodes}")
    elif options.trace in (None, "sample"):
        trace = load_sample()
    elif options.trace == "openb" or options.trace.startswith("openb:"):
        variant = options.trace.partition(":")[2] or "default"
        folder = data_dir / OPENB_FOLDER if data_dir is not None else None
        if folder is None or not folder.is_dir():
            raise ValueError(
                f"--trace {options.trace}: no {OPENB_FOLDER}/ folder found; pass --data-dir DIR "
                "(a folder holding it, e.g. ../shared/data), or leave --trace out to run the embedded sample"
            )
        jobs, nodes = read_openb(folder, variant)
        trace = Trace(jobs, nodes, f"openb:{variant}", _OPENB_NOTES)
    else:
        raise ValueError(f"--trace: expected 'sample' or 'openb[:VARIANT]' (got {options.trace!r})")
    if options.limit is not None:
        if options.limit < 1:
            raise ValueError(f"--limit: must be at least 1 (got {options.limit})")
        trace = trace.limited(options.limit)
    if len(trace.jobs) == 0:
        raise TraceError(f"{trace.source}: no jobs")
    return trace


def _grid_folder(data_dir: Path | None) -> Path:
    if data_dir is not None and (data_dir / GRID_FOLDER).is_dir():
        return data_dir / GRID_FOLDER
    return bundled_data_dir()


def _zone(spec: str) -> tuple[str, int | None]:
    zone, _, year = spec.partition(":")
    if year and not year.isdigit():
        raise ValueError(f"expected ZONE or ZONE:YEAR (got {spec!r})")
    return zone, int(year) if year else None


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or spec.endswith(".csv") or Path(spec).is_file()


def resolve_tariff(spec: str | None, data_dir: Path | None) -> tuple[Tariff | None, str, tuple[str, int | None] | None]:
    """(tariff or None for the profiles' own, description, the zone when the spec named one)."""
    spec = DEFAULT_ZONE if spec is None else spec
    if spec in ("profile", "profiles"):
        return None, "each cost profile's own tariff", None
    if spec.startswith("flat:"):
        try:
            price = float(spec[5:])
        except ValueError:
            raise ValueError(f"--tariff: flat price is not a number: {spec[5:]!r}") from None
        return FlatTariff(price), f"flat {price:g} per kWh", None
    if _looks_like_path(spec):
        path = Path(spec)
        try:
            return load_hourly_price_csv(path, cyclic=True), f"{path} (cyclic)", None
        except (OSError, ValueError) as exc:
            raise ValueError(f"--tariff: {exc}") from None
    try:
        zone, year = _zone(spec)
        folder = _grid_folder(data_dir)
        path = resolve_zone_file(TariffSource(data_dir=folder), zone, year)
        tariff = load_hourly_price_csv(path, cyclic=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--tariff: {exc}") from None
    return tariff, f"{zone} hourly prices from {path.name} ({folder}, cyclic)", (zone, year)


def resolve_carbon(
    spec: str | None, data_dir: Path | None, tariff_zone: tuple[str, int | None] | None
) -> CarbonSeries | None:
    """``none``, a file, a zone; by default the tariff's zone when the tariff named one."""
    if spec == "none":
        return None
    if spec is None:
        if tariff_zone is None:
            return None
        try:
            return load_carbon_csv(resolve_carbon_zone(_grid_folder(data_dir), *tariff_zone))
        except ValueError:
            return None  # a zone with prices but no carbon series: carbon is optional
    try:
        if _looks_like_path(spec):
            return load_carbon_csv(Path(spec))
        return load_carbon_csv(resolve_carbon_zone(_grid_folder(data_dir), *_zone(spec)))
    except ValueError as exc:
        raise ValueError(f"--carbon: {exc}") from None


def load_scenario(options: ScenarioOptions, cwd: Path | None = None) -> Scenario:
    data_dir = find_data_dir(options.data_dir, cwd)
    trace = load_trace(options, data_dir)
    profiles = load_profile_set(options.profiles)
    tariff, description, zone = resolve_tariff(options.tariff, data_dir)
    carbon = resolve_carbon(options.carbon, data_dir, zone)
    catalog, warnings = build_catalog(trace.nodes, profiles, tariff)
    if options.start is not None:
        try:
            start = parse_timestamp(options.start)
        except ValueError:
            raise ValueError(f"--start: not an ISO-8601 time: {options.start!r}") from None
    elif isinstance(tariff, HourlySeriesTariff):
        start = tariff.start
    elif carbon is not None:
        start = carbon.intensity.start
    else:
        start = _FALLBACK_START
    return Scenario(
        trace=trace,
        catalog=catalog,
        start_epoch_s=start,
        carbon=carbon,
        tariff_description=description,
        warnings=tuple(warnings),
    )
