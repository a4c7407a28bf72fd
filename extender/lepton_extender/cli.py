"""``lepton extender``: run the scheduler extender (flags -> ``ExtenderSettings`` -> ``app.create_app``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from pathlib import Path

from lepton_core.cli_types import fraction, name_value, non_negative_float, positive_float
from lepton_core.scoring import Preset, ScoringPolicy, ScoringWeights
from lepton_extender.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, ExtenderSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "extender",
        help="run the kube-scheduler extender (filter/prioritize by load and power cost)",
        description=(
            "Serve kube-scheduler's extender protocol: POST /filter and /prioritize, plus /healthz, /readyz, "
            "/metrics and /debug/decisions. Watches the cluster (in-cluster config or kubeconfig) unless "
            "--inventory is given."
        ),
        epilog="example: lepton extender --inventory nodes.json --port 8888 --preset cost",
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--inventory", type=Path, help="static nodes (kubectl get nodes -o json) or a v1.List of nodes and pods"
    )
    p.add_argument("--profiles", type=Path, help="cost profile file (default: the shipped profiles)")
    p.add_argument("--prometheus-url", help="Prometheus base URL for telemetry (default: none, fail-open scoring)")
    p.add_argument(
        "--preset", choices=[x.value for x in Preset], default=Preset.COST.value, help="scoring preset (default cost)"
    )
    p.add_argument(
        "--weight",
        type=name_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one preset weight (cost, fixed_share, keep_alive, overload_risk, balance, pack); repeatable",
    )
    p.add_argument(
        "--max-utilization",
        type=fraction,
        default=0.95,
        help="filter: reject when predicted CPU/GPU utilization after placement exceeds this (default 0.95)",
    )
    p.add_argument(
        "--soft-utilization",
        type=fraction,
        default=0.75,
        help="overload risk starts above this predicted utilization (default 0.75)",
    )
    p.add_argument(
        "--stale-after-seconds",
        type=positive_float,
        default=120.0,
        help="telemetry older than this is stale (default 120)",
    )
    p.add_argument(
        "--fail-closed",
        action="store_true",
        help="filter out nodes with stale telemetry instead of keeping them (default: fail-open)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest accepted request body (default {DEFAULT_MAX_BODY_BYTES})",
    )
    p.add_argument(
        "--telemetry-interval-seconds", type=positive_float, default=15.0, help="telemetry poll period (default 15)"
    )
    p.add_argument(
        "--assume-ttl-seconds",
        type=positive_float,
        default=30.0,
        help="drop an assumed placement not bound within this time (default 30)",
    )
    p.add_argument(
        "--settle-seconds",
        type=positive_float,
        default=60.0,
        help="count a placement as pending until telemetry observed this long after it (default 60)",
    )
    p.add_argument(
        "--decision-log-per-second",
        type=positive_float,
        default=100.0,
        help="at most this many decision log lines per second; the rest are counted (default 100)",
    )
    p.add_argument(
        "--relayout-interval-seconds",
        type=non_negative_float,
        default=60.0,
        help="check this often whether to lay the scoring arrays out in kube-scheduler's candidate order "
        "(0: never; default 60)",
    )
    p.add_argument(
        "--event-loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop (default auto: uvloop where installed, else asyncio's)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(handler=_run)


def settings_from_args(args: argparse.Namespace) -> ExtenderSettings:
    weights = ScoringWeights.preset(args.preset).with_overrides(dict(args.weight))
    policy = ScoringPolicy(
        weights=weights,
        max_utilization=args.max_utilization,
        soft_utilization=args.soft_utilization,
        stale_after_seconds=args.stale_after_seconds,
        fail_open=not args.fail_closed,
    )
    return ExtenderSettings(
        host=args.host,
        port=args.port,
        policy=policy,
        max_body_bytes=args.max_body_bytes,
        inventory=args.inventory,
        profiles=args.profiles,
        prometheus_url=args.prometheus_url,
        telemetry_interval_seconds=args.telemetry_interval_seconds,
        assume_ttl_seconds=args.assume_ttl_seconds,
        settle_seconds=args.settle_seconds,
        event_loop=args.event_loop,
        decision_log_per_second=args.decision_log_per_second,
        relayout_interval_seconds=args.relayout_interval_seconds,
    )


GC_THRESHOLDS = (20_000, 50, 50)
"""The extender process's cyclic-collector thresholds (``gc.set_threshold``; Python's are 700, 10, 10)."""


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)  # ValueError -> one clear line from lepton_cli.main
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Imported here so `lepton --help` does not pay for aiohttp.
    from aiohttp import web  # noqa: PLC0415

    from lepton_extender.app import create_app  # noqa: PLC0415
    from lepton_extender.inventory import load_inventory  # noqa: PLC0415

    if settings.inventory is not None:
        load_inventory(settings.inventory)  # fail fast with a clear message, before binding the port
    # The process is the extender's alone: a request allocates a few hundred objects (its Pod's JSON alone
    # ~100), so the default young-generation threshold (700) ran the cyclic collector every few requests,
    # each time through code gone cold between requests. Measured (bench/extender_bench.py's servers, A/B
    # in one run): 813 -> 747 µs of CPU per prioritize, p99 2.35 -> 1.95 ms. (The app also freezes its
    # first list, which is for good, out of the collector's sight.)
    gc.set_threshold(*GC_THRESHOLDS)
    app = create_app(settings)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None, loop=_event_loop(settings))
    return 0


def _event_loop(settings: ExtenderSettings) -> asyncio.AbstractEventLoop | None:
    """The loop ``settings.event_loop`` asks for (None: aiohttp's default, the standard asyncio loop)."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        if settings.event_loop == "uvloop":
            raise ValueError("--event-loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop()
