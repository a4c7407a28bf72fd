"""``lepton operator`` flags for live cost accounting (import-light: argparse and ``lepton_core.cli_types``).

``lepton_operator.cli`` calls ``add_arguments`` when this module exists; the values reach
``lepton_operator.accounting.service`` as ``OperatorSettings.extension_options``. ``--metrics-port``
belongs to the operator itself (accounting's metrics are served on its ``/metrics``).
"""

from __future__ import annotations

import argparse

from lepton_core.cli_types import positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live cost accounting")
    group.add_argument(
        "--no-accounting", dest="accounting", action="store_false", help="do not account job cost and energy"
    )
    group.add_argument(
        "--prometheus-url",
        metavar="URL",
        default=None,
        help="Prometheus to read node_exporter/DCGM/Kepler/cAdvisor series from; without it every window is "
        "accounted from the model on requested resources and marked estimated",
    )
    group.add_argument("--cost-profiles", metavar="FILE", default=None, help="cost profiles (default: shipped ones)")
    group.add_argument(
        "--accounting-interval",
        metavar="SECONDS",
        type=positive_float,
        default=30.0,
        help="one tick every (default 30)",
    )
    group.add_argument(
        "--accounting-max-writes-per-second",
        metavar="N",
        type=positive_float,
        default=50.0,
        help="status patches per second, averaged over a tick (default 50)",
    )
    group.add_argument(
        "--attribution",
        choices=("dominant-request", "measured-usage"),
        default="dominant-request",
        help="split node cost by pods' dominant requested share (default) or by measured CPU use (cAdvisor)",
    )
    group.add_argument(
        "--prometheus-node-relabel",
        metavar="REGEX=REPLACEMENT",
        action="append",
        default=[],
        help="turn a Prometheus node label value into a node name (full match, $1 groups; repeatable; "
        "default strips :port). Node InternalIPs and hostnames are always matched as aliases",
    )
