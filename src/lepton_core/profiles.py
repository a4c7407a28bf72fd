"""Cost profiles: what a class of node costs to own and power, matched to nodes by their labels.

A profile set is YAML (or JSON) validated against ``PROFILE_SET_SCHEMA`` with jsonschema; every error
names the field by its path (``profiles[2].gpu.maxWatts: -5 is less than the minimum of 0``). Valid
documents become frozen ``CostProfile`` objects that hold model objects (``NodePowerModel``,
``HardwareAmortization``, ``OperationsCost``, a ``Tariff``), so the extender, the operator and the
simulator all read costs the same way.

Matching: a profile's ``match.labels`` maps label keys to shell-style patterns (``Tesla-V100*``); a node
matches when every key is present and matches. Among matching profiles the one with the most labels
wins, then the one listed first. A node that matches none gets ``defaultProfile`` and the caller is told
(``ProfileMatch.matched`` is False) so it can warn.

The shipped defaults (``data/profiles.yaml``) are derived from public data; docs/models.md and
``data/ATTRIBUTION.md`` say how.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lepton_core.models.cost import CostBreakdown, HardwareAmortization, OperationsCost
from lepton_core.models.power import GpuPowerModel, NodePowerModel, PowerCurve
from lepton_core.models.tariff import FlatTariff, Tariff, TimeOfUseTariff
from lepton_core.tariffs import TariffSource, load_hourly_price_csv, resolve_zone_file

GPU_MODEL_LABEL = "lepton.ai/gpu-model"
"""Label the simulator and static inventories use for a GPU model (e.g. ``V100M32``)."""


class ProfileError(ValueError):
    """An invalid profile document; the message names the offending field."""


_NUM = {"type": "number"}
_NONNEG = {"type": "number", "minimum": 0}

_TARIFF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One of: flat, timeOfUse, hourly (a price file) or zone (a grid-hourly zone name).",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "flat": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pricePerKWh"],
            "properties": {"pricePerKWh": _NONNEG},
        },
        "timeOfUse": {
            "type": "object",
            "additionalProperties": False,
            "required": ["periods"],
            "properties": {
                "utcOffsetHours": {"type": "number", "minimum": -14, "maximum": 14},
                "periods": {"$ref": "#/$defs/touPeriods"},
                "weekend": {"$ref": "#/$defs/touPeriods"},
            },
        },
        "hourly": {
            "type": "object",
            "additionalProperties": False,
            "required": ["file"],
            "properties": {"file": {"type": "string", "minLength": 1}, "cyclic": {"type": "boolean"}},
        },
        "zone": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "year": {"type": "integer"},
                "cyclic": {"type": "boolean"},
            },
        },
    },
}

PROFILE_SET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["profiles"],
    "$defs": {
        "touPeriods": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start", "pricePerKWh"],
                "properties": {
                    "start": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                    "pricePerKWh": _NONNEG,
                },
            },
        },
        "tariff": _TARIFF_SCHEMA,
    },
    "properties": {
        "apiVersion": {"const": "lepton.ai/v1alpha1"},
        "kind": {"const": "CostProfileSet"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "defaultProfile": {"type": "string"},
        "tariffs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/tariff"}},
        "profiles": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "platform", "hardware"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                    "description": {"type": "string"},
                    "source": {"type": "string"},
                    "match": {
                        "type": "array",
                        "description": "Node selectors; the profile applies when any one matches.",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["labels"],
                            "properties": {
                                "labels": {
                                    "type": "object",
                                    "minProperties": 1,
                                    "additionalProperties": {"type": "string"},
                                }
                            },
                        },
                    },
                    "platform": {
                        "type": "object",
                        "description": "CPU platform power: SPECpower points, or a curve of [utilization, watts].",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "maxProperties": 1,
                        "properties": {
                            "specpower": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["activeIdleWatts", "loadWatts"],
                                "properties": {
                                    "activeIdleWatts": _NONNEG,
                                    "loadWatts": {"type": "array", "items": _NONNEG, "minItems": 10, "maxItems": 10},
                                },
                            },
                            "curve": {
                                "type": "array",
                                "minItems": 2,
                                "items": {
                                    "type": "array",
                                    "prefixItems": [
                                        {"type": "number", "minimum": 0, "maximum": 1},
                                        _NONNEG,
                                    ],
                                    "minItems": 2,
                                    "maxItems": 2,
                                },
                            },
                        },
                    },
                    "gpu": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["idleWatts", "maxWatts"],
                        "properties": {
                            "model": {"type": "string"},
                            "count": {"type": "integer", "minimum": 0, "maximum": 64},
                            "idleWatts": _NONNEG,
                            "maxWatts": _NONNEG,
                            "exponent": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
                            "pricePerGpu": _NONNEG,
                        },
                    },
                    "hardware": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["purchasePrice"],
                        "properties": {
                            "purchasePrice": _NONNEG,
                            "lifetimeYears": {"type": "number", "exclusiveMinimum": 0},
                            "residualValue": _NONNEG,
                        },
                    },
                    "operations": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"perNodeYear": _NONNEG},
                    },
                    "tariff": {
                        "description": "A tariff name from `tariffs`, or an inline tariff.",
                        "oneOf": [{"type": "string"}, {"$ref": "#/$defs/tariff"}],
                    },
                    "pue": {"type": "number", "minimum": 1, "maximum": 5},
                },
            },
        },
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(PROFILE_SET_SCHEMA)


def _path(err: jsonschema.ValidationError) -> str:
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def validate_profile_document(doc: Any) -> None:
    """Raise ``ProfileError`` naming every invalid field (sorted by path)."""
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"{_path(e)}: {e.message}" for e in errors[:10]]
        raise ProfileError("invalid cost profiles: " + "; ".join(lines))


@dataclass(frozen=True)
class CostProfile:
    """One class of node: its power curve, what it cost, what it costs to run, what it pays for power."""

    name: str
    platform: PowerCurve
    gpu: GpuPowerModel | None
    gpu_count: int
    gpu_model: str | None
    hardware: HardwareAmortization
    """Amortization of the platform (without GPUs)."""
    price_per_gpu: float
    operations: OperationsCost
    tariff: Tariff
    pue: float
    currency: str
    selectors: tuple[Mapping[str, str], ...] = ()
    """Label selectors (key -> shell pattern); the profile applies when any one matches."""
    description: str = ""
    source: str = ""

    def power_model(self, gpu_count: int | None = None) -> NodePowerModel:
        """The node's power model; ``gpu_count`` overrides the profile's (from the node's allocatable)."""
        count = self.gpu_count if gpu_count is None else gpu_count
        gpu = self.gpu if count > 0 else None
        if count > 0 and gpu is None:
            # A node with GPUs whose profile has none: be explicit rather than silently drop them.
            raise ProfileError(f"profiles[{self.name}].gpu: node has {count} GPUs but the profile has no GPU model")
        return NodePowerModel(platform=self.platform, gpu=gpu, gpu_count=count, pue=self.pue)

    def hardware_for(self, gpu_count: int | None = None) -> HardwareAmortization:
        count = self.gpu_count if gpu_count is None else gpu_count
        h = self.hardware
        return HardwareAmortization(h.purchase_price + count * self.price_per_gpu, h.lifetime_years, h.residual_value)

    def fixed_cost_per_hour(self, gpu_count: int | None = None) -> CostBreakdown:
        """Hardware and operations per hour: what the node costs whether it works or not."""
        return CostBreakdown(
            hardware=self.hardware_for(gpu_count).cost_per_hour, operations=self.operations.cost_per_hour
        )

    def match_specificity(self, labels: Mapping[str, str]) -> int:
        """Number of labels in the most specific matching selector; 0 when none matches."""
        best = 0
        for sel in self.selectors:
            if all(k in labels and fnmatch.fnmatchcase(labels[k], pat) for k, pat in sel.items()):
                best = max(best, len(sel))
        return best


@dataclass(frozen=True, slots=True)
class ProfileMatch:
    profile: CostProfile
    matched: bool
    """False when no profile matched and the default was used."""


@dataclass(frozen=True)
class ProfileSet:
    profiles: tuple[CostProfile, ...]
    default: CostProfile
    currency: str

    def by_name(self, name: str) -> CostProfile:
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(f"no cost profile named {name!r}")

    def resolve(self, labels: Mapping[str, str]) -> ProfileMatch:
        best: CostProfile | None = None
        best_score = 0
        for p in self.profiles:
            score = p.match_specificity(labels)
            if score > best_score:
                best, best_score = p, score
        if best is None:
            return ProfileMatch(self.default, matched=False)
        return ProfileMatch(best, matched=True)


def _parse_minutes(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return int(h) * 3600.0 + int(m) * 60.0


def _build_tariff(spec: Mapping[str, Any], where: str, currency: str, sources: TariffSource) -> Tariff:
    if "flat" in spec:
        return FlatTariff(float(spec["flat"]["pricePerKWh"]), currency=currency)
    if "timeOfUse" in spec:
        t = spec["timeOfUse"]

        def periods(items: list[dict[str, Any]], name: str) -> tuple[tuple[float, float], ...]:
            out = tuple((_parse_minutes(p["start"]), float(p["pricePerKWh"])) for p in items)
            if out[0][0] != 0.0:
                raise ProfileError(f"{where}.timeOfUse.{name}[0].start: the first period must start at 00:00")
            if any(b[0] <= a[0] for a, b in pairwise(out)):
                raise ProfileError(f"{where}.timeOfUse.{name}: period starts must increase")
            return out

        return TimeOfUseTariff(
            periods=periods(t["periods"], "periods"),
            weekend=periods(t["weekend"], "weekend") if "weekend" in t else None,
            utc_offset_hours=float(t.get("utcOffsetHours", 0.0)),
            currency=currency,
        )
    if "hourly" in spec:
        h = spec["hourly"]
        try:
            return load_hourly_price_csv(sources.resolve_file(h["file"]), cyclic=bool(h.get("cyclic", False)))
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{where}.hourly.file: {exc}") from exc
    z = spec["zone"]
    try:
        path = resolve_zone_file(sources, z["name"], z.get("year"))
        return load_hourly_price_csv(path, cyclic=bool(z.get("cyclic", True)))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{where}.zone: {exc}") from exc


def build_profile_set(doc: Any, sources: TariffSource | None = None) -> ProfileSet:
    """Validate a parsed profile document and build the typed profile set."""
    validate_profile_document(doc)
    sources = sources or TariffSource()
    currency = str(doc.get("currency", "USD"))
    named_tariffs: dict[str, Tariff] = {}
    for tname, tspec in (doc.get("tariffs") or {}).items():
        named_tariffs[tname] = _build_tariff(tspec, f"tariffs.{tname}", currency, sources)
    default_tariff = named_tariffs.get("default") or FlatTariff(0.12, currency=currency)
    profiles: list[CostProfile] = []
    seen: set[str] = set()
    for i, p in enumerate(doc["profiles"]):
        where = f"profiles[{i}]"
        if p["name"] in seen:
            raise ProfileError(f"{where}.name: duplicate profile name {p['name']!r}")
        seen.add(p["name"])
        try:
            plat = p["platform"]
            if "specpower" in plat:
                sp = plat["specpower"]
                curve = PowerCurve.specpower(sp["activeIdleWatts"], sp["loadWatts"])
            else:
                pts = plat["curve"]
                curve = PowerCurve(tuple(float(x[0]) for x in pts), tuple(float(x[1]) for x in pts))
        except ValueError as exc:
            raise ProfileError(f"{where}.platform: {exc}") from exc
        gpu = None
        gpu_count = 0
        gpu_model = None
        price_per_gpu = 0.0
        if "gpu" in p:
            g = p["gpu"]
            try:
                gpu = GpuPowerModel(float(g["idleWatts"]), float(g["maxWatts"]), float(g.get("exponent", 1.0)))
            except ValueError as exc:
                raise ProfileError(f"{where}.gpu: {exc}") from exc
            gpu_count = int(g.get("count", 0))
            gpu_model = g.get("model")
            price_per_gpu = float(g.get("pricePerGpu", 0.0))
        h = p["hardware"]
        try:
            hardware = HardwareAmortization(
                float(h["purchasePrice"]), h.get("lifetimeYears"), float(h.get("residualValue", 0.0))
            )
        except ValueError as exc:
            raise ProfileError(f"{where}.hardware: {exc}") from exc
        tariff_spec = p.get("tariff")
        if tariff_spec is None:
            tariff = default_tariff
        elif isinstance(tariff_spec, str):
            if tariff_spec not in named_tariffs:
                raise ProfileError(f"{where}.tariff: no tariff named {tariff_spec!r} in `tariffs`")
            tariff = named_tariffs[tariff_spec]
        else:
            tariff = _build_tariff(tariff_spec, f"{where}.tariff", currency, sources)
        profiles.append(
            CostProfile(
                name=p["name"],
                platform=curve,
                gpu=gpu,
                gpu_count=gpu_count,
                gpu_model=gpu_model,
                hardware=hardware,
                price_per_gpu=price_per_gpu,
                operations=OperationsCost(float((p.get("operations") or {}).get("perNodeYear", 0.0))),
                tariff=tariff,
                pue=float(p.get("pue", 1.0)),
                currency=currency,
                selectors=tuple(dict(sel["labels"]) for sel in p.get("match") or ()),
                description=p.get("description", ""),
                source=p.get("source", ""),
            )
        )
    default_name = doc.get("defaultProfile", profiles[0].name)
    default = next((p for p in profiles if p.name == default_name), None)
    if default is None:
        raise ProfileError(f"defaultProfile: no profile named {default_name!r}")
    return ProfileSet(profiles=tuple(profiles), default=default, currency=currency)


def load_profile_set(path: Path | None = None, sources: TariffSource | None = None) -> ProfileSet:
    """Load profiles from a YAML/JSON file, or the shipped defaults when ``path`` is None."""
    if path is None:
        text = resources.files("lepton_core").joinpath("data/profiles.yaml").read_text()
        base = None
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ProfileError(f"cannot read cost profiles from {path}: {exc.strerror or exc}") from exc
        base = path.parent
    try:
        doc = yaml.safe_load(text) if (path is None or path.suffix != ".json") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ProfileError(f"cost profiles are not valid YAML/JSON: {exc}") from exc
    src = sources or TariffSource()
    if base is not None and src.base_dir is None:
        src = TariffSource(base_dir=base, data_dir=src.data_dir)
    return build_profile_set(doc, src)


def default_profiles() -> ProfileSet:
    """The shipped default profile set."""
    return load_profile_set(None)
