"""Regenerate the simulator's embedded sample from the openb trace (not a benchmark: a build step).

Run: ``.venv/bin/python bench/simulate_make_sample.py [--data-dir ../shared/data]``

The sample (``src/lepton_simulator/data/openb_sample_*.csv``, openb format, rows copied verbatim):

* pods: every pod of ``openb_pod_list_default.csv`` created in the trace's last ``--days`` days (3),
  with every time shifted so that the first of them is created at 0 (so ``--start`` is its calendar time);
* nodes: a stratified slice of ``openb_node_list_all_node.csv``: from every node shape (cpu, memory,
  GPUs, GPU model) every ``--every``-th node (40), at least one per shape, so the slice keeps the shape mix
  of the real cluster and every pod still fits somewhere.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

from lepton_simulator.scenario import SAMPLE_NODES, SAMPLE_PODS, find_data_dir, sample_dir

SIZE_LIMIT_BYTES = 200_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--every", type=int, default=40)
    args = parser.parse_args()
    data_dir = find_data_dir(args.data_dir, Path(__file__).resolve().parent.parent)
    if data_dir is None:
        print("no shared data folder (pass --data-dir)", file=sys.stderr)
        return 2
    folder = data_dir / "alibaba-openb-2023"
    with (folder / "openb_pod_list_default.csv").open(newline="") as f:
        pod_reader = csv.DictReader(f)
        pod_fields = list(pod_reader.fieldnames or [])
        pods = list(pod_reader)
    with (folder / "openb_node_list_all_node.csv").open(newline="") as f:
        node_reader = csv.DictReader(f)
        node_fields = list(node_reader.fieldnames or [])
        nodes = list(node_reader)
    last = max(int(p["creation_time"]) for p in pods)
    window_start = last - args.days * 86400.0
    kept_pods = [dict(p) for p in pods if int(p["creation_time"]) >= window_start]
    origin = min(int(p["creation_time"]) for p in kept_pods)
    for p in kept_pods:
        for column in ("creation_time", "deletion_time", "scheduled_time"):
            if p[column]:
                p[column] = str(int(p[column]) - origin)
    by_shape: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for n in nodes:
        by_shape[(n["cpu_milli"], n["memory_mib"], n["gpu"], n["model"])].append(n)
    kept_nodes: list[dict[str, str]] = []
    for members in by_shape.values():
        count = max(1, round(len(members) / args.every))
        step = len(members) / count
        kept_nodes.extend(members[int(i * step)] for i in range(count))
    kept_nodes.sort(key=lambda n: n["sn"])
    out = sample_dir()
    sizes = 0
    for name, fields, rows in ((SAMPLE_PODS, pod_fields, kept_pods), (SAMPLE_NODES, node_fields, kept_nodes)):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (out / name).write_text(buf.getvalue())
        sizes += len(buf.getvalue().encode())
    print(f"{len(kept_pods)} pods, {len(kept_nodes)} nodes, {sizes:,} bytes in {out}")
    if sizes > SIZE_LIMIT_BYTES:
        print(f"sample is over {SIZE_LIMIT_BYTES:,} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
