"""``lepton simulate``: replay a trace under several placement policies and compare cost, energy, waits.

Neighbours: ``lepton_cli.main`` registers this sub-command lazily; it builds a
``lepton_simulator.scenario.Scenario`` and ``SimulationSettings`` from the arguments, runs
``lepton_simulator.engine`` once per policy, bounds the result with ``lepton_simulator.lower_bound`` and
prints, writes JSON or plots with ``lepton_simulator.report``. With no arguments it replays the embedded
openb sample on the bundled week of CAISO prices, with no cluster and no data folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lepton_core.cli_types import name_value, non_negative_float, positive_int
from lepton_simulator.engine import Replay, ReplayResult
from lepton_simulator.lower_bound import lower_bound
from lepton_simulator.policies import POLICIES, make_policy
from lepton_simulator.policies.lepton import EXTENDER_WEIGHT, LeptonPolicy, simulator_scoring_policy
from lepton_simulator.report import SimulationReport, render_table, write_plot
from lepton_simulator.scenario import ScenarioOptions, load_scenario
from lepton_simulator.settings import AutoscalerSettings, Lifecycle, SimulationSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="replay a cluster trace under several placement policies and compare cost",
        description=(
            "Replay a trace of jobs on a node inventory under kube-scheduler's default scoring, "
            "bin packing (most-allocated), Trimaran TargetLoadPacking, PEAKS and Lepton, and compare cost "
            "(hardware + energy + operations), energy, carbon and waiting time. With no arguments: the "
            "embedded slice of the Alibaba openb trace on a week of CAISO prices."
        ),
        epilog="example: lepton simulate --trace openb --data-dir ../shared/data --lifecycle autoscaled --plot out.png",
    )
    src = p.add_argument_group("trace")
    src.add_argument("--trace", help="'sample' (default, embedded) or 'openb[:VARIANT]' (needs the data folder)")
    src.add_argument("--jobs", type=Path, help="generic jobs CSV (with --nodes)")
    src.add_argument("--nodes", type=Path, help="generic nodes CSV (with --jobs)")
    src.add_argument("--limit", type=positive_int, help="replay only the first N jobs")
    src.add_argument(
        "--data-dir",
        type=Path,
        help="shared data folder (default: ../shared/data when present; none: use only bundled data)",
    )
    cost = p.add_argument_group("cost")
    cost.add_argument("--profiles", type=Path, help="cost profile file (default: the shipped profiles)")
    cost.add_argument(
        "--tariff",
        help="ZONE[:YEAR] of grid-hourly, a price FILE, 'flat:PRICE' or 'profile' (default US-CAL-CISO)",
    )
    cost.add_argument("--carbon", help="ZONE[:YEAR], a carbon FILE or 'none' (default: the tariff's zone)")
    cost.add_argument("--start", help="calendar time of trace time 0, ISO-8601 (default: the tariff's first hour)")
    run = p.add_argument_group("replay")
    run.add_argument(
        "--lifecycle", choices=[x.value for x in Lifecycle], default=Lifecycle.STATIC.value, help="node lifecycle"
    )
    run.add_argument(
        "--policy",
        action="append",
        choices=list(POLICIES),
        help="policy to replay (repeatable; default: all)",
    )
    run.add_argument(
        "--lepton-preset", default="cost", metavar="PRESET", help="Lepton's scoring preset: cost, balance or pack"
    )
    run.add_argument(
        "--lepton-weight",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=VALUE",
        help="override one of Lepton's scoring weights, e.g. overload_risk=0 (repeatable)",
    )
    run.add_argument(
        "--extender-weight",
        type=positive_int,
        metavar="N",
        default=EXTENDER_WEIGHT,
        help=f"weight of the Lepton extender beside kube-scheduler's default plugins (default {EXTENDER_WEIGHT})",
    )
    defaults = AutoscalerSettings()
    run.add_argument(
        "--idle-release",
        type=non_negative_float,
        default=None,
        metavar="SECONDS",
        help=f"autoscaled: release a node empty this long (default {defaults.idle_release_seconds:g})",
    )
    run.add_argument(
        "--boot-delay",
        type=non_negative_float,
        default=None,
        metavar="SECONDS",
        help=f"autoscaled: time from provisioning to ready (default {defaults.boot_delay_seconds:g})",
    )
    run.add_argument("--seed", type=int, default=0, help="seed for tie-breaking among equal scores")
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, help="write the results as JSON to FILE ('-' for stdout)")
    out.add_argument("--plot", type=Path, help="draw cost, waiting time and cluster power to FILE (.png)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_simulate)


def _settings(args: argparse.Namespace) -> SimulationSettings:
    defaults = AutoscalerSettings()
    return SimulationSettings(
        lifecycle=Lifecycle(args.lifecycle),
        autoscaler=AutoscalerSettings(
            idle_release_seconds=defaults.idle_release_seconds if args.idle_release is None else args.idle_release,
            boot_delay_seconds=defaults.boot_delay_seconds if args.boot_delay is None else args.boot_delay,
        ),
        seed=args.seed,
    )


def _simulate(args: argparse.Namespace) -> int:
    wall0 = time.perf_counter()
    scenario = load_scenario(
        ScenarioOptions(
            trace=args.trace,
            jobs=args.jobs,
            nodes=args.nodes,
            profiles=args.profiles,
            tariff=args.tariff,
            carbon=args.carbon,
            start=args.start,
            data_dir=args.data_dir,
            limit=args.limit,
        )
    )
    for warning in scenario.warnings:
        print(f"lepton: warning: {warning}", file=sys.stderr)
    settings = _settings(args)
    names = list(dict.fromkeys(args.policy or POLICIES))
    scoring = simulator_scoring_policy(args.lepton_preset, dict(args.lepton_weight))
    results: list[ReplayResult] = []
    total = 2 * len(scenario.trace.jobs) * len(names)
    with tqdm(
        total=total, unit="ev", desc="replaying", file=sys.stderr, disable=True if args.no_progress else None
    ) as bar:
        for name in names:
            policy = (
                LeptonPolicy(scoring=scoring, extender_weight=args.extender_weight)
                if name == "lepton"
                else make_policy(name)
            )
            bar.set_postfix_str(name)
            results.append(Replay(scenario, policy, settings).run(bar.update))
    bound = lower_bound(
        scenario, settings.lifecycle, [r.start_s for r in results], [r.negative_price_credit for r in results]
    )
    report = SimulationReport(scenario, settings.lifecycle, tuple(results), bound, time.perf_counter() - wall0)
    if args.json is not None and str(args.json) == "-":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render_table(report))
        if args.json is not None:
            args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    if args.plot is not None:
        write_plot(report, args.plot)
    return 0
