"""Pure models: utilization, power and energy, tariffs, cost and attribution.

Nothing in this package does I/O or reads a clock: time is always an argument (seconds since the Unix
epoch, UTC). The import-linter contract "Models are pure" in ``pyproject.toml`` keeps it that way.
Neighbours: ``lepton_core.profiles`` builds these objects from configuration; ``lepton_core.scoring``,
the operator's accounting loop and the simulator call them.
"""

from lepton_core.models.attribution import AttributionPolicy, AttributionResult, attribute, dominant_shares
from lepton_core.models.cost import (
    CostBreakdown,
    CostEstimate,
    HardwareAmortization,
    OperationsCost,
    estimate_cost,
)
from lepton_core.models.energy import energy_joules, energy_kwh_from_compute
from lepton_core.models.power import GpuPowerModel, NodePowerModel, NodePowerTable, PowerCurve
from lepton_core.models.stepfunction import StepFunction
from lepton_core.models.tariff import FlatTariff, HourlySeriesTariff, Tariff, TimeOfUseTariff
from lepton_core.models.utilization import Ratio, Resource, aggregate_ratio, allocation, ratio_array, usage

__all__ = [
    "AttributionPolicy",
    "AttributionResult",
    "CostBreakdown",
    "CostEstimate",
    "FlatTariff",
    "GpuPowerModel",
    "HardwareAmortization",
    "HourlySeriesTariff",
    "NodePowerModel",
    "NodePowerTable",
    "OperationsCost",
    "PowerCurve",
    "Ratio",
    "Resource",
    "StepFunction",
    "Tariff",
    "TimeOfUseTariff",
    "aggregate_ratio",
    "allocation",
    "attribute",
    "dominant_shares",
    "energy_joules",
    "energy_kwh_from_compute",
    "estimate_cost",
    "ratio_array",
    "usage",
]
