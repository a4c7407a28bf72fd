"""Telemetry: the only code in Lepton that talks to Prometheus.

The types here are what every consumer sees: typed, time-stamped, per-node values. Consumers (the
extender's background refresher, the operator's accounting loop) never see PromQL or HTTP.
``lepton_core.telemetry.prometheus`` fetches them (queries in ``promql``, node names through
``identity``); tests and the static inventory mode build them directly. This package's ``__init__``
imports only the pure types, so importing it costs no aiohttp.
"""

from lepton_core.telemetry.types import (
    NodeTelemetry,
    PodTelemetry,
    PowerSource,
    QueryReport,
    Signal,
    TelemetrySnapshot,
)

__all__ = ["NodeTelemetry", "PodTelemetry", "PowerSource", "QueryReport", "Signal", "TelemetrySnapshot"]
