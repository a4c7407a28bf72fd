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
    "Node facility power (IT x PUE) by source: measured (kepler, kepler+dcgm, dcgm) and the model's figure.",
    "watts",
)
NODE_UTILIZATION_RATIO: Final = MetricName(
    "lepton_node_utilization_ratio",
    "gauge",
    ("node", "resource"),
    "Node utilization per resource as the power model used it: measured / capacity, or requested / "
    "allocatable while no measurement is available.",
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
    "Accumulated node cost that no pod was attributed, as accounted by this operator process (same "
    "crash/failover overlap as lepton_node_cost_total).",
    "currency units",
)
JOB_COST_PER_HOUR: Final = MetricName(
    "lepton_job_cost_per_hour",
    "gauge",
    ("namespace", "job", "currency"),
    "Current cost rate of a LeptonJob (its running pods' shares of their nodes' rates).",
    "currency units per hour",
)
JOB_COST_ESTIMATED: Final = MetricName(
    "lepton_job_cost_estimated",
    "gauge",
    ("namespace", "job"),
    "1 when the job's latest window was accounted from the model on requests (no usable telemetry).",
    "boolean",
)
JOB_BUDGET_COST: Final = MetricName(
    "lepton_job_budget_cost",
    "gauge",
    ("namespace", "job", "currency"),
    "The job's spec.budget.maxCost (only for jobs that set one).",
    "currency units",
)
JOB_BUDGET_ENERGY_JOULES: Final = MetricName(
    "lepton_job_budget_energy_joules",
    "gauge",
    ("namespace", "job"),
    "The job's spec.budget.maxEnergyKWh in joules (only for jobs that set one).",
    "joules",
)
JOB_BUDGET_EXCEEDED: Final = MetricName(
    "lepton_job_budget_exceeded",
    "gauge",
    ("namespace", "job"),
    "1 once the operator found the job's budget passed (its BudgetExceeded condition; the action is applied "
    "then), 0 while within it (only for jobs with a budget).",
    "boolean",
)
NODE_POWER_MODEL_ERROR_RATIO: Final = MetricName(
    "lepton_node_power_model_error_ratio",
    "gauge",
    ("node",),
    "(measured - modelled) / modelled node power, where the whole node is measured: how far the cost "
    "profile's power model is off.",
    "ratio",
)
NODE_COST_TOTAL: Final = MetricName(
    "lepton_node_cost_total",
    "counter",
    ("node", "component", "currency"),
    "Accumulated node cost by component, as accounted by this operator process (resets with it). Known "
    "limitation: after a crash or a failover, the windows the new process recomputes from the jobs' stored "
    "watermarks are counted again here (job ledgers are exact).",
    "currency units",
)
NODE_ENERGY_JOULES_TOTAL: Final = MetricName(
    "lepton_node_energy_joules_total",
    "counter",
    ("node",),
    "Accumulated facility energy of the node (IT power x PUE), as accounted by this operator process (same "
    "crash/failover overlap as lepton_node_cost_total).",
    "joules",
)
OTHER_PODS_COST_TOTAL: Final = MetricName(
    "lepton_other_pods_cost_total",
    "counter",
    ("node", "currency"),
    "Accumulated node cost attributed to pods that belong to no LeptonJob, as accounted by this operator "
    "process (same crash/failover overlap as lepton_node_cost_total).",
    "currency units",
)
# A gauge, not a counter: the net re-pricing goes down when the named profile is cheaper than the node's.
NODE_REPRICING_COST: Final = MetricName(
    "lepton_node_repricing_cost",
    "gauge",
    ("node", "component", "currency"),
    "Net amount LeptonJobs priced with their spec.costProfile paid on this node beyond their share at the "
    "node's own profile, accumulated by this operator process (negative when that profile is cheaper): "
    "jobs + other pods + idle = node cost + this, per component.",
    "currency units",
)
NODE_REPRICING_ENERGY_JOULES: Final = MetricName(
    "lepton_node_repricing_energy_joules",
    "gauge",
    ("node",),
    "Net energy attributed to jobs priced with their spec.costProfile (another PUE or power model) beyond "
    "their share of the node's own figure, accumulated by this operator process.",
    "joules",
)
ACCOUNTING_TICK_DURATION_SECONDS: Final = MetricName(
    "lepton_accounting_tick_duration_seconds",
    "gauge",
    (),
    "Wall time of the latest accounting tick (inventory, telemetry, accounting; writes excluded).",
    "seconds",
)
ACCOUNTING_STATUS_WRITES_TOTAL: Final = MetricName(
    "lepton_accounting_status_writes_total",
    "counter",
    ("outcome",),
    "LeptonJob status writes by outcome: ok, conflict (re-read and retried), not_found, error.",
    "writes",
)
ACCOUNTING_TELEMETRY_ERRORS_TOTAL: Final = MetricName(
    "lepton_accounting_telemetry_query_errors_total",
    "counter",
    ("query",),
    "Failed telemetry queries by query name and metric variant.",
    "queries",
)
ACCOUNTING_ESTIMATED_NODES: Final = MetricName(
    "lepton_accounting_estimated_nodes",
    "gauge",
    (),
    "Nodes whose latest window was accounted from the model on requests (Prometheus away or stale).",
    "nodes",
)
ACCOUNTING_PENDING_JOBS: Final = MetricName(
    "lepton_accounting_pending_status_jobs",
    "gauge",
    (),
    "Jobs whose status lags their live cost (windows accounted but not yet written; rate-limited).",
    "jobs",
)
ACCOUNTING_ACTIVE: Final = MetricName(
    "lepton_accounting_active",
    "gauge",
    (),
    "1 while this operator replica accounts cost (the active kopf peer, or standalone), 0 while it stands by; "
    "a standby exports no job or node cost series.",
    "boolean",
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
EXTENDER_NODES_SCORED_TOTAL: Final = MetricName(
    "lepton_extender_nodes_scored_total",
    "counter",
    ("verb", "outcome"),
    "Candidate nodes handled, by outcome: scored, rejected (filter), unknown (not in the snapshot), stale "
    "(scored fail-open without fresh telemetry).",
    "nodes",
)
EXTENDER_INTERNAL_ERRORS_TOTAL: Final = MetricName(
    "lepton_extender_internal_errors_total",
    "counter",
    ("verb",),
    "Requests answered fail-open (all nodes pass, all scores 0) because of an internal error.",
    "requests",
)
EXTENDER_TELEMETRY_FETCH_ERRORS_TOTAL: Final = MetricName(
    "lepton_extender_telemetry_fetch_errors_total",
    "counter",
    (),
    "Telemetry polls that failed entirely (the previous telemetry keeps ageing).",
    "polls",
)
EXTENDER_SNAPSHOT_NODES: Final = MetricName(
    "lepton_extender_snapshot_nodes",
    "gauge",
    (),
    "Nodes in the extender's in-memory snapshot.",
    "nodes",
)
EXTENDER_PENDING_PLACEMENTS: Final = MetricName(
    "lepton_extender_pending_placements",
    "gauge",
    (),
    "Recent placements counted on top of measured load until telemetry catches up (burst compensation).",
    "pods",
)


# --- docs/metrics.md ------------------------------------------------------------------------------------
# Kept at the end so every constant above is defined; `python -m lepton_core.metrics_names --write`
# regenerates the page and tests/accounting/test_metrics_doc.py fails when it drifts.


def all_metrics() -> tuple[MetricName, ...]:
    """Every metric declared in this module, in declaration order."""
    return tuple(v for v in globals().values() if isinstance(v, MetricName))


def render_markdown() -> str:
    lines = [
        "# Prometheus metrics",
        "",
        "Generated from `src/lepton_core/metrics_names.py` by `python -m lepton_core.metrics_names --write`;",
        "do not edit by hand (a test fails when this page drifts from the module).",
        "",
        "| name | type | labels | unit | meaning |",
        "|---|---|---|---|---|",
    ]
    for m in all_metrics():
        labels = ", ".join(f"`{label}`" for label in m.labels) or "—"
        lines.append(f"| `{m.name}` | {m.kind} | {labels} | {m.unit} | {m.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if "--write" in sys.argv:
        Path("docs/metrics.md").write_text(render_markdown(), encoding="utf-8")
    else:
        sys.stdout.write(render_markdown())
