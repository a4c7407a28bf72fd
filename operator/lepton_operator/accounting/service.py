"""Start-up wiring: accounting as an extension of the operator (``lepton_operator.app.OperatorHooks``).

``install(hooks)`` registers three hooks: at startup it builds ``AccountingSettings`` from the
command-line options, the telemetry fetcher and the ``AccountingLoop`` (on the operator's own API
client) and adds the accounting collector to the operator's ``/metrics`` registry; in the background
it runs the loop while this replica is the active kopf peer (``OperatorContext.activity``); at cleanup
it stops the loop and writes every job's pending windows, so a graceful restart leaves nothing for the
next process to recompute. Neighbours: ``loop``, ``cli`` (the flags),
``lepton_operator.metrics`` (the collector).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lepton_core.models.attribution import AttributionPolicy
from lepton_core.profiles import load_profile_set
from lepton_core.telemetry.identity import STRIP_PORT, NodeIdentity, RelabelRule
from lepton_core.telemetry.prometheus import MetricSources, PrometheusSettings, TelemetryFetcher
from lepton_operator.accounting.kube import KubeApi
from lepton_operator.accounting.loop import AccountingLoop
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.metrics import AccountingCollector

log = logging.getLogger("lepton.accounting")


def settings_from_options(options: Mapping[str, Any]) -> AccountingSettings:
    """``AccountingSettings`` from parsed flags (``cli.add_arguments``); ValueError names the flag."""
    rules = []
    for raw in options.get("prometheus_node_relabel") or ():
        regex, sep, replacement = str(raw).partition("=")
        if not sep:
            raise ValueError(f"--prometheus-node-relabel: expected REGEX=REPLACEMENT, got {raw!r}")
        rules.append(RelabelRule(regex, replacement))
    identity = NodeIdentity(rules=tuple(rules) or (STRIP_PORT,))
    url = options.get("prometheus_url")
    policy = AttributionPolicy(options.get("attribution") or AttributionPolicy.DOMINANT_REQUEST.value)
    # Per-pod series cost queries every tick; read them only when attribution uses them.
    sources = (
        MetricSources() if policy is AttributionPolicy.MEASURED_USAGE else MetricSources(pod_cpu=None, pod_power=None)
    )
    prometheus = PrometheusSettings(str(url), identity=identity, sources=sources) if url else None
    return AccountingSettings(
        interval_seconds=float(options.get("accounting_interval") or 30.0),
        max_writes_per_second=float(options.get("accounting_max_writes_per_second") or 50.0),
        prometheus=prometheus,
        attribution=policy,
    )


def install(hooks: Any) -> None:
    """Register accounting with the operator (called by ``lepton_operator.app.load_extensions``)."""
    options = hooks.settings.extension_options
    if options.get("accounting") is False:
        return
    state: dict[str, Any] = {}

    async def startup(context: Any) -> None:
        settings = settings_from_options(options)
        profiles_path = options.get("cost_profiles")
        profiles = load_profile_set(Path(profiles_path) if profiles_path else None)
        fetcher = TelemetryFetcher(settings.prometheus) if settings.prometheus is not None else None
        loop = AccountingLoop(KubeApi(context.kube), profiles, settings, fetcher)
        context.metrics.register(AccountingCollector(loop.view))
        state["loop"] = loop
        log.info(
            "live cost accounting every %.0f s, telemetry from %s",
            settings.interval_seconds,
            settings.prometheus.url if settings.prometheus else "the model on requests (no --prometheus-url)",
        )

    async def background(context: Any) -> None:
        # Only the active kopf peer accounts; a standby idles (no LISTs, no writes) until it takes over.
        await state["loop"].run(activity=context.activity)

    async def cleanup(_context: Any) -> None:
        loop: AccountingLoop | None = state.get("loop")
        if loop is None:
            return
        loop.stop()
        try:
            await loop.flush_all()
        except Exception:  # shutting down: log, never block the operator's exit
            log.exception("could not write pending accounting windows at shutdown")
        await loop.close()

    hooks.on_startup(startup)
    hooks.in_background(background)
    hooks.on_cleanup(cleanup)
