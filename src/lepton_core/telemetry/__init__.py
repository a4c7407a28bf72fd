"""Telemetry: the only code in Lepton that talks to Prometheus.

The types here are what every consumer sees: typed, time-stamped, per-node values. Consumers (the
extender's background refresher, the operator's accounting loop) never see PromQL or HTTP.
``lepton_core.telemetry.prometheus`` fetches them; tests and the static inventory mode build them
directly.
"""

from lepton_core.telemetry.types import NodeTelemetry, PowerSource, TelemetrySnapshot

__all__ = ["NodeTelemetry", "PowerSource", "TelemetrySnapshot"]
