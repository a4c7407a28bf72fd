"""One accounting window for every node, pod and job at once: utilization -> power -> cost -> jobs.

``account_window`` takes the cluster as arrays (``NodeAccountingTable``, ``PodTable``), what telemetry said
about the window (``NodeReadings``) and the window ``(t0, t1]``, and returns every node's power and
cost and every job's share of it, vectorized with numpy (5,000 nodes and 10,000 jobs in milliseconds).

Per node:

1. **Utilization**: measured where Prometheus had it; otherwise the node's *allocation* (requests of
   the pods active in the window / allocatable) and the node is **estimated**.
2. **Power** (IT, at the node): GPUs from DCGM when measured, else the GPU model at GPU utilization;
   the rest from Kepler when measured (Kepler's legacy platform counter already includes the GPUs,
   0.10+'s RAPL counter does not), else the platform model at CPU utilization. The facility draws
   that × PUE. The model's own figure at the measured utilization is kept so the discrepancy can be
   exported.
3. **Cost** over the window: hardware and operations per hour × hours, energy = power × ∫ price dt,
   exact across tariff boundaries (``lepton_core.models.tariff``).

Per pod: its share of the node (``dominant_shares`` of its requests, or a measured share) times the
fraction of the window it ran (from its start and finish times, so a job that starts mid-window pays
from its start), attributed with ``lepton_core.models.attribute`` (over-commit scaled, the rest idle).
A pod's energy cost uses the price integral over *its* active part of the window. Per job: the sum of
its pods. Σ pods + idle = node total for every component, by construction.

**Re-pricing** (a LeptonJob's ``spec.costProfile``): a pod whose ``PodTable.pricing`` names one of the
``overrides`` tables pays the *same share* of the node as if the node had that table's parameters —
hardware and operations rates, power model (where power is not measured), PUE and tariff. Node totals,
idle and other pods stay on the node's own profile (the physical truth), and the difference
(``repricing_cost``, ``repricing_joules``) is reported per node, so the ledger stays exact:
Σ jobs + other + idle = node total + re-pricing, for every component.

Pure: time and data are arguments. Neighbours: ``ledger`` turns job rows into increments; the
operator's accounting loop builds the tables and readings and writes the results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from lepton_core.accounting.amounts import Amounts, quantize_energy, quantize_money
from lepton_core.accounting.ledger import Increment
from lepton_core.kube.resources import Resources
from lepton_core.models.attribution import attribute, dominant_shares
from lepton_core.models.cost import CostBreakdown
from lepton_core.models.power import NodePowerModel, NodePowerTable
from lepton_core.models.tariff import Tariff
from lepton_core.telemetry.types import PowerSource, TelemetrySnapshot
from lepton_core.units import JOULES_PER_KWH, SECONDS_PER_HOUR, WATTS_PER_KILOWATT


class NodeProfile(Protocol):
    """What accounting needs of a cost profile (``lepton_core.profiles.CostProfile`` is one). A protocol,
    not an import: profiles parse YAML and JSON Schema, which the pure accounting never touches."""

    @property
    def tariff(self) -> Tariff: ...

    def power_model(self, gpu_count: int | None = None) -> NodePowerModel: ...

    def fixed_cost_per_hour(self, gpu_count: int | None = None) -> CostBreakdown: ...


F64 = NDArray[np.float64]
RESOURCES = ("cpu", "memory", "gpu")
"""Columns of the allocatable and request matrices: CPU cores, memory bytes, GPUs (``lepton_core.kube``'s
``Resources``: every resource in ``GPU_RESOURCES``)."""


class Source(IntEnum):
    """How a node's power was obtained in a window (array-friendly twin of ``PowerSource``)."""

    MODEL = 0
    """Model at measured utilization."""
    KEPLER = 1
    KEPLER_DCGM = 2
    DCGM = 3
    """GPUs measured by DCGM, the platform modelled at measured CPU utilization."""
    ESTIMATED = 4
    """Model at the allocation from requests: no usable utilization (Prometheus away or stale)."""

    @property
    def power_source(self) -> PowerSource:
        return {
            Source.KEPLER: PowerSource.KEPLER,
            Source.KEPLER_DCGM: PowerSource.KEPLER_DCGM,
            Source.DCGM: PowerSource.DCGM,
        }.get(self, PowerSource.MODEL)


@dataclass(frozen=True)
class NodeAccountingTable:
    """Every node's cost parameters as arrays, in one order (``names``)."""

    names: tuple[str, ...]
    power: NodePowerTable
    allocatable: F64
    """(nodes, 3): CPU cores, memory bytes, GPUs."""
    hardware_per_hour: F64
    operations_per_hour: F64
    tariffs: tuple[Tariff, ...]
    tariff_of_node: NDArray[np.intp]
    currency: str

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.power) != n or self.allocatable.shape != (n, 3):
            raise ValueError("node table: one power model and one allocatable row per node")
        if self.hardware_per_hour.shape != (n,) or self.operations_per_hour.shape != (n,):
            raise ValueError("node table: one hardware and one operations rate per node")
        if self.tariff_of_node.shape != (n,) or (n and int(self.tariff_of_node.max()) >= len(self.tariffs)):
            raise ValueError("node table: every node needs a tariff")

    def __len__(self) -> int:
        return len(self.names)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_profiles(
        cls, names: Sequence[str], profiles: Sequence[NodeProfile], allocatable: F64, currency: str
    ) -> NodeAccountingTable:
        """Each node's profile (matched by the caller) with its GPU count taken from its allocatable."""
        if len(names) != len(profiles) or allocatable.shape != (len(names), 3):
            raise ValueError("node table: one profile and one allocatable row per node")
        gpu_counts = [round(float(g)) for g in allocatable[:, 2]]
        models = [p.power_model(gpu_count=g) for p, g in zip(profiles, gpu_counts, strict=True)]
        tariffs: list[Tariff] = []
        positions: dict[int, int] = {}
        tariff_of_node = np.empty(len(names), dtype=np.intp)
        for i, p in enumerate(profiles):
            key = id(p.tariff)
            if key not in positions:
                positions[key] = len(tariffs)
                tariffs.append(p.tariff)
            tariff_of_node[i] = positions[key]
        fixed = [p.fixed_cost_per_hour(gpu_count=g) for p, g in zip(profiles, gpu_counts, strict=True)]
        return cls(
            names=tuple(names),
            power=NodePowerTable(models),
            allocatable=np.asarray(allocatable, dtype=np.float64),
            hardware_per_hour=np.array([f.hardware for f in fixed]),
            operations_per_hour=np.array([f.operations for f in fixed]),
            tariffs=tuple(tariffs),
            tariff_of_node=tariff_of_node,
            currency=currency,
        )

    def price_per_kwh_at(self, t: float) -> F64:
        prices = np.array([tariff.price_per_kwh_at(t) for tariff in self.tariffs])
        out: F64 = prices[self.tariff_of_node]
        return out


@dataclass(frozen=True)
class PodTable:
    """Pods bound to nodes, as arrays."""

    node: NDArray[np.intp]
    """Index into the node table."""
    requests: F64
    """(pods, 3), same columns as ``NodeAccountingTable.allocatable``."""
    job: NDArray[np.intp]
    """Index into the job list, -1 for pods that belong to no LeptonJob (they pay too, into no ledger)."""
    start_s: F64
    """When the pod started running; -inf when unknown (taken as running all window)."""
    end_s: F64
    """When it stopped running; +inf while it runs."""
    share_override: F64 | None = None
    """Measured shares of the node (e.g. CPU seconds / capacity); NaN rows fall back to requests."""
    pricing: NDArray[np.intp] | None = None
    """Which table prices each pod's share: -1 its node's own, k ``account_window``'s ``overrides[k]``
    (a job's ``spec.costProfile``). None: every pod on its node's own."""

    def __post_init__(self) -> None:
        p = self.node.shape[0]
        if self.requests.shape != (p, 3) or self.job.shape != (p,) or self.start_s.shape != (p,):
            raise ValueError("pod table: one node, job, start and request row per pod")
        if self.end_s.shape != (p,):
            raise ValueError("pod table: one end time per pod")
        if self.share_override is not None and self.share_override.shape != (p,):
            raise ValueError("pod table: one share override per pod")
        if self.pricing is not None and self.pricing.shape != (p,):
            raise ValueError("pod table: one pricing index per pod")

    def __len__(self) -> int:
        return int(self.node.shape[0])


@dataclass(frozen=True)
class NodeReadings:
    """What telemetry said about each node for one window; NaN where it said nothing."""

    cpu_utilization: F64
    gpu_utilization: F64
    kepler_watts: F64
    kepler_includes_gpu: NDArray[np.bool_]
    gpu_watts: F64

    @classmethod
    def missing(cls, n: int) -> NodeReadings:
        nan = np.full(n, np.nan)
        return cls(nan, nan.copy(), nan.copy(), np.ones(n, dtype=bool), nan.copy())

    @classmethod
    def from_snapshot(cls, snapshot: TelemetrySnapshot | None, names: Sequence[str]) -> NodeReadings:
        out = cls.missing(len(names))
        if snapshot is None:
            return out
        for i, name in enumerate(names):
            t = snapshot.nodes.get(name)
            if t is None:
                continue
            if t.cpu_utilization is not None:
                out.cpu_utilization[i] = t.cpu_utilization
            if t.gpu_utilization is not None:
                out.gpu_utilization[i] = t.gpu_utilization
            if t.kepler_power_watts is not None:
                out.kepler_watts[i] = t.kepler_power_watts
                out.kepler_includes_gpu[i] = t.kepler_includes_gpu
            if t.gpu_power_watts is not None:
                out.gpu_watts[i] = t.gpu_power_watts
        return out


@dataclass(frozen=True)
class WindowAccount:
    """Everything one window cost, per node and per job. Money in currency units, energy in joules."""

    t0: float
    t1: float
    # --- per node
    power_watts: F64
    """Facility power used for accounting (IT power × PUE)."""
    model_watts: F64
    """What the model says at the *measured* utilization, × PUE (NaN where utilization is unknown)."""
    measured_watts: F64
    """Measured IT power × PUE where Kepler/DCGM covered the whole node, NaN otherwise."""
    source: NDArray[np.int8]
    """``Source`` per node."""
    utilization: F64
    """(nodes, 2): CPU and GPU utilization used for the model (measured, or allocation if estimated)."""
    node_cost: F64
    """(nodes, 3): hardware, energy, operations."""
    node_joules: F64
    node_rate_per_hour: F64
    """(nodes, 3): cost per hour at ``t1`` (energy at the price at t1)."""
    idle_cost: F64
    """(nodes, 3): the part no pod was attributed."""
    idle_joules: F64
    other_cost: F64
    """(nodes, 3): attributed to pods of no LeptonJob."""
    other_joules: F64
    repricing_cost: F64
    """(nodes, 3): what re-priced pods (``PodTable.pricing``) paid beyond their share at the node's own
    profile (negative when the override is cheaper). Σ jobs + other + idle = node_cost + this."""
    repricing_joules: F64
    # --- per job
    job_cost: F64
    """(jobs, 3)."""
    job_joules: F64
    job_active_seconds: F64
    job_estimated: NDArray[np.bool_]
    job_rate_per_hour: F64
    """Cost per hour of the job's pods running at ``t1``."""

    @property
    def node_estimated(self) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self.source == Source.ESTIMATED
        return out

    def increments(self, jobs: Sequence[int] | None = None) -> dict[int, Increment]:
        """Exact per-job increments for this window (all jobs, or those listed)."""
        start_ms, end_ms = round(self.t0 * 1000.0), round(self.t1 * 1000.0)
        money = quantize_money(self.job_cost)
        energy = quantize_energy(self.job_joules)
        active = np.minimum(np.rint(self.job_active_seconds * 1000.0).astype(np.int64), end_ms - start_ms)
        rows = range(self.job_cost.shape[0]) if jobs is None else jobs
        return {
            int(k): Increment(
                start_ms,
                end_ms,
                Amounts(int(money[k, 0]), int(money[k, 1]), int(money[k, 2]), int(energy[k])),
                int(active[k]),
                bool(self.job_estimated[k]),
            )
            for k in rows
        }


def _node_allocation(nodes: NodeAccountingTable, pods: PodTable, active_fraction: F64) -> F64:
    """(nodes, 2): time-averaged requested CPU and GPU over allocatable, the model input when estimated."""
    n = len(nodes)
    cpu = _sum_by(pods.node, pods.requests[:, 0] * active_fraction, n)
    gpu = _sum_by(pods.node, pods.requests[:, 2] * active_fraction, n)
    alloc = nodes.allocatable
    with np.errstate(divide="ignore", invalid="ignore"):
        u_cpu = np.where(alloc[:, 0] > 0.0, cpu / alloc[:, 0], 0.0)
        u_gpu = np.where(alloc[:, 2] > 0.0, gpu / alloc[:, 2], 0.0)
    out: F64 = np.clip(np.stack([u_cpu, u_gpu], axis=1), 0.0, 1.0)
    return out


def _sum_by(index: NDArray[np.intp], weights: F64, size: int) -> F64:
    """Σ weights per index (np.bincount with weights, typed as the floats it returns)."""
    out: F64 = np.bincount(index, weights=weights, minlength=size).astype(np.float64, copy=False)
    return out


@dataclass(frozen=True)
class _Priced:
    """One pricing of every node for a window: facility power, energy, cost and rate at ``t1``."""

    power: F64
    joules: F64
    cost: F64
    """(nodes, 3): hardware, energy, operations over the window."""
    rate: F64
    """(nodes, 3): per hour at ``t1``."""


@dataclass(frozen=True)
class _Measured:
    """What telemetry fixed for a window, whichever profile prices it: utilization and measured watts."""

    u_cpu: F64
    u_gpu: F64
    kepler_ok: NDArray[np.bool_]
    dcgm_ok: NDArray[np.bool_]
    kepler_watts: F64
    kepler_includes_gpu: NDArray[np.bool_]
    gpu_watts: F64


def _it_watts(nodes: NodeAccountingTable, m: _Measured) -> F64:
    """IT power: measured components where available, the table's models at the utilization for the rest."""
    gpu_part = np.where(m.dcgm_ok, m.gpu_watts, nodes.power.gpu_watts(m.u_gpu))
    kepler_total = np.where(m.kepler_includes_gpu, m.kepler_watts, m.kepler_watts + gpu_part)
    out: F64 = np.where(m.kepler_ok, kepler_total, nodes.power.platform_watts(m.u_cpu) + gpu_part)
    return out


def _price(nodes: NodeAccountingTable, it_watts: F64, t0: float, t1: float) -> _Priced:
    dt = t1 - t0
    power = it_watts * nodes.power.pue
    price_integral = np.empty(len(nodes))
    for k, tariff in enumerate(nodes.tariffs):
        sel = nodes.tariff_of_node == k
        if sel.any():
            price_integral[sel] = tariff.price_integral(t0, t1) if dt > 0.0 else 0.0
    hours = dt / SECONDS_PER_HOUR
    cost = np.stack(
        [nodes.hardware_per_hour * hours, power * price_integral / JOULES_PER_KWH, nodes.operations_per_hour * hours],
        axis=1,
    )
    rate = np.stack(
        [nodes.hardware_per_hour, power / WATTS_PER_KILOWATT * nodes.price_per_kwh_at(t1), nodes.operations_per_hour],
        axis=1,
    )
    return _Priced(power, power * dt, cost, rate)


def _pod_price_integrals(nodes: NodeAccountingTable, pod_node: NDArray[np.intp], a0: F64, a1: F64) -> F64:
    """∫ price dt over each pod's active part of the window, with its node's tariff in ``nodes``."""
    out = np.zeros(pod_node.size)
    pod_tariff = nodes.tariff_of_node[pod_node]
    for k, tariff in enumerate(nodes.tariffs):
        sel = (pod_tariff == k) & (a1 > a0)
        if sel.any():
            out[sel] = tariff.prices.integral_many(a0[sel], a1[sel])
    return out


def account_window(
    nodes: NodeAccountingTable,
    pods: PodTable,
    readings: NodeReadings,
    *,
    t0: float,
    t1: float,
    jobs: int,
    overrides: Sequence[NodeAccountingTable] = (),
) -> WindowAccount:
    """Account the window ``(t0, t1]`` for every node and for ``jobs`` jobs (indices used in ``pods.job``).

    ``overrides`` are alternative pricings of the same nodes (same names and allocatable, another cost
    profile's parameters); pods whose ``pods.pricing`` is k pay their share at ``overrides[k]``.
    """
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 < t0:
        raise ValueError(f"window ({t0}, {t1}] is not a finite forward interval")
    for table in overrides:
        if table.names != nodes.names or table.allocatable.shape != nodes.allocatable.shape:
            raise ValueError("an override pricing must cover the same nodes in the same order")
    if pods.pricing is not None and pods.pricing.size and int(pods.pricing.max()) >= len(overrides):
        raise ValueError("a pod's pricing index has no override table")
    n = len(nodes)
    dt = t1 - t0
    # --- which part of the window each pod ran
    a0 = np.maximum(pods.start_s, t0)
    a1 = np.minimum(pods.end_s, t1)
    active_s = np.maximum(a1 - a0, 0.0)
    frac = active_s / dt if dt > 0.0 else np.zeros_like(active_s)
    a1 = np.maximum(a1, a0)

    # --- utilization: measured, else allocation from requests (estimated)
    allocation = _node_allocation(nodes, pods, frac)
    cpu_meas = readings.cpu_utilization
    gpu_meas = readings.gpu_utilization
    has_gpus = nodes.power.gpu_count > 0
    kepler_ok = np.isfinite(readings.kepler_watts)
    dcgm_ok = np.isfinite(readings.gpu_watts)
    cpu_ok = np.isfinite(cpu_meas)
    gpu_util_ok = np.isfinite(gpu_meas) | ~has_gpus
    measured_inputs = _Measured(
        u_cpu=np.where(cpu_ok, cpu_meas, allocation[:, 0]),
        u_gpu=np.where(np.isfinite(gpu_meas), gpu_meas, allocation[:, 1]),
        kepler_ok=kepler_ok,
        dcgm_ok=dcgm_ok,
        kepler_watts=readings.kepler_watts,
        kepler_includes_gpu=readings.kepler_includes_gpu,
        gpu_watts=readings.gpu_watts,
    )
    u_cpu, u_gpu = measured_inputs.u_cpu, measured_inputs.u_gpu

    # --- power (IT): measured components where available, model for the rest
    it_watts = _it_watts(nodes, measured_inputs)

    # Fully measured: Kepler covers the node (with DCGM for GPUs when Kepler does not see them).
    gpus_covered = readings.kepler_includes_gpu | dcgm_ok | ~has_gpus
    fully_measured = kepler_ok & gpus_covered
    # Estimated: some modelled component ran on request-derived utilization.
    platform_from_model = ~kepler_ok
    gpu_from_model = has_gpus & ~dcgm_ok & ~(kepler_ok & readings.kepler_includes_gpu)
    estimated = (platform_from_model & ~cpu_ok) | (gpu_from_model & ~gpu_util_ok)
    source = np.full(n, Source.MODEL, dtype=np.int8)
    source[dcgm_ok & has_gpus & ~kepler_ok] = Source.DCGM
    source[kepler_ok & ~(~readings.kepler_includes_gpu & dcgm_ok)] = Source.KEPLER
    source[kepler_ok & ~readings.kepler_includes_gpu & dcgm_ok] = Source.KEPLER_DCGM
    source[estimated] = Source.ESTIMATED

    pue = nodes.power.pue
    base = _price(nodes, it_watts, t0, t1)
    power = base.power
    measured = np.where(fully_measured, power, np.nan)
    model_at_measured = np.where(
        cpu_ok & gpu_util_ok,
        (
            nodes.power.platform_watts(np.where(cpu_ok, cpu_meas, 0.0))
            + nodes.power.gpu_watts(np.where(np.isfinite(gpu_meas), gpu_meas, 0.0))
        )
        * pue,
        np.nan,
    )
    node_cost, joules, rate = base.cost, base.joules, base.rate

    # --- attribution: share while running × fraction of the window running
    if pods.node.size:
        shares = dominant_shares(pods.requests, nodes.allocatable[pods.node])
        if pods.share_override is not None:
            shares = np.where(np.isfinite(pods.share_override), np.clip(pods.share_override, 0.0, 1.0), shares)
    else:
        shares = np.zeros(0)
    effective = shares * frac
    hw = attribute(node_cost[:, 0], pods.node, effective)
    ops = attribute(node_cost[:, 2], pods.node, effective)
    en_j = attribute(joules, pods.node, effective)
    share_sum = _sum_by(pods.node, effective, n)
    scale = np.where(share_sum > 1.0, 1.0 / np.where(share_sum > 1.0, share_sum, 1.0), 1.0)
    # Energy money per pod: its scaled share of the node's power × the price over *its* active part.
    pod_price_integral = _pod_price_integrals(nodes, pods.node, a0, a1)
    pod_energy_cost = shares * scale[pods.node] * power[pods.node] * pod_price_integral / JOULES_PER_KWH
    pod_cost = np.stack([hw.pod_amounts, pod_energy_cost, ops.pod_amounts], axis=1)
    pod_joules = en_j.pod_amounts
    attributed = np.stack([_sum_by(pods.node, pod_cost[:, c], n) for c in range(3)], axis=1)
    idle = node_cost - attributed
    # Hardware and operations are time-uniform: attribute() already made their idle exact and non-negative.
    idle[:, 0] = hw.idle_amounts
    idle[:, 2] = ops.idle_amounts

    # --- rates at t1: pods still running then
    running = (pods.start_s <= t1) & (pods.end_s > t1)
    run_sum = _sum_by(pods.node, shares * running, n)
    run_scale = np.where(run_sum > 1.0, 1.0 / np.where(run_sum > 1.0, run_sum, 1.0), 1.0)
    run_weight = shares * running * run_scale[pods.node]
    pod_rate = run_weight[:, None] * rate[pods.node]

    # --- re-priced pods: the same weights, another table's node amounts; the difference is reported
    repricing_cost = np.zeros((n, 3))
    repricing_joules = np.zeros(n)
    if overrides and pods.pricing is not None and bool((pods.pricing >= 0).any()):
        pod_cost = pod_cost.copy()
        pod_joules = pod_joules.copy()
        weight = effective * scale[pods.node]
        for k, table in enumerate(overrides):
            sel = np.flatnonzero(pods.pricing == k)
            if sel.size == 0:
                continue
            priced = _price(table, _it_watts(table, measured_inputs), t0, t1)
            sel_node = pods.node[sel]
            integral = _pod_price_integrals(table, sel_node, a0[sel], a1[sel])
            cost_k = np.stack(
                [
                    priced.cost[sel_node, 0] * weight[sel],
                    shares[sel] * scale[sel_node] * priced.power[sel_node] * integral / JOULES_PER_KWH,
                    priced.cost[sel_node, 2] * weight[sel],
                ],
                axis=1,
            )
            joules_k = priced.joules[sel_node] * weight[sel]
            for c in range(3):
                repricing_cost[:, c] += _sum_by(sel_node, cost_k[:, c] - pod_cost[sel, c], n)
            repricing_joules += _sum_by(sel_node, joules_k - pod_joules[sel], n)
            pod_cost[sel] = cost_k
            pod_joules[sel] = joules_k
            pod_rate[sel] = run_weight[sel, None] * priced.rate[sel_node]

    # --- jobs
    is_job = pods.job >= 0
    jidx = pods.job[is_job]
    job_cost = np.stack([_sum_by(jidx, pod_cost[is_job, c], jobs) for c in range(3)], axis=1)
    job_joules = _sum_by(jidx, pod_joules[is_job], jobs)
    job_active = np.zeros(jobs)
    np.maximum.at(job_active, jidx, active_s[is_job])
    pod_estimated = estimated[pods.node] & (active_s > 0.0)
    job_estimated = _sum_by(jidx, pod_estimated[is_job].astype(np.float64), jobs) > 0.0
    job_rate = _sum_by(jidx, pod_rate[is_job].sum(axis=1), jobs)
    other = ~is_job
    other_cost = np.stack([_sum_by(pods.node[other], pod_cost[other, c], n) for c in range(3)], axis=1)
    other_joules = _sum_by(pods.node[other], pod_joules[other], n)
    return WindowAccount(
        t0=t0,
        t1=t1,
        power_watts=power,
        model_watts=model_at_measured,
        measured_watts=measured,
        source=source,
        utilization=np.stack([u_cpu, u_gpu], axis=1),
        node_cost=node_cost,
        node_joules=joules,
        node_rate_per_hour=rate,
        idle_cost=idle,
        idle_joules=en_j.idle_amounts,
        other_cost=other_cost,
        other_joules=other_joules,
        repricing_cost=repricing_cost,
        repricing_joules=repricing_joules,
        job_cost=job_cost,
        job_joules=job_joules,
        job_active_seconds=job_active,
        job_estimated=job_estimated,
        job_rate_per_hour=job_rate,
    )


def resource_matrix(rows: Sequence[Resources]) -> F64:
    """(rows, 3): the ``RESOURCES`` columns of pods' requests or nodes' allocatable."""
    out: F64 = np.array([(r.cpu_cores, r.memory_bytes, r.gpus) for r in rows], dtype=np.float64).reshape(-1, 3)
    return out
