"""Every PromQL query Lepton runs: named, parameterised constants, and the metric names they read.

A ``PromQL`` constant is a template with named holes (``{metric}``, ``{matchers}``, ``{node_label}``,
``{window}``, …); the fetcher (``lepton_core.telemetry.prometheus``) fills them from a ``MetricVariant``.
Metric names differ between exporter versions and deployments, so each *source* (a ``MetricSource``)
lists its variants in order of preference; the fetcher runs them all concurrently and, per node, uses
the first variant that answered. Defaults cover node_exporter, DCGM, Kepler's legacy (≤ 0.7) and
0.10+ names, and cAdvisor; a deployment overrides them in ``TelemetryConfig`` (settings read once).

Pure: no I/O here. Neighbours: ``identity`` (label value -> Kubernetes node name), ``prometheus``
(HTTP and parsing), ``types`` (what comes out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from lepton_core.telemetry.types import Signal

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True, slots=True)
class PromQL:
    """A named PromQL template. Holes are ``str.format`` fields; literal braces are doubled."""

    name: str
    template: str
    description: str

    def render(self, **params: str) -> str:
        return self.template.format(**params)


# --- The queries ------------------------------------------------------------------------------------
# Rates use the window since the previous accounting tick, so a counter's rate is the exact mean over
# the interval the accounting charges (see lepton_operator.accounting).

NODE_CPU_BUSY_RATIO: Final = PromQL(
    "node_cpu_busy_ratio",
    '1 - avg by ({node_label}) (rate({metric}{{mode="idle"{and_matchers}}}[{window}]))',
    "Busy CPU fraction per node: one minus the mean idle rate over all CPUs (node_exporter).",
)
# Gauges are averaged over the window too (avg_over_time), so a change inside the window is weighted by
# how long it held rather than charged for the whole window from one sample.
GPU_UTILIZATION_RATIO: Final = PromQL(
    "gpu_utilization_ratio",
    "avg by ({node_label}) (avg_over_time({metric}{{{matchers}}}[{window}])) * {scale}",
    "Mean GPU duty cycle per node over its GPUs and the window (DCGM reports percent; scale makes a ratio).",
)
GPU_POWER_WATTS: Final = PromQL(
    "gpu_power_watts",
    "sum by ({node_label}) (avg_over_time({metric}{{{matchers}}}[{window}])) * {scale}",
    "Sum of the GPUs' mean board power per node over the window (DCGM, watts).",
)
NODE_ENERGY_WATTS: Final = PromQL(
    "node_power_watts",
    "sum by ({node_label}) (rate({metric}{{{matchers}}}[{window}])) * {scale}",
    "Mean node power over the window from an energy counter in joules (Kepler).",
)
POD_CPU_CORES: Final = PromQL(
    "pod_cpu_cores",
    "sum by ({node_label}, {namespace_label}, {pod_label}) (rate({metric}{{{matchers}}}[{window}])) * {scale}",
    "Mean CPU cores used per pod over the window (cAdvisor).",
)
POD_ENERGY_WATTS: Final = PromQL(
    "pod_power_watts",
    "sum by ({node_label}, {namespace_label}, {pod_label}) (rate({metric}{{{matchers}}}[{window}])) * {scale}",
    "Mean pod power over the window from Kepler's pod or container energy counters.",
)
SAMPLE_FRESHNESS: Final = PromQL(
    "sample_time_seconds",
    "max by ({node_label}) (timestamp({metric}{{{matchers}}}))",
    "Unix time of each node's newest raw sample of a metric: staleness is judged from it.",
)

ALL_QUERIES: Final = (
    NODE_CPU_BUSY_RATIO,
    GPU_UTILIZATION_RATIO,
    GPU_POWER_WATTS,
    NODE_ENERGY_WATTS,
    POD_CPU_CORES,
    POD_ENERGY_WATTS,
    SAMPLE_FRESHNESS,
)


@dataclass(frozen=True, slots=True)
class MetricVariant:
    """One spelling of a source's metric: its name, extra label matchers and label names."""

    metric: str
    node_label: str = "instance"
    """The label that identifies the node; its values go through ``identity.NodeIdentity``."""
    matchers: str = ""
    """Extra PromQL label matchers without braces, e.g. ``zone=~"package|dram"``."""
    scale: float = 1.0
    """Multiplier into Lepton's unit (DCGM percent -> ratio: 0.01)."""
    namespace_label: str = "namespace"
    pod_label: str = "pod"
    includes_gpu: bool = True
    """Node energy only: whether this counter already covers the GPUs' power."""

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.metric):
            raise ValueError(f"metric: {self.metric!r} is not a Prometheus metric name")
        for what, label in (
            ("node_label", self.node_label),
            ("namespace_label", self.namespace_label),
            ("pod_label", self.pod_label),
        ):
            if not _LABEL_NAME.match(label):
                raise ValueError(f"{what}: {label!r} is not a Prometheus label name")
        if "{" in self.matchers or "}" in self.matchers:
            raise ValueError(f"matchers: give label matchers without braces (got {self.matchers!r})")

    def params(self, window: str) -> dict[str, str]:
        return {
            "metric": self.metric,
            "matchers": self.matchers,
            "and_matchers": f", {self.matchers}" if self.matchers else "",
            "node_label": self.node_label,
            "namespace_label": self.namespace_label,
            "pod_label": self.pod_label,
            "window": window,
            "scale": repr(float(self.scale)),
        }


@dataclass(frozen=True, slots=True)
class MetricSource:
    """A signal, the query that computes it and its metric variants in order of preference."""

    signal: Signal
    query: PromQL
    variants: tuple[MetricVariant, ...]

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError(f"{self.signal}: a metric source needs at least one variant")


def node_exporter_cpu() -> MetricSource:
    return MetricSource(
        Signal.CPU_UTILIZATION, NODE_CPU_BUSY_RATIO, (MetricVariant("node_cpu_seconds_total", node_label="instance"),)
    )


def dcgm_gpu_utilization() -> MetricSource:
    return MetricSource(
        Signal.GPU_UTILIZATION,
        GPU_UTILIZATION_RATIO,
        (MetricVariant("DCGM_FI_DEV_GPU_UTIL", node_label="Hostname", scale=0.01),),
    )


def dcgm_gpu_power() -> MetricSource:
    return MetricSource(
        Signal.GPU_POWER, GPU_POWER_WATTS, (MetricVariant("DCGM_FI_DEV_POWER_USAGE", node_label="Hostname"),)
    )


def kepler_node_power() -> MetricSource:
    """Kepler 0.10+ first (RAPL package + DRAM zones, no GPUs), then the legacy platform counter."""
    return MetricSource(
        Signal.NODE_POWER,
        NODE_ENERGY_WATTS,
        (
            MetricVariant(
                "kepler_node_cpu_joules_total",
                node_label="node_name",
                matchers='zone=~"package|dram"',
                includes_gpu=False,
            ),
            # Legacy Kepler (<= 0.7): the platform counter is split by mode (dynamic + idle); the
            # sum is the node's wall energy from ACPI/IPMI, GPUs included.
            MetricVariant("kepler_node_platform_joules_total", node_label="instance", includes_gpu=True),
        ),
    )


def cadvisor_pod_cpu() -> MetricSource:
    return MetricSource(
        Signal.POD_CPU,
        POD_CPU_CORES,
        (MetricVariant("container_cpu_usage_seconds_total", node_label="node", matchers='container!=""'),),
    )


def kepler_pod_power() -> MetricSource:
    return MetricSource(
        Signal.POD_POWER,
        POD_ENERGY_WATTS,
        (
            MetricVariant(
                "kepler_pod_cpu_joules_total",
                node_label="node_name",
                matchers='zone=~"package|dram"',
                namespace_label="pod_namespace",
                pod_label="pod_name",
            ),
            MetricVariant(
                "kepler_container_joules_total",
                node_label="instance",
                namespace_label="container_namespace",
                pod_label="pod_name",
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class MetricSources:
    """All the sources the fetcher reads; replace any one to match a deployment's exporters."""

    cpu: MetricSource = field(default_factory=node_exporter_cpu)
    gpu_utilization: MetricSource = field(default_factory=dcgm_gpu_utilization)
    gpu_power: MetricSource = field(default_factory=dcgm_gpu_power)
    node_power: MetricSource = field(default_factory=kepler_node_power)
    pod_cpu: MetricSource | None = field(default_factory=cadvisor_pod_cpu)
    """None: do not query per-pod CPU (the accounting then attributes by requests only)."""
    pod_power: MetricSource | None = field(default_factory=kepler_pod_power)

    def node_sources(self) -> tuple[MetricSource, ...]:
        return (self.cpu, self.gpu_utilization, self.gpu_power, self.node_power)

    def pod_sources(self) -> tuple[MetricSource, ...]:
        return tuple(s for s in (self.pod_cpu, self.pod_power) if s is not None)


def promql_duration(seconds: float) -> str:
    """A PromQL duration for a window in seconds, to the millisecond (``30s``, ``1500ms``)."""
    if not seconds > 0.0:
        raise ValueError(f"a query window must be positive (got {seconds!r} s)")
    ms = max(1, round(seconds * 1000.0))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
