"""Every Prometheus metric Lepton exports: names, label names, units and help text, in one place.

Conventions (prometheus.io/docs/practices/naming): the ``lepton_`` namespace, base units in the name
(``_seconds``, ``_joules``, ``_watts``, ``_ratio``), ``_total`` for counters. Money has no base unit, so
cost metrics carry a ``currency`` label. The OpenCost-compatible node cost gauges keep OpenCost's names
so existing dashboards work. docs/metrics.md is generated from this module (test: no drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class MetricName:
    name: str
    kind: str
    """counter, gauge or histogram."""
    labels: tuple[str, ...]
    help: str
    unit: str


# --- Operator: live cost accounting -------------------------------------------------------------
JOB_COST_TOTAL: Final = MetricName(
    "lepton_job_cost_total",
    "counter",
    ("namespace", "job", "component", "currency"),
    "Accumulated cost of a LeptonJob by component (hardware, energy, operations).",
    "currency units",
)
JOB_ENERGY_JOULES_TOTAL: Final = MetricName(
    "lepton_job_energy_joules_total",
    "counter",
    ("namespace", "job"),
    "Accumulated energy attributed to a LeptonJob.",
    "joules",
)
NODE_POWER_WATTS: Final = MetricName(
    "lepton_node_power_watts",
    "gauge",
    ("node", "source"),
    "Node power by source: measured (kepler, dcgm) or model.",
    "watts",
)
NODE_UTILIZATION_RATIO: Final = MetricName(
    "lepton_node_utilization_ratio",
    "gauge",
    ("node", "resource"),
    "Node utilization (measured / capacity) per resource.",
    "ratio",
)
NODE_COST_PER_HOUR: Final = MetricName(
    "lepton_node_cost_per_hour",
    "gauge",
    ("node", "component", "currency"),
    "Node cost rate by component.",
    "currency units per hour",
)
IDLE_COST_TOTAL: Final = MetricName(
    "lepton_idle_cost_total",
    "counter",
    ("node", "currency"),
    "Accumulated node cost that no pod was attributed.",
    "currency units",
)
# OpenCost-compatible names (no currency label in OpenCost; values are in the profiles' currency).
NODE_TOTAL_HOURLY_COST: Final = MetricName(
    "node_total_hourly_cost",
    "gauge",
    ("node", "instance_type"),
    "OpenCost-compatible node cost per hour.",
    "currency/h",
)
NODE_CPU_HOURLY_COST: Final = MetricName(
    "node_cpu_hourly_cost", "gauge", ("node", "instance_type"), "OpenCost-compatible cost per vCPU-hour.", "currency/h"
)
NODE_RAM_HOURLY_COST: Final = MetricName(
    "node_ram_hourly_cost", "gauge", ("node", "instance_type"), "OpenCost-compatible cost per GiB-hour.", "currency/h"
)
NODE_GPU_HOURLY_COST: Final = MetricName(
    "node_gpu_hourly_cost", "gauge", ("node", "instance_type"), "OpenCost-compatible cost per GPU-hour.", "currency/h"
)

# --- Extender ---------------------------------------------------------------------------------
EXTENDER_REQUEST_DURATION_SECONDS: Final = MetricName(
    "lepton_extender_request_duration_seconds",
    "histogram",
    ("verb", "code"),
    "Extender request latency by verb (filter, prioritize) and HTTP status.",
    "seconds",
)
EXTENDER_TELEMETRY_AGE_SECONDS: Final = MetricName(
    "lepton_extender_telemetry_age_seconds",
    "gauge",
    (),
    "Age of the newest telemetry snapshot the extender scores with.",
    "seconds",
)
