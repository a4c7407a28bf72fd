"""Helpers shared by the monitoring and dashboard tests: the rule groups, the series Lepton exports, the
metric names a PromQL expression reads, and promtool.

Neighbours: ``deploy/monitoring/prometheusrule.yaml`` (rules), ``lepton_core.metrics_names`` (exports),
``test_monitoring.py`` and ``test_dashboards.py`` (users).
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from lepton_core import metrics_names as mn
from tests.deploy.conftest import DEPLOY, Manifest, one, render

# Series rules or dashboards may read before an exporter has them (none now: the budget gauges
# lepton_job_budget_cost and lepton_job_budget_energy_joules are exported by the operator). A name listed
# here must not be exported yet (test_monitoring checks), and live panels over it must still return data.
PROPOSED_METRICS: frozenset[str] = frozenset()
# PromQL keywords that look like metric names to the scan below (function calls are dropped by shape).
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "or",
    "and",
    "unless",
    "bool",
    "offset",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found (Debian package prometheus; .ci/run installs it)")
    return path


def prometheus_rule() -> Manifest:
    return one(render(DEPLOY / "monitoring"), "PrometheusRule", "lepton")


def rule_groups() -> dict[str, Any]:
    groups: dict[str, Any] = prometheus_rule()["spec"]
    return groups


def metric_names_in(expr: str) -> set[str]:
    """Metric-like identifiers in a PromQL expression (label names, strings, functions and keywords excluded)."""
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_groupings)
    without_calls = re.sub(r"[a-zA-Z_][a-zA-Z0-9_]*\s*\(", "(", without_ranges)  # functions and aggregations
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_calls))
    return {w for w in words if w not in _PROMQL_WORDS}


def exported_series() -> set[str]:
    """Series names Lepton's exporters produce (histograms expand to their three series)."""
    names: set[str] = set()
    for value in vars(mn).values():
        if isinstance(value, mn.MetricName):
            if value.kind == "histogram":
                names |= {f"{value.name}_bucket", f"{value.name}_count", f"{value.name}_sum"}
            else:
                names.add(value.name)
    return names
