"""``lepton operator``: run the LeptonJob operator (kopf) against the cluster in your kubeconfig.

Kept import-light (kopf is imported only when the command runs) because ``lepton`` builds every
component's parser on each invocation. Extensions may add flags from an import-light ``<module>.cli``
exposing ``add_arguments(parser)``; their values reach them as ``OperatorSettings.extension_options``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
from typing import Any

from lepton_operator.crd import DEFAULT_SCHEDULER_NAME

_EXTENSION_CLIS = ("lepton_operator.accounting.cli",)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "operator",
        help="run the LeptonJob operator",
        description="Run the LeptonJob operator: worker pods (scheduler "
        f"{DEFAULT_SCHEDULER_NAME} by default), gang start, retries, suspend/resume, deadlines, TTL, events; "
        "credentials from the service account, $KUBECONFIG or ~/.kube/config.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="serve this namespace (repeatable); default: all namespaces",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="serve all namespaces (the default)")
    parser.add_argument(
        "--standalone", action="store_true", help="no peering with other replicas (single replica or development)"
    )
    parser.add_argument(
        "--peering",
        metavar="NAME",
        default=None,
        help="KopfPeering object to coordinate replicas through (required to exist when given)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=0,
        help="peering priority: the live replica with the highest is active (default 0)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=60,
        metavar="SECONDS",
        help="a silent replica is presumed dead after this long (default 60)",
    )
    parser.add_argument(
        "--liveness", metavar="URL", default=None, help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8080, help="port of /metrics (default 8080; 0 = any free port; -1 = off)"
    )
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address of /metrics (default 0.0.0.0)")
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=60.0,
        help="re-check every unfinished job at least this often (default 60)",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=64,
        help="bound on the operator's in-flight API requests (default 64)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log kopf's debug messages")
    for name in _EXTENSION_CLIS:
        if _module_exists(name):
            importlib.import_module(name).add_arguments(parser)
    parser.set_defaults(handler=_run)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _run(args: argparse.Namespace) -> int:
    if args.metrics_port < -1 or args.metrics_port > 65535:
        raise ValueError(f"--metrics-port: {args.metrics_port} is not a port (0-65535, or -1 for none)")
    if args.peering_lifetime < 1:
        raise ValueError(f"--peering-lifetime: must be at least 1 second, not {args.peering_lifetime}")
    if args.resync_seconds <= 0:
        raise ValueError(f"--resync-seconds: must be positive, not {args.resync_seconds}")
    if args.max_concurrent_requests < 1:
        raise ValueError(f"--max-concurrent-requests: must be at least 1, not {args.max_concurrent_requests}")
    app = importlib.import_module("lepton_operator.app")  # kopf and aiohttp only when the operator runs

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kopf logs every handler call at INFO: thousands of lines a second under load.
        for name in ("aiohttp.access", "kopf.objects"):
            logging.getLogger(name).setLevel(logging.WARNING)
    app.run(app.settings_from_args(args))
    return 0
