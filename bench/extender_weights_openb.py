"""Which default weights should the scoring ship? Replays the full openb trace with the ``lepton`` policy
under several weight settings, static and autoscaled, and reports cost and waiting time for each.

The shared scoring's objective has three terms whose value is a judgement call (docs/notes/scoring-api.md):
``fixed_share`` (the pod's share of the node's hardware + operations: sunk in a static cluster, an
opportunity cost either way), ``keep_alive`` (waking an empty autoscaled node) and ``overload_risk``.
Each is switched off alone, and in combinations, against the shipped defaults, with ``kube-default`` as
the baseline measured in the same run. The shipped default is the setting with the lowest total cost
whose mean wait is not worse (documented with these figures in docs/notes/scoring-api.md).

Run: ``.venv/bin/python bench/extender_weights_openb.py [--data-dir ../shared/data] [--json out.json]``
(about 10 replays per lifecycle, a few minutes). Skips when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lepton_simulator.engine import Replay, ReplayResult
from lepton_simulator.policies import make_policy
from lepton_simulator.policies.lepton import LeptonPolicy, simulator_scoring_policy
from lepton_simulator.scenario import ScenarioOptions, find_data_dir, load_scenario
from lepton_simulator.settings import Lifecycle, SimulationSettings

SETTINGS: dict[str, dict[str, float]] = {
    "defaults": {},
    "fixed_share=0": {"fixed_share": 0.0},
    "fixed_share=0.5": {"fixed_share": 0.5},
    "keep_alive=0": {"keep_alive": 0.0},
    "overload_risk=0": {"overload_risk": 0.0},
    "fixed_share=0,overload_risk=0": {"fixed_share": 0.0, "overload_risk": 0.0},
    "keep_alive=0,overload_risk=0": {"keep_alive": 0.0, "overload_risk": 0.0},
}


def row(r: ReplayResult, base: ReplayResult) -> dict[str, Any]:
    total = r.cost.total
    return {
        "total_cost": round(total, 2),
        "vs_kube_default_percent": round(100.0 * (total / base.cost.total - 1.0), 2),
        "hardware": round(r.cost.hardware, 2),
        "energy": round(r.cost.energy, 2),
        "operations": round(r.cost.operations, 2),
        "energy_kwh": round(r.energy_kwh, 1),
        "wait_mean_s": round(r.wait_mean_s, 1),
        "wait_p95_s": round(r.wait_p95_s, 1),
        "unplaced": r.jobs_unplaced,
        "provisions": r.provisions,
        "wall_s": round(r.wall_seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--lifecycle", action="append", choices=[x.value for x in Lifecycle])
    parser.add_argument("--setting", action="append", choices=list(SETTINGS))
    args = parser.parse_args()
    data_dir = find_data_dir(args.data_dir, Path(__file__).resolve().parent.parent)
    if data_dir is None or not (data_dir / "alibaba-openb-2023").is_dir():
        print("skipped: no shared data folder with alibaba-openb-2023 (pass --data-dir)")
        return 0
    scenario = load_scenario(ScenarioOptions(trace="openb", tariff="US-CAL-CISO:2023", data_dir=data_dir))
    out: dict[str, Any] = {"load_average_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    for lifecycle in [Lifecycle(x) for x in (args.lifecycle or [x.value for x in Lifecycle])]:
        settings = SimulationSettings(lifecycle=lifecycle)
        base = Replay(scenario, make_policy("kube-default"), settings).run()
        table = {"kube-default": row(base, base)}
        for label in args.setting or list(SETTINGS):
            policy = LeptonPolicy(scoring=simulator_scoring_policy("cost", SETTINGS[label]))
            table[f"lepton {label}"] = row(Replay(scenario, policy, settings).run(), base)
            print(lifecycle.value, label, table[f"lepton {label}"], flush=True)
        out[lifecycle.value] = table
        print(f"\n{lifecycle.value}:")
        print(f"{'setting':<40}{'total':>12}{'vs kube':>9}{'energy':>10}{'wait mean':>11}{'p95':>8}")
        for label, r in table.items():
            print(
                f"{label:<40}{r['total_cost']:>12,.2f}{r['vs_kube_default_percent']:>8.2f}%"
                f"{r['energy']:>10,.2f}{r['wait_mean_s']:>10.0f}s{r['wait_p95_s']:>7.0f}s"
            )
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    out["load_average_end"] = os.getloadavg()[0]
    print(f"\nwall {out['wall_s']} s; load average {out['load_average_start']:.2f} → {out['load_average_end']:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
