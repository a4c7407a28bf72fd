"""Budgets and cost to complete: pure decisions the accounting loop acts on.

A LeptonJob's ``spec.budget`` caps its cost (``maxCost``, in the profiles' currency) and/or energy
(``maxEnergyKWh``). ``check_budget`` says whether the ledger has passed either cap and why, in words a
user reads on the ``BudgetExceeded`` condition and event; the loop then applies the action (notify,
suspend, stop). ``cost_to_complete`` estimates the rest of a job that declared its expected duration
from its current cost rate. Pure; neighbour: ``lepton_operator.accounting`` (acts on the verdicts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from lepton_core.units import SECONDS_PER_HOUR


class BudgetAction(StrEnum):
    NOTIFY = "notify"
    SUSPEND = "suspend"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Budget:
    max_cost: float | None = None
    max_energy_kwh: float | None = None
    action: BudgetAction = BudgetAction.NOTIFY

    def __post_init__(self) -> None:
        for name, value in (("spec.budget.maxCost", self.max_cost), ("spec.budget.maxEnergyKWh", self.max_energy_kwh)):
            if value is not None and not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name}: must be a finite, non-negative number (got {value!r})")

    @property
    def empty(self) -> bool:
        return self.max_cost is None and self.max_energy_kwh is None


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    exceeded: bool
    reason: str
    """CamelCase condition reason: ``CostBudgetExceeded``, ``EnergyBudgetExceeded``, ``WithinBudget``."""
    message: str


def check_budget(budget: Budget, cost_total: float, energy_kwh: float, currency: str) -> BudgetVerdict:
    """Has the job passed its budget? Strictly *passed*: spending exactly the budget is within it."""
    over: list[str] = []
    reason = "WithinBudget"
    if budget.max_energy_kwh is not None and energy_kwh > budget.max_energy_kwh:
        over.append(f"energy {energy_kwh:.3f} kWh passed spec.budget.maxEnergyKWh {budget.max_energy_kwh:g} kWh")
        reason = "EnergyBudgetExceeded"
    if budget.max_cost is not None and cost_total > budget.max_cost:
        over.insert(0, f"cost {cost_total:.2f} {currency} passed spec.budget.maxCost {budget.max_cost:g} {currency}")
        reason = "CostBudgetExceeded"
    if not over:
        return BudgetVerdict(False, reason, "within budget")
    return BudgetVerdict(True, reason, "; ".join(over) + f" (action: {budget.action})")


def cost_to_complete(
    expected_duration_seconds: float | None, elapsed_seconds: float, cost_per_hour: float
) -> float | None:
    """Cost of the expected remaining run time at the current rate; None without an expected duration.

    A job past its expected duration reports 0: the estimate says nothing about how much longer.
    """
    if expected_duration_seconds is None:
        return None
    remaining = max(0.0, expected_duration_seconds - max(0.0, elapsed_seconds))
    return max(0.0, cost_per_hour) * remaining / SECONDS_PER_HOUR
