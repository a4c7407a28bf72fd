"""The operator's Prometheus metrics: one custom Collector that builds every family at scrape time.

All names, labels, units and help texts come from ``lepton_core.metrics_names`` (documented in
docs/metrics.md). Values come from ``AccountingLoop.view()``, an immutable snapshot replaced after every
tick, so a scrape never sees half a tick and never waits on the API server:

* jobs: ``lepton_job_cost_total{namespace,job,component,currency}`` (hardware, energy, operations),
  ``lepton_job_energy_joules_total``, ``lepton_job_cost_per_hour``, ``lepton_job_cost_estimated``; live
  (ledger + windows not yet written), and kept after a job is deleted for the configured retention;
  budgets: ``lepton_job_budget_cost``, ``lepton_job_budget_energy_joules`` (``spec.budget``, which the
  budget recording rules and alerts divide by) and ``lepton_job_budget_exceeded``;
* nodes: ``lepton_node_power_watts{node,source}`` (the measured source and ``model``, so the model's
  discrepancy is visible; also ``lepton_node_power_model_error_ratio``), ``lepton_node_utilization_ratio``,
  ``lepton_node_cost_per_hour``, ``lepton_idle_cost_total``, ``lepton_node_cost_total``,
  ``lepton_node_energy_joules_total``, ``lepton_other_pods_cost_total``, and what ``spec.costProfile``
  re-priced (``lepton_node_repricing_cost``, ``lepton_node_repricing_energy_joules``: gauges, the net can
  fall);
* OpenCost-compatible ``node_total_hourly_cost``, ``node_cpu_hourly_cost`` (per core-hour),
  ``node_ram_hourly_cost`` (per GiB-hour) and ``node_gpu_hourly_cost`` (per GPU-hour), so existing cost
  dashboards work. The GPU part is the GPUs' share of the hardware plus their modelled share of the
  power; the rest is split between CPU and RAM in OpenCost's default price ratio (0.031611 per
  core-hour : 0.004237 per GiB-hour);
* the loop's health: tick duration, status writes by outcome, telemetry query errors, estimated nodes,
  jobs whose status lags, and ``lepton_accounting_active`` (1 on the replica that accounts; a standby
  shows 0 and no job or node series, so HA replicas never disagree in Prometheus).

The operator serves its registry on ``/metrics`` (port 8080, ``--metrics-port``; ``lepton_operator.exposition``);
accounting adds this collector to it at start-up (``lepton_operator.accounting.service``). Neighbours:
``lepton_operator.accounting.loop`` (the view).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lepton_core import metrics_names as mn
from lepton_core.accounting.pipeline import Source
from lepton_core.units import JOULES_PER_KWH
from lepton_operator.accounting.loop import AccountingView

COMPONENTS = ("hardware", "energy", "operations")
OPENCOST_CPU_PER_CORE_HOUR = 0.031611
OPENCOST_RAM_PER_GIB_HOUR = 0.004237


def _counter(name: mn.MetricName) -> CounterMetricFamily:
    # prometheus_client appends ``_total`` itself.
    return CounterMetricFamily(name.name.removesuffix("_total"), name.help, labels=list(name.labels))


def _gauge(name: mn.MetricName) -> GaugeMetricFamily:
    return GaugeMetricFamily(name.name, name.help, labels=list(name.labels))


def _single(name: mn.MetricName, value: float) -> GaugeMetricFamily:
    """A gauge without labels holding one value."""
    gauge = _gauge(name)
    gauge.add_metric([], value)
    return gauge


def _add_components(
    family: CounterMetricFamily | GaugeMetricFamily, keys: list[str], values: Iterable[float], currency: str
) -> None:
    """One sample per cost component (``COMPONENTS`` order), labelled ``keys + [component, currency]``."""
    for component, value in zip(COMPONENTS, values, strict=True):
        family.add_metric([*keys, component, currency], float(value))


class AccountingCollector(Collector):
    """Builds the accounting metric families from the loop's latest view at scrape time."""

    def __init__(self, view: Callable[[], AccountingView]) -> None:
        self._view = view

    def collect(self) -> Iterable[Metric]:
        v = self._view()
        yield from self._jobs(v)
        yield from self._nodes(v)
        yield from self._health(v)

    def _jobs(self, v: AccountingView) -> Iterable[Metric]:
        cost = _counter(mn.JOB_COST_TOTAL)
        joules = _counter(mn.JOB_ENERGY_JOULES_TOTAL)
        rate = _gauge(mn.JOB_COST_PER_HOUR)
        est = _gauge(mn.JOB_COST_ESTIMATED)
        budget_cost = _gauge(mn.JOB_BUDGET_COST)
        budget_joules = _gauge(mn.JOB_BUDGET_ENERGY_JOULES)
        exceeded = _gauge(mn.JOB_BUDGET_EXCEEDED)
        for (ns, name), job in sorted(v.jobs.items()):
            money = job.amounts.cost()
            _add_components(cost, [ns, name], (money.hardware, money.energy, money.operations), v.currency)
            joules.add_metric([ns, name], job.amounts.joules)
            rate.add_metric([ns, name, v.currency], job.per_hour)
            est.add_metric([ns, name], 1.0 if job.estimated else 0.0)
            if job.budget is not None:
                if job.budget.max_cost is not None:
                    budget_cost.add_metric([ns, name, v.currency], job.budget.max_cost)
                if job.budget.max_energy_kwh is not None:
                    budget_joules.add_metric([ns, name], job.budget.max_energy_kwh * JOULES_PER_KWH)
                exceeded.add_metric([ns, name], 1.0 if job.budget_exceeded else 0.0)
        yield from (cost, joules, rate, est, budget_cost, budget_joules, exceeded)

    def _nodes(self, v: AccountingView) -> Iterable[Metric]:
        power = _gauge(mn.NODE_POWER_WATTS)
        error = _gauge(mn.NODE_POWER_MODEL_ERROR_RATIO)
        util = _gauge(mn.NODE_UTILIZATION_RATIO)
        per_hour = _gauge(mn.NODE_COST_PER_HOUR)
        total_h = _gauge(mn.NODE_TOTAL_HOURLY_COST)
        cpu_h = _gauge(mn.NODE_CPU_HOURLY_COST)
        ram_h = _gauge(mn.NODE_RAM_HOURLY_COST)
        gpu_h = _gauge(mn.NODE_GPU_HOURLY_COST)
        table, acc = v.nodes, v.last_window
        if table is not None and acc is not None and len(table) == acc.power_watts.size:
            gpu_watts = table.power.gpu_watts(acc.utilization[:, 1]) * table.power.pue
            for i, node in enumerate(table.names):
                src = Source(int(acc.source[i]))
                watts = float(acc.power_watts[i])
                model = float(acc.model_watts[i])
                if src in (Source.MODEL, Source.ESTIMATED):
                    power.add_metric([node, "model"], watts)
                else:
                    power.add_metric([node, src.power_source.value], watts)
                    if math.isfinite(model):
                        power.add_metric([node, "model"], model)
                measured = float(acc.measured_watts[i])
                if math.isfinite(measured) and math.isfinite(model) and model > 0.0:
                    error.add_metric([node], (measured - model) / model)
                util.add_metric([node, "cpu"], float(acc.utilization[i, 0]))
                if table.allocatable[i, 2] > 0:
                    util.add_metric([node, "nvidia.com/gpu"], float(acc.utilization[i, 1]))
                rates = acc.node_rate_per_hour[i]
                _add_components(per_hour, [node], rates, v.currency)
                itype = v.instance_types[i] if i < len(v.instance_types) else ""
                total = float(rates.sum())
                total_h.add_metric([node, itype], total)
                cores, mem_gib, gpus = table.allocatable[i, 0], table.allocatable[i, 1] / 2**30, table.allocatable[i, 2]
                gpu_part = 0.0
                if gpus > 0:
                    hw_frac = float(v.gpu_hardware_fraction[i]) if i < v.gpu_hardware_fraction.size else 0.0
                    power_frac = float(gpu_watts[i] / watts) if watts > 0 else 0.0
                    gpu_part = (rates[0] + rates[2]) * hw_frac + rates[1] * min(1.0, power_frac)
                    gpu_h.add_metric([node, itype], gpu_part / gpus)
                rest = max(0.0, total - gpu_part)
                cpu_w, ram_w = cores * OPENCOST_CPU_PER_CORE_HOUR, mem_gib * OPENCOST_RAM_PER_GIB_HOUR
                if cpu_w + ram_w > 0:
                    if cores > 0:
                        cpu_h.add_metric([node, itype], rest * cpu_w / (cpu_w + ram_w) / cores)
                    if mem_gib > 0:
                        ram_h.add_metric([node, itype], rest * ram_w / (cpu_w + ram_w) / mem_gib)
        yield from (power, error, util, per_hour, total_h, cpu_h, ram_h, gpu_h)
        idle = _counter(mn.IDLE_COST_TOTAL)
        node_cost = _counter(mn.NODE_COST_TOTAL)
        node_joules = _counter(mn.NODE_ENERGY_JOULES_TOTAL)
        other = _counter(mn.OTHER_PODS_COST_TOTAL)
        repricing = _gauge(mn.NODE_REPRICING_COST)
        repricing_joules = _gauge(mn.NODE_REPRICING_ENERGY_JOULES)
        t = v.totals
        repriced, repriced_joules = t.repricing, t.repricing_joules
        for node in sorted(t.cost):
            idle.add_metric([node, v.currency], float(np.sum(t.idle[node])))
            other.add_metric([node, v.currency], float(np.sum(t.other[node])))
            _add_components(node_cost, [node], t.cost[node], v.currency)
            node_joules.add_metric([node], t.joules[node])
            if np.any(repriced[node] != 0.0) or repriced_joules[node] != 0.0:  # only where a job was re-priced
                _add_components(repricing, [node], repriced[node], v.currency)
                repricing_joules.add_metric([node], repriced_joules[node])
        yield from (idle, node_cost, node_joules, other, repricing, repricing_joules)

    def _health(self, v: AccountingView) -> Iterable[Metric]:
        yield _single(mn.ACCOUNTING_TICK_DURATION_SECONDS, v.tick_seconds)
        writes = _counter(mn.ACCOUNTING_STATUS_WRITES_TOTAL)
        for outcome, count in sorted(v.writes.items()):
            writes.add_metric([outcome], float(count))
        yield writes
        errors = _counter(mn.ACCOUNTING_TELEMETRY_ERRORS_TOTAL)
        for query, count in sorted(v.telemetry_errors.items()):
            errors.add_metric([query], float(count))
        yield errors
        yield _single(mn.ACCOUNTING_ESTIMATED_NODES, float(v.estimated_nodes))
        yield _single(mn.ACCOUNTING_PENDING_JOBS, float(v.pending_jobs))
        yield _single(mn.ACCOUNTING_ACTIVE, 1.0 if v.active else 0.0)


def accounting_registry(view: Callable[[], AccountingView]) -> CollectorRegistry:
    """A private registry holding only the accounting collector (one per loop; tests make their own)."""
    registry = CollectorRegistry()
    registry.register(AccountingCollector(view))
    return registry
