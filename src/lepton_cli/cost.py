"""``lepton cost estimate`` (a what-if calculator over the cost model) and ``lepton cost profiles``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lepton_core.cli_types import fraction, non_negative_float, non_negative_int, positive_float
from lepton_core.models.cost import estimate_cost
from lepton_core.profiles import load_profile_set
from lepton_core.units import JOULES_PER_KWH


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cost = sub.add_parser("cost", help="cost model tools", description="Cost model tools.")
    cost_sub = cost.add_subparsers(dest="cost_command", required=True, metavar="COMMAND")

    est = cost_sub.add_parser(
        "estimate",
        help="what-if cost of a fleet: C = hardware + energy + operations",
        description=(
            "What-if cost of N nodes: hardware (amortized purchase price) + energy (kWh x price) + "
            "operations (per node-year plus a lump sum). A year is 8,760 hours."
        ),
        epilog=(
            "example: lepton cost estimate --nodes 10 --power-watts 500 --hours 2920 --window-hours 8760 "
            "--price-per-kwh 1.0 --hardware-price 5000 --lifetime-years 5 --ops-per-node-year 2000"
        ),
    )
    est.add_argument("--nodes", type=non_negative_int, required=True, help="number of nodes")
    power = est.add_mutually_exclusive_group(required=True)
    power.add_argument("--power-watts", type=non_negative_float, help="average power per node, in watts")
    power.add_argument("--profile", help="a cost profile name: power from its curve at --utilization")
    est.add_argument("--profiles", type=Path, help="cost profile file (default: the shipped profiles)")
    est.add_argument(
        "--utilization",
        type=fraction,
        default=None,
        help="CPU and GPU utilization in [0, 1] for --profile (default 0.5)",
    )
    est.add_argument("--hours", type=non_negative_float, required=True, help="powered hours (energy)")
    est.add_argument(
        "--window-hours",
        type=non_negative_float,
        default=None,
        help="calendar window for hardware and operations (default: --hours)",
    )
    est.add_argument(
        "--price-per-kwh",
        type=non_negative_float,
        default=None,
        help="electricity price per kWh (default: the profile's mean price, else required)",
    )
    est.add_argument("--hardware-price", type=non_negative_float, default=None, help="purchase price per node")
    est.add_argument(
        "--lifetime-years",
        type=positive_float,
        default=None,
        help="amortization lifetime; omit to charge the full purchase price to the window",
    )
    est.add_argument(
        "--residual-value", type=non_negative_float, default=0.0, help="resale value per node at end of life"
    )
    est.add_argument("--ops-per-node-year", type=non_negative_float, default=None, help="operations cost per node-year")
    est.add_argument("--ops-fixed", type=non_negative_float, default=0.0, help="operations lump sum for the window")
    est.add_argument("--currency", default=None, help="currency code for display (default USD or the profiles')")
    est.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    est.set_defaults(handler=_estimate)

    prof = cost_sub.add_parser("profiles", help="validate and list cost profiles")
    prof.add_argument("--profiles", type=Path, help="cost profile file (default: the shipped profiles)")
    prof.add_argument("--json", action="store_true")
    prof.set_defaults(handler=_profiles)


def _estimate(args: argparse.Namespace) -> int:
    currency = args.currency or "USD"
    power_watts = args.power_watts
    price = args.price_per_kwh
    hardware_price = args.hardware_price
    lifetime = args.lifetime_years
    ops = args.ops_per_node_year
    if args.profile is not None:
        profiles = load_profile_set(args.profiles)
        profile = profiles.by_name(args.profile) if args.profile in {p.name for p in profiles.profiles} else None
        if profile is None:
            names = ", ".join(p.name for p in profiles.profiles)
            raise ValueError(f"--profile: no profile named {args.profile!r} (have: {names})")
        u = 0.5 if args.utilization is None else args.utilization
        power_watts = profile.power_model().power_watts(u, u)
        currency = args.currency or profiles.currency
        hw = profile.hardware_for()
        if hardware_price is None:
            hardware_price = hw.purchase_price
            lifetime = lifetime if args.lifetime_years is not None else hw.lifetime_years
        if ops is None:
            ops = profile.operations.per_node_year
        if price is None:
            # Mean tariff over the first powered hours from the start of its data (or any day if flat).
            start = getattr(profile.tariff, "start", 0.0)
            price = profile.tariff.mean_price_per_kwh(start, start + max(args.hours, 1.0) * 3600.0)
    elif args.utilization is not None:
        raise ValueError("--utilization needs --profile")
    if price is None:
        raise ValueError("--price-per-kwh is required without --profile")
    result = estimate_cost(
        nodes=args.nodes,
        power_watts=power_watts,
        powered_hours=args.hours,
        window_hours=args.window_hours,
        price_per_kwh=price,
        hardware_price_per_node=hardware_price or 0.0,
        lifetime_years=lifetime,
        residual_value_per_node=args.residual_value,
        ops_per_node_year=ops or 0.0,
        ops_fixed=args.ops_fixed,
        currency=currency,
    )
    if args.json:
        print(json.dumps({k: (round(v, 10) if isinstance(v, float) else v) for k, v in result.as_dict().items()}))
        return 0
    window = args.hours if args.window_hours is None else args.window_hours
    lines = [
        f"Fleet: {args.nodes} node(s) at {power_watts:,.1f} W for {args.hours:,.2f} powered hours "
        f"(window {window:,.2f} h)",
        f"  energy      {result.energy_kwh:>16,.3f} kWh ({result.energy_kwh * JOULES_PER_KWH:,.0f} J) "
        f"at {price:,.4f} {currency}/kWh",
        f"  hardware    {result.cost.hardware:>16,.2f} {currency}"
        + ("" if lifetime else "  (full purchase price: no --lifetime-years)"),
        f"  energy      {result.cost.energy:>16,.2f} {currency}",
        f"  operations  {result.cost.operations:>16,.2f} {currency}",
        f"  total       {result.cost.total:>16,.2f} {currency}",
    ]
    print("\n".join(lines))
    return 0


def _profiles(args: argparse.Namespace) -> int:
    profiles = load_profile_set(args.profiles)
    rows: list[dict[str, Any]] = []
    for p in profiles.profiles:
        fixed = p.fixed_cost_per_hour()
        pm = p.power_model()
        rows.append(
            {
                "name": p.name,
                "default": p is profiles.default,
                "idle_watts": pm.idle_watts,
                "max_watts": pm.max_watts,
                "gpus": p.gpu_count,
                "hardware_per_hour": fixed.hardware,
                "operations_per_hour": fixed.operations,
                "currency": p.currency,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'PROFILE':<16} {'GPUS':>4} {'IDLE W':>8} {'MAX W':>8} {'HW/H':>8} {'OPS/H':>8}")
    for r in rows:
        mark = " (default)" if r["default"] else ""
        print(
            f"{r['name']:<16} {r['gpus']:>4} {r['idle_watts']:>8.1f} {r['max_watts']:>8.1f} "
            f"{r['hardware_per_hour']:>8.3f} {r['operations_per_hour']:>8.3f}{mark}"
        )
    return 0
