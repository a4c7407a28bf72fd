"""Scoring policy: weights, presets (``cost``, ``balance``, ``pack``) and thresholds, validated in one place.

Neighbours: ``lepton_core.scoring.score`` reads these; the extender builds one from its command line and
the simulator from its policy options. Every field says what it means and in which unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Preset(StrEnum):
    COST = "cost"
    """Cheapest marginal cost per hour (default)."""
    BALANCE = "balance"
    """Spread load: busier nodes cost more; empty autoscaled nodes are not penalised."""
    PACK = "pack"
    """Consolidate: emptier nodes cost more, so whole nodes stay free for the autoscaler."""


_WEIGHT_NAMES = ("cost", "fixed_share", "keep_alive", "overload_risk", "balance", "pack")


def _check_weight(value: float, name: str) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"weights.{name}: must be a finite, non-negative number (got {value!r})")


@dataclass(frozen=True, slots=True)
class ScoringWeights:
    """Multipliers on the terms of the objective (all terms are money per hour, so weights are unitless)."""

    cost: float = 1.0
    """Energy (ΔP × PUE × tariff) + ``fixed_share`` × (hardware share + operations share)."""
    fixed_share: float = 1.0
    """Weight of the pod's share of the node's fixed cost (hardware + operations) inside ``cost``. In a
    static cluster that cost is sunk, but capacity a pod reserves is capacity another pod cannot use (an
    opportunity cost), so it stays in the default objective; docs/notes/scoring-api.md has the replay
    figures the default was chosen by."""
    keep_alive: float = 1.0
    """Cost of keeping an otherwise empty, autoscaled node alive."""
    overload_risk: float = 1.0
    """Penalty that grows as predicted utilization passes ``soft_utilization``."""
    balance: float = 0.0
    """Load after placement × the node's fixed cost per hour: prefers emptier nodes (spreads)."""
    pack: float = 0.0
    """(1 − load after placement) × the node's fixed cost per hour: prefers fuller nodes (packs)."""

    def __post_init__(self) -> None:
        for name in _WEIGHT_NAMES:
            _check_weight(getattr(self, name), name)

    @classmethod
    def preset(cls, preset: Preset | str) -> ScoringWeights:
        try:
            return PRESETS[Preset(preset)]
        except ValueError:
            raise ValueError(
                f"preset: unknown preset {preset!r} (have: {', '.join(p.value for p in Preset)})"
            ) from None

    def with_overrides(self, overrides: dict[str, Any]) -> ScoringWeights:
        """These weights with some replaced, e.g. from ``--weight balance=0.5``; unknown names are errors."""
        known = set(_WEIGHT_NAMES)
        for key, value in overrides.items():
            if key not in known:
                raise ValueError(f"weights.{key}: unknown weight (have: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"weights.{key}: must be a number (got {value!r})")
        return replace(self, **{k: float(v) for k, v in overrides.items()})


PRESETS: dict[Preset, ScoringWeights] = {
    Preset.COST: ScoringWeights(),
    Preset.BALANCE: ScoringWeights(keep_alive=0.0, balance=1.0),
    Preset.PACK: ScoringWeights(pack=1.0),
}


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    """How to score and filter. Defaults are the extender's defaults."""

    weights: ScoringWeights = field(default_factory=ScoringWeights)
    max_utilization: float = 0.95
    """Filter: reject a node whose predicted CPU or GPU utilization after placement exceeds this, [0, 1]."""
    soft_utilization: float = 0.75
    """Overload risk starts above this predicted utilization, [0, max_utilization)."""
    stale_after_seconds: float = 120.0
    """Telemetry older than this (or missing) is stale: the node is scored on its requests alone and
    can never get the top score."""
    fail_open: bool = True
    """With stale telemetry, keep the node (True, default) or reject it in filter (False)."""

    def __post_init__(self) -> None:
        if not (0.0 < self.max_utilization <= 1.0):
            raise ValueError(f"max_utilization: must be in (0, 1] (got {self.max_utilization!r})")
        if not (0.0 <= self.soft_utilization < self.max_utilization):
            raise ValueError(
                f"soft_utilization: must be in [0, max_utilization={self.max_utilization}) "
                f"(got {self.soft_utilization!r})"
            )
        if not (math.isfinite(self.stale_after_seconds) and self.stale_after_seconds > 0.0):
            raise ValueError(f"stale_after_seconds: must be positive (got {self.stale_after_seconds!r})")
