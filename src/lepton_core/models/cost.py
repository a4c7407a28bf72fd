"""Cost: C = hardware + energy + operations, over a window, in a configured currency.

* **hardware** — the purchase price amortized straight-line over the lifetime, less any residual value:
  ``(price − residual) / (lifetime_years × 8760)`` per hour. Without a lifetime the whole purchase price
  is charged to the window (the founding document's "buy it this year" view).
* **energy** — kWh × tariff, integrated across tariff boundaries (``tariff``).
* **operations** — staff, space, network, support: a cost per node-year spread evenly over its hours,
  plus optional lump sums.

Amounts are plain floats in the profile's currency; the currency travels alongside as configuration,
never inside a name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_core.units import HOURS_PER_YEAR, JOULES_PER_KWH, SECONDS_PER_HOUR


def _finite_non_negative(value: float, name: str) -> None:
    if not (np.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite, non-negative number (got {value!r})")


@dataclass(frozen=True, slots=True)
class HardwareAmortization:
    """Straight-line amortization of a purchase."""

    purchase_price: float
    lifetime_years: float | None = None
    """None: no amortization, the whole price falls in the window."""
    residual_value: float = 0.0

    def __post_init__(self) -> None:
        _finite_non_negative(self.purchase_price, "purchase_price")
        _finite_non_negative(self.residual_value, "residual_value")
        if self.residual_value > self.purchase_price:
            raise ValueError("residual_value must not exceed purchase_price")
        if self.lifetime_years is not None and not (np.isfinite(self.lifetime_years) and self.lifetime_years > 0.0):
            raise ValueError(f"lifetime_years must be positive (got {self.lifetime_years!r})")

    @property
    def cost_per_hour(self) -> float:
        """Amortized cost per hour; 0 without a lifetime (see :meth:`cost_for_window`)."""
        if self.lifetime_years is None:
            return 0.0
        return (self.purchase_price - self.residual_value) / (self.lifetime_years * HOURS_PER_YEAR)

    def cost_for_window(self, window_hours: float) -> float:
        _finite_non_negative(window_hours, "window_hours")
        if self.lifetime_years is None:
            return self.purchase_price
        return self.cost_per_hour * window_hours


@dataclass(frozen=True, slots=True)
class OperationsCost:
    """Operations cost per node-year, spread evenly over the 8,760 hours of a year."""

    per_node_year: float = 0.0

    def __post_init__(self) -> None:
        _finite_non_negative(self.per_node_year, "per_node_year")

    @property
    def cost_per_hour(self) -> float:
        return self.per_node_year / HOURS_PER_YEAR


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """An amount of money split into C = hardware + energy + operations."""

    hardware: float = 0.0
    energy: float = 0.0
    operations: float = 0.0

    @property
    def total(self) -> float:
        return self.hardware + self.energy + self.operations

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        return CostBreakdown(
            self.hardware + other.hardware, self.energy + other.energy, self.operations + other.operations
        )

    def scaled(self, factor: float) -> CostBreakdown:
        return CostBreakdown(self.hardware * factor, self.energy * factor, self.operations * factor)

    def as_dict(self) -> dict[str, float]:
        return {"hardware": self.hardware, "energy": self.energy, "operations": self.operations, "total": self.total}


def fixed_cost_per_hour(hardware: HardwareAmortization, operations: OperationsCost) -> CostBreakdown:
    """The time-proportional part of a node's cost rate (energy depends on power and tariff)."""
    return CostBreakdown(hardware=hardware.cost_per_hour, operations=operations.cost_per_hour)


def window_cost(
    hardware: HardwareAmortization,
    operations: OperationsCost,
    window_seconds: float,
    energy_cost: float,
) -> CostBreakdown:
    """A node's cost over a window, given the energy cost already integrated against its tariff."""
    _finite_non_negative(window_seconds, "window_seconds")
    _finite_non_negative(energy_cost, "energy_cost")
    hours = window_seconds / SECONDS_PER_HOUR
    return CostBreakdown(
        hardware=hardware.cost_for_window(hours),
        energy=energy_cost,
        operations=operations.cost_per_hour * hours,
    )


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """The answer of ``lepton cost estimate``."""

    cost: CostBreakdown
    energy_kwh: float
    currency: str

    def as_dict(self) -> dict[str, float | str]:
        return {**self.cost.as_dict(), "energy_kwh": self.energy_kwh, "currency": self.currency}


def estimate_cost(
    *,
    nodes: int,
    power_watts: float,
    powered_hours: float,
    price_per_kwh: float,
    window_hours: float | None = None,
    hardware_price_per_node: float = 0.0,
    lifetime_years: float | None = None,
    residual_value_per_node: float = 0.0,
    ops_per_node_year: float = 0.0,
    ops_fixed: float = 0.0,
    currency: str = "USD",
) -> CostEstimate:
    """What-if cost of a fleet: ``nodes`` drawing ``power_watts`` each for ``powered_hours``.

    ``window_hours`` is the calendar window charged for hardware and operations (default: the powered
    hours). Without ``lifetime_years`` the full purchase price falls in the window.
    """
    if nodes < 0:
        raise ValueError("nodes must not be negative")
    for value, name in (
        (power_watts, "power_watts"),
        (powered_hours, "hours"),
        (price_per_kwh, "price_per_kwh"),
        (ops_per_node_year, "ops_per_node_year"),
        (ops_fixed, "ops_fixed"),
    ):
        _finite_non_negative(value, name)
    window = powered_hours if window_hours is None else window_hours
    _finite_non_negative(window, "window_hours")
    hardware = HardwareAmortization(hardware_price_per_node, lifetime_years, residual_value_per_node)
    operations = OperationsCost(ops_per_node_year)
    energy_kwh = nodes * power_watts * powered_hours * SECONDS_PER_HOUR / JOULES_PER_KWH
    cost = CostBreakdown(
        hardware=nodes * hardware.cost_for_window(window),
        energy=energy_kwh * price_per_kwh,
        operations=nodes * operations.cost_per_hour * window + ops_fixed,
    )
    return CostEstimate(cost=cost, energy_kwh=energy_kwh, currency=currency)
