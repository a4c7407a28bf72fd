"""Tiny, hand-checkable scenarios for the simulator tests (built in memory, no files unless asked)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lepton_core.models.tariff import FlatTariff, Tariff
from lepton_core.profiles import build_profile_set
from lepton_simulator.carbon import CarbonSeries
from lepton_simulator.policies.base import PlacementContext
from lepton_simulator.scenario import NodeCatalog, Scenario, build_catalog
from lepton_simulator.state import ClusterState
from lepton_simulator.trace import JobRow, JobTable, NodeSpec, Trace, default_labels

# Linear platform curves and whole-dollar hourly rates, so that every figure can be checked by hand:
# hardware 8,760 USD over 1 year = 1 USD/h; operations 8,760 USD per node-year = 1 USD/h.
PROFILES: dict[str, Any] = {
    "apiVersion": "lepton.ai/v1alpha1",
    "kind": "CostProfileSet",
    "currency": "USD",
    "defaultProfile": "small",
    "profiles": [
        {
            "name": "small",
            "match": [{"labels": {"lepton.ai/node-class": "cpu-small"}}],
            "platform": {"curve": [[0, 100], [1, 300]]},
            "hardware": {"purchasePrice": 8760, "lifetimeYears": 1},
            "operations": {"perNodeYear": 8760},
        },
        {
            "name": "kinked",
            "match": [{"labels": {"test/kind": "kinked", "lepton.ai/node-class": "cpu-small"}}],
            "platform": {"curve": [[0, 100], [0.5, 150], [1, 400]]},
            "hardware": {"purchasePrice": 8760, "lifetimeYears": 1},
            "operations": {"perNodeYear": 8760},
        },
        {
            "name": "gpu",
            "match": [{"labels": {"lepton.ai/gpu-model": "TESTGPU"}}],
            "platform": {"curve": [[0, 100], [1, 200]]},
            "gpu": {"model": "TESTGPU", "count": 2, "idleWatts": 50, "maxWatts": 250, "exponent": 1},
            "hardware": {"purchasePrice": 17520, "lifetimeYears": 1},
            "operations": {"perNodeYear": 8760},
        },
    ],
}


def node(name: str, cpu: int, mem: int = 8192, gpu: int = 0, model: str = "", **labels: str) -> NodeSpec:
    all_labels = default_labels(cpu, gpu, model)
    all_labels.update({k.replace("__", "/"): v for k, v in labels.items()})
    return NodeSpec(name=name, cpu_milli=cpu, memory_mib=mem, gpu=gpu, gpu_model=model, labels=all_labels)


def job(submit: float, duration: float, cpu: int, mem: int = 1024, **kw: Any) -> JobRow:
    name = kw.pop("name", f"j{submit:g}-{cpu}")
    return JobRow(name=name, submit_s=submit, duration_s=duration, cpu_milli=cpu, memory_mib=mem, **kw)


def scenario(
    nodes: Sequence[NodeSpec],
    jobs: Sequence[JobRow],
    *,
    tariff: Tariff | None = None,
    carbon: CarbonSeries | None = None,
    start: float = 1_672_531_200.0,  # 2023-01-01T00:00:00Z
    profiles: dict[str, Any] | None = None,
) -> Scenario:
    profile_set = build_profile_set(yaml.safe_load(yaml.safe_dump(profiles or PROFILES)))
    catalog, warnings = build_catalog(tuple(nodes), profile_set, tariff or FlatTariff(0.5))
    trace = Trace(JobTable.from_rows(list(jobs)), tuple(nodes), "tiny")
    return Scenario(trace, catalog, start, carbon, "test tariff", tuple(warnings))


def context(
    catalog: NodeCatalog, allocated: Sequence[tuple[int, int, int]], pod: JobRow
) -> tuple[PlacementContext, ClusterState]:
    """Every node ready, ``allocated[i] = (node, cpu, mem)`` already placed; ``pod`` to place on all nodes."""
    state = ClusterState(catalog)
    state.ready[:] = True
    for n, cpu, mem in allocated:
        filler = JobTable.from_rows([job(0, 1, cpu, mem)])
        state.place(n, state.requests_for(filler)[0])
    req = state.requests_for(JobTable.from_rows([pod]))[0]
    ctx = PlacementContext(
        state=state,
        catalog=catalog,
        req=req,
        candidates=np.arange(state.size, dtype=np.intp),
        now_s=0.0,
        epoch_s=1_672_531_200.0,
        autoscaled=False,
    )
    return ctx, state


def hourly_price_file(path: Path, start_iso: str, prices_usd_mwh: Sequence[float]) -> Path:
    """A tariff file in the grid-hourly format."""
    t0 = datetime.fromisoformat(start_iso)
    lines = ["Datetime (UTC),Datetime (Local),Price (USD/MWh)"]
    for i, p in enumerate(prices_usd_mwh):
        t = t0 + timedelta(hours=i)
        lines.append(f"{t.isoformat()},{t.isoformat()},{p}")
    path.write_text("\n".join(lines) + "\n")
    return path
