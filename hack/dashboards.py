"""Lepton's Grafana dashboards as code (grafana-foundation-sdk); writes deploy/monitoring/dashboards/*.json.

    python hack/dashboards.py           # regenerate the committed JSON
    python hack/dashboards.py --check   # exit 1 if the committed JSON differs from this source

Two dashboards: "Lepton / Cost and energy" (cluster cost rate by component, cost per namespace and per
job, idle cost, budgets, power and energy by node and job, utilization) and "Lepton / Scheduling and
health" (extender request rate, latency, errors and decisions, telemetry freshness, the accounting
loop's health). Panels read the recording rules of deploy/monitoring/prometheusrule.yaml where one exists,
so a panel and an alert never disagree about a number; every other series name comes from
``lepton_core.metrics_names``. Job series are read through ``max by`` their identifying labels (a
replica that was active earlier may still serve them; counted once in HA); node counters are summed over
replicas, since each counts only the windows it accounted while it was the active one.

Neighbours: deploy/monitoring/kustomization.yaml ships the JSON as a ConfigMap labelled
``grafana_dashboard: "1"``; tests/deploy/test_dashboards.py checks drift and runs every panel's PromQL
against a real Prometheus fed by the operator and the extender.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableHide,
    VariableModel,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.dashboard import Panel as PanelModel

OUTPUT_DIR = Path(__file__).resolve().parent.parent / "deploy" / "monitoring" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace=~"$namespace"'
"""Label matcher every per-namespace query carries (the dashboard's namespace variable, multi-select)."""

Kind = Literal["timeseries", "stat", "table", "bargauge"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class PanelSpec:
    """One panel: what it shows (title, description, unit) and the PromQL behind it."""

    title: str
    description: str
    queries: tuple[Query, ...]
    kind: Kind = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    stacked: bool = False
    max_value: float | None = None
    thresholds: tuple[tuple[float, str], ...] = ()
    """(from value, colour) steps above the green base, for stats and bar gauges."""


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(query.expr).ref_id(ref_id).datasource(DATASOURCE)
    if query.legend:
        target = target.legend_format(query.legend)
    return target.instant() if query.instant else target.range()


def _thresholds(steps: Sequence[tuple[float, str]]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="green"), *(Threshold(value=v, color=c) for v, c in steps)])
    )


def build_panel(spec: PanelSpec, panel_id: int) -> cogbuilder.Builder[PanelModel]:
    builder: timeseries.Panel | stat.Panel | table.Panel | bargauge.Panel
    if spec.kind == "timeseries":
        builder = timeseries.Panel().fill_opacity(20 if spec.stacked else 8).line_width(1)
        if spec.stacked:
            builder = builder.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        builder = builder.legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    elif spec.kind == "stat":
        builder = (
            stat.Panel()
            .graph_mode(common.BigValueGraphMode.AREA)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    elif spec.kind == "bargauge":
        builder = (
            bargauge.Panel()
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    else:
        builder = table.Panel()
    builder = (
        builder.id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .span(spec.width)
        .height(spec.height)
        .targets([_target(q, chr(ord("A") + i)) for i, q in enumerate(spec.queries)])
    )
    if spec.max_value is not None:
        builder = builder.min(0).max(spec.max_value)
    if spec.thresholds:
        builder = builder.thresholds(_thresholds(spec.thresholds))
    return builder


def _variables(with_namespace: bool) -> list[cogbuilder.Builder[VariableModel]]:
    variables: list[cogbuilder.Builder[VariableModel]] = [
        dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
    ]
    if with_namespace:
        variables.append(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query("label_values(lepton_job_cost_per_hour, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .hide(VariableHide.DONT_HIDE)
        )
    return variables


def build_dashboard(
    uid: str, title: str, description: str, rows: Sequence[tuple[str, Sequence[PanelSpec]]], *, namespaced: bool
) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["lepton", "cost", "kubernetes"])
        .editable()
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .variables(_variables(namespaced))
    )
    # Stable panel ids (Grafana links and "view panel" URLs use them): rows and panels numbered in order.
    panel_id = 0
    for row_title, panels in rows:
        panel_id += 1
        board = board.with_row(dashboard.Row(row_title).id(panel_id))
        for spec in panels:
            panel_id += 1
            board = board.with_panel(build_panel(spec, panel_id))
    return board


def _budget_used(title: str, description: str, ratio_rule: str) -> PanelSpec:
    """One bar per job: the share of a budget it has used (a budget recording rule), red at 100 %."""
    return PanelSpec(
        title,
        description,
        (Query(f"{ratio_rule}{{{NS}}}", "{{namespace}}/{{job}}", instant=True),),
        kind="bargauge",
        unit="percentunit",
        width=9,
        max_value=1,
        thresholds=((0.9, "yellow"), (1.0, "red")),
    )


# --- Cost and energy -------------------------------------------------------------------------------

COST_ROWS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Cluster",
        (
            PanelSpec(
                "Cluster cost rate",
                "What the whole cluster costs per hour right now: hardware amortization, energy at the "
                "current tariff, and operations, summed over all nodes.",
                (Query("sum by (currency) (component:lepton_node_cost_per_hour:sum)", "{{currency}} per hour"),),
                kind="stat",
                unit="suffix:/h",
                width=6,
            ),
            PanelSpec(
                "Idle share of cluster cost",
                "The part of the cluster's cost that no pod was attributed: capacity paid for and unused.",
                (
                    Query(
                        "sum(node:lepton_idle_cost_per_hour:rate5m) / sum(component:lepton_node_cost_per_hour:sum)",
                        "idle share",
                    ),
                ),
                kind="stat",
                unit="percentunit",
                width=6,
                thresholds=((0.3, "yellow"), (0.6, "red")),
            ),
            PanelSpec(
                "Cluster cost rate by component",
                "Cost per hour by component. Energy follows the tariff and the nodes' power; hardware and "
                "operations are flat per node.",
                (Query("component:lepton_node_cost_per_hour:sum", "{{component}} ({{currency}})"),),
                unit="suffix:/h",
                stacked=True,
            ),
            PanelSpec(
                "Cost rate by node",
                "Each node's cost per hour, all components.",
                (Query("node:lepton_node_cost_per_hour:sum", "{{node}}"),),
                unit="suffix:/h",
                stacked=True,
            ),
            PanelSpec(
                "Idle cost rate by node",
                "Cost per hour no pod was attributed, per node: candidates for consolidation.",
                (Query("node:lepton_idle_cost_per_hour:rate5m", "{{node}}"),),
                unit="suffix:/h",
                stacked=True,
            ),
        ),
    ),
    (
        "Jobs and namespaces",
        (
            PanelSpec(
                "Cost rate by namespace",
                "Current cost per hour of the LeptonJobs in each namespace.",
                (
                    Query(
                        f"sum by (namespace, currency) (namespace_job:lepton_job_cost_per_hour:max{{{NS}}})",
                        "{{namespace}} ({{currency}})",
                    ),
                ),
                unit="suffix:/h",
                stacked=True,
            ),
            PanelSpec(
                "Top jobs by cost rate",
                "The ten LeptonJobs costing the most per hour right now.",
                (
                    Query(
                        f"topk(10, namespace_job:lepton_job_cost_per_hour:max{{{NS}}})",
                        "{{namespace}}/{{job}}",
                        instant=True,
                    ),
                ),
                kind="bargauge",
                unit="suffix:/h",
            ),
            PanelSpec(
                "Accumulated cost per job",
                "Each LeptonJob's cost so far (hardware + energy + operations), as in its status.cost.total.",
                (
                    Query(
                        f"sort_desc(namespace_job:lepton_job_cost:sum{{{NS}}})", "{{namespace}}/{{job}}", instant=True
                    ),
                ),
                kind="table",
                unit="short",
            ),
            PanelSpec(
                "Cost per job by component",
                "Cost accrued per hour by each job, split into hardware, energy and operations.",
                (
                    Query(
                        "3600 * sum by (namespace, job, component) "
                        f"(max by (namespace, job, component) (rate(lepton_job_cost_total{{{NS}}}[$__rate_interval])))",
                        "{{namespace}}/{{job}} {{component}}",
                    ),
                ),
                unit="suffix:/h",
                stacked=True,
            ),
            PanelSpec(
                "Jobs costed without telemetry",
                "1 while a job's latest window was estimated from the power model on its requests, because "
                "no usable node telemetry was found (see the LeptonCostEstimated alert).",
                (Query(f"max by (namespace, job) (lepton_job_cost_estimated{{{NS}}})", "{{namespace}}/{{job}}"),),
                unit="bool",
                max_value=1,
            ),
        ),
    ),
    (
        "Budgets",
        (
            _budget_used(
                "Cost budget used",
                "Share of spec.budget.maxCost spent per job; at 100 % the budget action applies.",
                "namespace_job:lepton_job_budget_cost_used:ratio",
            ),
            _budget_used(
                "Energy budget used",
                "Share of spec.budget.maxEnergyKWh used per job; at 100 % the budget action applies.",
                "namespace_job:lepton_job_budget_energy_used:ratio",
            ),
            PanelSpec(
                "Jobs over budget",
                "Jobs whose budget the operator found passed (BudgetExceeded condition; notify, suspend or stop "
                "applied), out of the jobs with a budget.",
                (Query(f"sum(max by (namespace, job) (lepton_job_budget_exceeded{{{NS}}}))", "over budget"),),
                kind="stat",
                unit="short",
                width=6,
                thresholds=((1, "red"),),
            ),
        ),
    ),
    (
        "Energy and power",
        (
            PanelSpec(
                "Node power",
                "Each node's power from the best source: measured (Kepler, DCGM) when available, else the "
                "cost profile's model.",
                (Query("node:lepton_node_power_watts:best", "{{node}}"),),
                unit="watt",
                stacked=True,
            ),
            PanelSpec(
                "Node power by source",
                "Measured and modelled power side by side; a persistent gap means the cost profile needs "
                "calibrating (LeptonPowerModelOff).",
                (Query("max by (node, source) (lepton_node_power_watts)", "{{node}} {{source}}"),),
                unit="watt",
            ),
            PanelSpec(
                "Power by job",
                "Average power attributed to each job (energy counter rate).",
                (
                    Query(
                        f"max by (namespace, job) (rate(lepton_job_energy_joules_total{{{NS}}}[$__rate_interval]))",
                        "{{namespace}}/{{job}}",
                    ),
                ),
                unit="watt",
                stacked=True,
            ),
            PanelSpec(
                "Energy by namespace over the time range",
                "Energy attributed to each namespace's jobs over the dashboard's time range.",
                (
                    Query(
                        "sum by (namespace) (max by (namespace, job) "
                        f"(increase(lepton_job_energy_joules_total{{{NS}}}[$__range]))) / 3600000",
                        "{{namespace}}",
                        instant=True,
                    ),
                ),
                kind="bargauge",
                unit="kwatth",
            ),
            PanelSpec(
                "Facility power by node",
                "IT power times the profile's PUE, from the node energy the operator accounts (summed over "
                "replicas: each counts only while it is the active one).",
                (Query("sum by (node) (rate(lepton_node_energy_joules_total[$__rate_interval]))", "{{node}}"),),
                unit="watt",
                stacked=True,
            ),
            PanelSpec(
                "Power model error by node",
                "(measured - modelled) / modelled node power, where the whole node is measured.",
                (Query("max by (node) (lepton_node_power_model_error_ratio)", "{{node}}"),),
                unit="percentunit",
            ),
        ),
    ),
    (
        "Utilization",
        (
            PanelSpec(
                "Node utilization",
                "Measured / capacity per node and resource (CPU from node_exporter, GPU from DCGM).",
                (Query("max by (node, resource) (lepton_node_utilization_ratio)", "{{node}} {{resource}}"),),
                unit="percentunit",
                max_value=1,
            ),
            PanelSpec(
                "Mean node utilization",
                "Average over nodes of each resource's utilization.",
                (
                    Query(
                        "avg by (resource) (max by (node, resource) (lepton_node_utilization_ratio))",
                        "{{resource}}",
                    ),
                ),
                kind="stat",
                unit="percentunit",
                thresholds=((0.8, "yellow"), (0.95, "red")),
            ),
        ),
    ),
)


# --- Scheduling and health -------------------------------------------------------------------------

SCHEDULING_ROWS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Extender",
        (
            PanelSpec(
                "Requests per second",
                "Filter and prioritize calls from lepton-scheduler.",
                (Query("verb:lepton_extender_requests:rate5m", "{{verb}}"),),
                unit="reqps",
            ),
            PanelSpec(
                "Latency",
                "Median and 99th percentile per verb. lepton-scheduler drops the extender after 2 s "
                "(httpTimeout); the LeptonExtenderSlow alert fires above 0.5 s.",
                (
                    Query("verb:lepton_extender_request_duration_seconds:p50_5m", "p50 {{verb}}"),
                    Query("verb:lepton_extender_request_duration_seconds:p99_5m", "p99 {{verb}}"),
                ),
                unit="s",
            ),
            PanelSpec(
                "Non-2xx answers",
                "Share of calls answered with an error; kube-scheduler ignores the extender for those pods.",
                (Query("verb:lepton_extender_request_errors:ratio_rate5m", "{{verb}}"),),
                unit="percentunit",
            ),
            PanelSpec(
                "Fail-open answers",
                "Calls answered without scores after an internal error (0 when there are none).",
                (
                    Query(
                        "sum by (verb) (rate(lepton_extender_internal_errors_total[$__rate_interval])) or vector(0)",
                        "{{verb}}",
                    ),
                ),
                unit="reqps",
            ),
            PanelSpec(
                "Scheduling decisions",
                "Candidate nodes handled per second by outcome: scored, rejected by the filter, unknown to "
                "the extender, or scored without fresh telemetry (stale).",
                (Query("verb_outcome:lepton_extender_nodes:rate5m", "{{verb}} {{outcome}}"),),
                unit="short",
                stacked=True,
            ),
            PanelSpec(
                "Pending placements",
                "Recent placements counted on top of measured load until telemetry catches up, so a burst "
                "of pods does not pile onto one node.",
                (Query("max(lepton_extender_pending_placements)", "pending"),),
                unit="short",
            ),
        ),
    ),
    (
        "Telemetry",
        (
            PanelSpec(
                "Telemetry age",
                "Age of the telemetry the extender scores with; LeptonTelemetryStale fires above 5 minutes.",
                (Query("max(lepton_extender_telemetry_age_seconds)", "age"),),
                kind="stat",
                unit="s",
                width=6,
                thresholds=((120, "yellow"), (300, "red")),
            ),
            PanelSpec(
                "Nodes known to the extender",
                "Nodes in the extender's in-memory snapshot.",
                (Query("max(lepton_extender_snapshot_nodes)", "nodes"),),
                kind="stat",
                unit="short",
                width=6,
            ),
            PanelSpec(
                "Telemetry errors",
                "Failed telemetry polls (extender) and failed queries (operator accounting) per second.",
                (
                    Query(
                        "sum(rate(lepton_extender_telemetry_fetch_errors_total[$__rate_interval]))", "extender polls"
                    ),
                    Query(
                        "sum by (query) (rate(lepton_accounting_telemetry_query_errors_total[$__rate_interval])) "
                        "or vector(0)",
                        "accounting {{query}}",
                    ),
                ),
                unit="short",
            ),
        ),
    ),
    (
        "Cost accounting",
        (
            PanelSpec(
                "Accounting tick duration",
                "Wall time of the latest accounting tick per operator replica (inventory, telemetry, accounting).",
                (Query("lepton_accounting_tick_duration_seconds", "{{instance}}"),),
                unit="s",
            ),
            PanelSpec(
                "Status writes",
                "LeptonJob status writes per second by outcome; conflicts are re-read and retried.",
                (
                    Query(
                        "sum by (outcome) (rate(lepton_accounting_status_writes_total[$__rate_interval]))",
                        "{{outcome}}",
                    ),
                ),
                unit="short",
                stacked=True,
            ),
            PanelSpec(
                "Nodes costed without telemetry",
                "Nodes whose latest window was estimated from the model on requests.",
                (Query("max(lepton_accounting_estimated_nodes)", "nodes"),),
                kind="stat",
                unit="short",
                width=6,
                thresholds=((1, "yellow"),),
            ),
            PanelSpec(
                "Jobs with lagging status",
                "Jobs whose status.cost lags their live cost (status writes are rate-limited).",
                (Query("max(lepton_accounting_pending_status_jobs)", "jobs"),),
                kind="stat",
                unit="short",
                width=6,
            ),
            PanelSpec(
                "Replicas accounting",
                "Operator replicas accounting cost now: 1 (the active kopf peer; standbys idle). 0 means nothing "
                "accounts; 2 or more, replicas that do not see each other's peering "
                "(LeptonAccountingReplicasConflict).",
                (Query("sum(lepton_accounting_active)", "replicas"),),
                kind="stat",
                unit="short",
                width=6,
                thresholds=((2, "red"),),
            ),
        ),
    ),
)


def dashboards() -> dict[str, dashboard.Dashboard]:
    """File name -> dashboard builder."""
    return {
        "lepton-cost.json": build_dashboard(
            "lepton-cost",
            "Lepton / Cost and energy",
            "What the cluster, each namespace and each LeptonJob cost, and the power and energy behind it.",
            COST_ROWS,
            namespaced=True,
        ),
        "lepton-scheduling.json": build_dashboard(
            "lepton-scheduling",
            "Lepton / Scheduling and health",
            "The scheduler extender's traffic, latency and decisions, telemetry freshness, and the health of "
            "cost accounting.",
            SCHEDULING_ROWS,
            namespaced=False,
        ),
    }


def render(board: dashboard.Dashboard) -> str:
    """Stable JSON text: sorted keys and a trailing newline, so the committed files diff cleanly."""
    return json.dumps(json.loads(json.dumps(board.build(), cls=JSONEncoder)), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON is out of date")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help=f"output directory (default {OUTPUT_DIR})")
    args = parser.parse_args(argv)
    stale = []
    for name, board in dashboards().items():
        path = args.out / name
        text = render(board)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print("out of date (run python hack/dashboards.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
