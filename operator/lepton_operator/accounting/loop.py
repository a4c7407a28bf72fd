"""The accounting loop: one tick over all nodes and jobs, then rate-limited status writes.

Each tick (default every 30 s; not one timer per job):

1. LIST Nodes, Pods and LeptonJobs and parse them (``inventory``);
2. decide the windows to account: normally ``(previous tick, now]``; after a (re)start, the time since
   the oldest watermark (``status.cost.observedAt``) of a job with unaccounted running time, up to
   ``max_backfill_seconds`` back and in at most ``max_backfill_windows`` windows, recomputed from
   Prometheus's history with one range query per metric (``TelemetryFetcher.fetch_range``);
3. fetch telemetry for them (``lepton_core.telemetry``), and account each window for the whole
   cluster at once (``lepton_core.accounting.pipeline``): power, node cost, attribution to pods and jobs;
   without usable telemetry the model runs on requested resources and the window is *estimated*;
4. append each job's increment to its in-memory *pending* list; check budgets on ledger + pending;
5. pick the jobs whose status to write this tick (budget verdicts and finished jobs first, then the
   stalest), within the write allowance (``max_writes_per_second`` × elapsed time).

``write_due`` then sends the chosen status patches: ``ledger.settle(pending)`` on top of the stored
status, guarded by ``metadata.resourceVersion`` so a concurrent writer (another replica, the lifecycle)
makes us re-read and re-settle, never double-count. Metrics (``lepton_operator.metrics``) read
``view()``: live totals (ledger + pending), so they never lag the status.

A job naming a cost profile (``spec.costProfile``) has its share of each node priced with that profile
(``pipeline`` re-pricing; the node totals stay on the node's own profile and the difference is counted
per node); the ``CostProfileApplied`` condition says whether it could be (an unknown name is reported
there and in an event, and the job is charged with its nodes' own profiles).

With kopf peering, only the active replica accounts: ``run(activity=...)`` idles while the replica is a
standby (``lepton_operator.peering``), after writing what it had pending; when it becomes active again
it starts over from the stored watermarks, like a restarted process.

Time is an argument (``tick(now)``), so tests drive hours of simulated time in seconds; ``run()`` is
the real-time driver. Neighbours: ``inventory``, ``status``, ``kube``, ``settings`` in this package;
``lepton_core.accounting`` below; ``lepton_operator.metrics`` reads ``view()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from lepton_core.accounting.amounts import ZERO, Amounts
from lepton_core.accounting.budget import Budget, BudgetAction, check_budget, cost_to_complete
from lepton_core.accounting.ledger import Increment, Ledger
from lepton_core.accounting.pipeline import (
    NodeAccountingTable,
    NodeReadings,
    PodTable,
    WindowAccount,
    account_window,
    resource_matrix,
)
from lepton_core.models.attribution import AttributionPolicy
from lepton_core.profiles import CostProfile, ProfileError, ProfileSet
from lepton_core.telemetry.identity import NodeIdentity
from lepton_core.telemetry.types import TelemetrySnapshot
from lepton_core.units import JOULES_PER_KWH
from lepton_operator.accounting.inventory import InventoryParser, JobInfo, NodeInfo, PodInfo, format_time, parse_job
from lepton_operator.accounting.kube import (
    EVENTS,
    LEPTONJOBS,
    NODES,
    PODS,
    Conflict,
    KubeApi,
    KubeError,
    NotFound,
)
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.accounting.status import ledger_from_status, status_patch
from lepton_operator.naming import ANNOTATION_STOP, ANNOTATION_STOP_MESSAGE
from lepton_operator.status import Condition, merge_conditions

log = logging.getLogger("lepton.accounting")

BUDGET_CONDITION = "BudgetExceeded"
COST_PROFILE_CONDITION = "CostProfileApplied"
"""True when the job's ``spec.costProfile`` prices its share of every node it runs on; False (reason
``UnknownCostProfile`` or ``CostProfileMismatch``) when it cannot, naming the field."""


class Activity(Protocol):
    """Whether this replica should account now (``lepton_operator.peering.PeeringGate`` is one)."""

    def is_active(self) -> bool: ...

    async def wait_for(self, active: bool) -> None: ...


class TelemetrySource(Protocol):
    """What the loop needs from ``lepton_core.telemetry.prometheus.TelemetryFetcher``."""

    async def fetch(
        self, at: float | None = None, window_seconds: float = 60.0, identity: NodeIdentity | None = None
    ) -> TelemetrySnapshot: ...

    async def fetch_range(
        self, start: float, end: float, step_seconds: float, identity: NodeIdentity | None = None
    ) -> list[TelemetrySnapshot]: ...


@dataclass(slots=True)
class JobState:
    info: JobInfo
    ledger: Ledger
    """As stored in the API server (the last status we read or wrote)."""
    pending: list[Increment] = field(default_factory=list)
    """Accounted windows not yet written, oldest first."""
    per_hour: float = 0.0
    last_write_at: float = -math.inf
    """Accounting time of the last successful status write."""
    budget_verdict: tuple[str, str] | None = None
    """(reason, message) when the budget is passed and the condition/event/action are still to be sent."""
    bad_status: str | None = None
    """Why the stored status could not be read; such a job is not written (a person must look)."""
    profile_condition: Condition | None = None
    """The ``CostProfileApplied`` condition the job should carry (None: it names no cost profile)."""
    profile_checked: bool = False
    """Whether ``profile_condition`` was worked out (a tick with nodes); until then nothing is written."""
    _sum: Amounts = ZERO
    """Σ of the pending windows' parts after ``_sum_watermark`` (kept so a tick is O(1) per job)."""
    _sum_watermark: int | None = None

    def add_pending(self, inc: Increment) -> None:
        self.pending.append(inc)
        if self._sum_watermark == self.ledger.observed_at_ms:
            part = inc if self._sum_watermark is None else inc.after(self._sum_watermark)
            if part is not None:
                self._sum = self._sum + part.amounts

    def clear_pending(self) -> None:
        self.pending = []
        self._sum, self._sum_watermark = ZERO, self.ledger.observed_at_ms

    @property
    def has_pending(self) -> bool:
        """Whether any pending window reaches past the stored watermark (pending is in time order)."""
        if not self.pending:
            return False
        watermark = self.ledger.observed_at_ms
        return watermark is None or self.pending[-1].end_ms > watermark

    def live_amounts(self) -> Amounts:
        """Ledger plus pending windows after its watermark: what the job has cost up to the last tick."""
        if self._sum_watermark != self.ledger.observed_at_ms:  # the stored ledger moved (another writer)
            self._sum = ZERO
            for part in self.ledger.pending_after(self.pending):
                self._sum = self._sum + part.amounts
            self._sum_watermark = self.ledger.observed_at_ms
        return self.ledger.amounts + self._sum

    def live_estimated(self) -> bool:
        return self.pending[-1].estimated if self.pending else self.ledger.estimated

    @property
    def profile_condition_pending(self) -> bool:
        """Whether the stored ``CostProfileApplied`` condition differs from what it should say."""
        if not self.profile_checked:
            return False
        want = self.profile_condition
        have = self.info.condition(COST_PROFILE_CONDITION)
        if want is None:
            return have is not None
        return have is None or (have.get("status"), have.get("reason"), have.get("message")) != (
            want.status,
            want.reason,
            want.message,
        )

    @property
    def budget_exceeded(self) -> bool:
        """The budget is passed: reported on the job already, or about to be."""
        cond = self.info.condition(BUDGET_CONDITION)
        return self.budget_verdict is not None or (cond is not None and cond.get("status") == "True")


class NodeTotals:
    """Per-node cumulative amounts of this process (counters in ``/metrics``; they restart with it).

    Arrays aligned with the node table's order, re-keyed only when the set of nodes changes; a node
    that leaves keeps its totals (a counter must not go backwards while the process lives).
    """

    COLUMNS = 15

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self._index: dict[str, int] = {}
        self._data = np.zeros((0, self.COLUMNS))
        """Columns: cost (3), idle (3), other (3), joules, idle joules, re-pricing (3), re-pricing joules."""

    def _align(self, names: Sequence[str]) -> None:
        if tuple(names) == self.names[: len(names)]:
            return
        old, old_index = self._data, self._index
        current = set(names)
        merged = list(names) + [n for n in self.names if n not in current]
        self._index = {n: i for i, n in enumerate(merged)}
        self._data = np.zeros((len(merged), self.COLUMNS))
        for n, i in old_index.items():
            self._data[self._index[n]] = old[i]
        self.names = tuple(merged)

    def add(self, names: Sequence[str], acc: WindowAccount) -> None:
        self._align(names)
        n = len(names)  # the table's nodes come first in the merged order
        block = self._data[:n]
        block[:, 0:3] += acc.node_cost
        block[:, 3:6] += acc.idle_cost
        block[:, 6:9] += acc.other_cost
        block[:, 9] += acc.node_joules
        block[:, 10] += acc.idle_joules
        block[:, 11:14] += acc.repricing_cost
        block[:, 14] += acc.repricing_joules

    def _column(self, lo: int, hi: int) -> dict[str, NDArray[np.float64]]:
        return {n: self._data[i, lo:hi] for n, i in self._index.items()}

    @property
    def cost(self) -> dict[str, NDArray[np.float64]]:
        """node -> (hardware, energy, operations)."""
        return self._column(0, 3)

    @property
    def idle(self) -> dict[str, NDArray[np.float64]]:
        return self._column(3, 6)

    @property
    def other(self) -> dict[str, NDArray[np.float64]]:
        return self._column(6, 9)

    @property
    def joules(self) -> dict[str, float]:
        return {n: float(self._data[i, 9]) for n, i in self._index.items()}

    @property
    def idle_joules(self) -> dict[str, float]:
        return {n: float(self._data[i, 10]) for n, i in self._index.items()}

    @property
    def repricing(self) -> dict[str, NDArray[np.float64]]:
        """node -> what jobs re-priced by ``spec.costProfile`` paid beyond their share at the node's profile."""
        return self._column(11, 14)

    @property
    def repricing_joules(self) -> dict[str, float]:
        return {n: float(self._data[i, 14]) for n, i in self._index.items()}


@dataclass(frozen=True)
class JobView:
    namespace: str
    name: str
    amounts: Amounts
    per_hour: float
    estimated: bool
    finished: bool
    budget: Budget | None = None
    budget_exceeded: bool = False


@dataclass(frozen=True)
class AccountingView:
    """What ``/metrics`` shows, replaced whole after every tick (the collector never sees half a tick)."""

    at: float
    currency: str
    nodes: NodeAccountingTable | None
    last_window: WindowAccount | None
    instance_types: tuple[str, ...]
    gpu_hardware_fraction: NDArray[np.float64]
    totals: NodeTotals
    jobs: Mapping[tuple[str, str], JobView]
    tick_seconds: float
    writes: Mapping[str, int]
    """Outcome -> count since start: ok, conflict, not_found, error, skipped."""
    telemetry_errors: Mapping[str, int]
    pending_jobs: int
    estimated_nodes: int
    active: bool = True
    """False while this replica stands by (kopf peering): it then shows no job or node series."""


@dataclass
class TickReport:
    at: float
    windows: list[tuple[float, float]]
    jobs: int
    nodes: int
    pods: int
    estimated_nodes: int
    due: int
    telemetry_errors: Mapping[str, str]
    skipped: list[str]
    seconds: float


class WriteLimiter:
    """Token bucket on accounting time: ``rate`` writes per second, ``burst`` beyond one interval."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = 0.0
        self.at: float | None = None

    def refill(self, now: float, first_allowance: float) -> None:
        if self.at is None:
            self.tokens = min(self.capacity, first_allowance)  # a fresh process may write one tick's worth
        elif now > self.at:
            self.tokens = min(self.capacity, self.tokens + self.rate * (now - self.at))
        self.at = now if self.at is None else max(self.at, now)


class AccountingLoop:
    """Owns the accounting state of one operator process. See the module docstring."""

    def __init__(
        self,
        kube: KubeApi,
        profiles: ProfileSet,
        settings: AccountingSettings | None = None,
        telemetry: TelemetrySource | None = None,
        identity: NodeIdentity | None = None,
    ) -> None:
        self.kube = kube
        self.profiles = profiles
        self.settings = settings or AccountingSettings()
        self.telemetry = telemetry
        self.identity = identity or (
            self.settings.prometheus.identity if self.settings.prometheus is not None else NodeIdentity()
        )
        self.jobs: dict[str, JobState] = {}
        self._parser = InventoryParser()
        self.totals = NodeTotals()
        self.last_tick: float | None = None
        s = self.settings
        self.limiter = WriteLimiter(
            s.max_writes_per_second, s.max_writes_per_second * s.interval_seconds + s.write_burst
        )
        self._table: NodeAccountingTable | None = None
        self._table_key: tuple[object, ...] | None = None
        self._gpu_hw_fraction = np.zeros(0)
        self._instance_types: tuple[str, ...] = ()
        self._last_window: WindowAccount | None = None
        self._due: list[str] = []
        self._writes: dict[str, int] = {"ok": 0, "conflict": 0, "not_found": 0, "error": 0}
        self._telemetry_errors: dict[str, int] = {}
        self._finished_views: dict[tuple[str, str], tuple[float, JobView]] = {}
        self._node_profiles: list[CostProfile] = []
        self._override_cache: dict[str, tuple[NodeAccountingTable, NDArray[np.bool_]]] = {}
        """Profile name -> every node priced with it, and which nodes it can price (cleared with the table)."""
        self._counted_until: float | None = None
        """End of the last window this process added to the node counters (kept across a standby spell, so
        windows recomputed after it are counted once here)."""
        self._view = AccountingView(
            0.0, profiles.currency, None, None, (), np.zeros(0), self.totals, {}, 0.0, dict(self._writes), {}, 0, 0
        )
        self._stopping = asyncio.Event()

    # --- public API ----------------------------------------------------------------------------------
    def view(self) -> AccountingView:
        return self._view

    async def tick(self, now: float) -> TickReport:
        """Account everything up to ``now`` and choose which statuses to write (``write_due`` sends them)."""
        raw_nodes, raw_pods, raw_jobs = await asyncio.gather(
            self.kube.list(NODES), self.kube.list(PODS), self.kube.list(LEPTONJOBS)
        )
        return await self.account(now, raw_nodes, raw_pods, raw_jobs)

    async def account(
        self,
        now: float,
        raw_nodes: Sequence[Mapping[str, Any]],
        raw_pods: Sequence[Mapping[str, Any]],
        raw_jobs: Sequence[Mapping[str, Any]],
        snapshots: Sequence[TelemetrySnapshot | None] | None = None,
    ) -> TickReport:
        """``tick`` after its LISTs: the inventory is given (and, for benchmarks, the telemetry too)."""
        started = time.perf_counter()
        now = round(now * 1000.0) / 1000.0  # the ledger's resolution: milliseconds
        nodes, pods, jobs, report = self._parser.parse(raw_nodes, raw_pods, raw_jobs)
        self._sync_jobs(jobs)
        table = self._node_table(nodes)
        windows = self._windows(now, pods) if table is not None else []
        if snapshots is None or len(snapshots) != len(windows):
            snapshots = await self._fetch(windows, nodes)
        job_order = [j.uid for j in jobs]
        telemetry_errors: dict[str, str] = {}
        estimated_nodes = 0
        pod_table = self._pod_table(table, pods, {uid: k for k, uid in enumerate(job_order)}) if table else None
        overrides: list[NodeAccountingTable] = []
        if table is not None and pod_table is not None:
            overrides, pod_table = self._reprice(table, jobs, pod_table)
        for (t0, t1), snap in zip(windows, snapshots, strict=True):
            assert table is not None and pod_table is not None
            if self.settings.attribution is AttributionPolicy.MEASURED_USAGE:
                pod_table = self._with_measured_shares(table, pods, pod_table, snap)
            if snap is not None:
                telemetry_errors.update(snap.errors)
            readings = NodeReadings.from_snapshot(snap, table.names)
            acc = account_window(table, pod_table, readings, t0=t0, t1=t1, jobs=len(job_order), overrides=overrides)
            if self._counted_until is None or t1 > self._counted_until:
                # Windows this process counted before a standby spell are recomputed for the jobs only.
                self.totals.add(table.names, acc)
                self._counted_until = t1
            self._accrue(job_order, acc)
            self._last_window = acc
            estimated_nodes = int(acc.node_estimated.sum())
        for name in telemetry_errors:
            self._telemetry_errors[name] = self._telemetry_errors.get(name, 0) + 1
        if self._last_window is not None and windows:
            rates = self._last_window.job_rate_per_hour
            for k, uid in enumerate(job_order):
                self.jobs[uid].per_hour = float(rates[k])
        if windows or self.last_tick is None or table is None:
            self.last_tick = now
        self.limiter.refill(now, self.settings.max_writes_per_second * self.settings.interval_seconds)
        self._check_budgets()
        self._due = self._choose_due(now)
        seconds = time.perf_counter() - started
        self._publish(now, table, seconds, estimated_nodes)
        return TickReport(
            now,
            windows,
            len(jobs),
            len(nodes),
            len(pods),
            estimated_nodes,
            len(self._due),
            telemetry_errors,
            report.skipped,
            seconds,
        )

    async def write_due(self, pace: Callable[[], Awaitable[None]] | None = None) -> int:
        """Send the status patches chosen by the last tick; returns how many writes succeeded.

        ``pace`` is awaited before each write (the real-time driver spreads writes over the tick);
        tests leave it out.
        """
        due, self._due = self._due, []
        sem = asyncio.Semaphore(self.settings.write_concurrency)
        now = self.last_tick or 0.0

        async def one(uid: str) -> bool:
            async with sem:
                if pace is not None:
                    await pace()
                return await self._write(uid, now)

        results = await asyncio.gather(*(one(uid) for uid in due))
        self._publish_writes()
        return sum(results)

    async def flush_all(self, now: float | None = None) -> int:
        """Write every job with pending windows regardless of the rate limit (graceful shutdown)."""
        now = self.last_tick if now is None else now
        self._due = [uid for uid, st in self.jobs.items() if st.has_pending or st.budget_verdict]
        self.limiter.tokens = max(self.limiter.tokens, float(len(self._due)) * 3)
        return await self.write_due()

    async def run(self, clock: Callable[[], float] = time.time, activity: Activity | None = None) -> None:
        """The real-time driver: tick every ``interval_seconds``, spreading the writes over the interval.

        With ``activity`` (kopf peering), tick only while this replica is the active one; see ``stand_by``.
        """
        interval = self.settings.interval_seconds
        spacing = self.settings.write_concurrency / self.settings.max_writes_per_second

        async def pace() -> None:
            await asyncio.sleep(spacing)  # each of the concurrent writers: together at most the rate

        while not self._stopping.is_set():
            if activity is not None and not activity.is_active():
                await self.stand_by(activity)
                continue
            started = time.monotonic()
            try:
                await self.tick(clock())
                await self.write_due(pace)
            except (KubeError, OSError) as exc:
                log.warning("accounting tick failed, retrying next interval: %s", exc)
            except Exception:  # a bug must not stop accounting for good; it is logged with its traceback
                log.exception("accounting tick crashed; retrying next interval")
            delay = max(0.0, interval - (time.monotonic() - started))
            # A replica paused mid-interval stops at once (the active one has taken over).
            await self._first_of(
                self._stopping.wait(), *([activity.wait_for(False)] if activity else []), timeout=delay
            )
        with contextlib.suppress(KubeError, OSError):
            await self.flush_all()

    async def stand_by(self, activity: Activity) -> None:
        """Idle while this replica is a standby: no LISTs, no telemetry, no writes, no job or node series.

        What was accounted but not yet written goes to the statuses first (like a graceful stop; a write
        that loses a race with the new active replica is re-read and re-settled, never counted twice).
        Then the loop forgets its jobs; when the replica becomes active again its first tick recomputes
        from each job's stored watermark, exactly as a restarted process would.
        """
        log.info("accounting paused: this replica is a standby (kopf peering)")
        try:
            await self.flush_all()
        except (KubeError, OSError) as exc:
            log.warning("could not write pending accounting windows before standing by: %s", exc)
        except Exception:  # the active replica recomputes them from the watermarks; standing by must go on
            log.exception("writing pending accounting windows before standing by crashed")
        self.reset()
        await self._first_of(self._stopping.wait(), activity.wait_for(True))
        if not self._stopping.is_set():
            log.info("accounting resumed: this replica is the active one")

    def reset(self) -> None:
        """Forget jobs, pending windows and the last tick (not the node counters: they only grow)."""
        self.jobs.clear()
        self._finished_views.clear()
        self.last_tick = None
        self._due = []
        self._last_window = None
        self._view = dataclasses.replace(
            self._view,
            nodes=None,
            last_window=None,
            instance_types=(),
            gpu_hardware_fraction=np.zeros(0),
            jobs={},
            writes=dict(self._writes),
            pending_jobs=0,
            estimated_nodes=0,
            active=False,
        )

    @staticmethod
    async def _first_of(*waits: Awaitable[Any], timeout: float | None = None) -> None:
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        """Close the telemetry fetcher (the API client belongs to whoever passed it in)."""
        close = getattr(self.telemetry, "close", None)
        if close is not None:
            await close()

    # --- tick internals ---------------------------------------------------------------------------------
    def _sync_jobs(self, jobs: Sequence[JobInfo]) -> None:
        seen = set()
        for info in jobs:
            seen.add(info.uid)
            state = self.jobs.get(info.uid)
            if state is None or state.info.resource_version != info.resource_version:
                try:
                    stored = ledger_from_status(info.status, self.settings.history)
                    bad = None
                except ValueError as exc:
                    stored, bad = Ledger(), str(exc)
                    log.error("leptonjob %s/%s: unreadable cost status, not writing it: %s", *info.key, exc)
                if state is None:
                    state = JobState(info, stored, bad_status=bad)
                    state.clear_pending()
                    self.jobs[info.uid] = state
                else:
                    state.info = info
                    state.bad_status = bad
                    # The stored status is the truth: adopt it when it is ahead of what we know (another
                    # replica wrote) and keep our pending windows; settling skips what it already holds.
                    if stored.observed_at_ms is not None and (
                        state.ledger.observed_at_ms is None or stored.observed_at_ms >= state.ledger.observed_at_ms
                    ):
                        state.ledger = stored
        for uid in [u for u in self.jobs if u not in seen]:
            gone = self.jobs.pop(uid)
            view = self._job_view(gone)
            self._finished_views[gone.info.key] = (self.last_tick or 0.0, view)

    def _node_table(self, nodes: Sequence[NodeInfo]) -> NodeAccountingTable | None:
        if not nodes:
            return None
        key = tuple(n.signature() for n in nodes)
        if self._table is not None and key == self._table_key:
            return self._table
        profiles = [self.profiles.resolve(n.labels).profile for n in nodes]
        alloc = resource_matrix([n.allocatable for n in nodes])
        table = NodeAccountingTable.from_profiles([n.name for n in nodes], profiles, alloc, self.profiles.currency)
        self._node_profiles = profiles
        self._override_cache.clear()
        gpu_counts = alloc[:, 2]
        self._gpu_hw_fraction = np.array(
            [
                (g * p.price_per_gpu) / (p.hardware.purchase_price + g * p.price_per_gpu)
                if p.hardware.purchase_price + g * p.price_per_gpu > 0
                else 0.0
                for p, g in zip(profiles, gpu_counts, strict=True)
            ]
        )
        self._instance_types = tuple(n.instance_type or p.name for n, p in zip(nodes, profiles, strict=True))
        self._table, self._table_key = table, key
        return table

    def _windows(self, now: float, pods: Sequence[PodInfo]) -> list[tuple[float, float]]:
        if self.last_tick is not None:
            return [(self.last_tick, now)] if now > self.last_tick else []
        # First tick of this process: recompute from the oldest point a job still has unaccounted running
        # time — its watermark, or its first pod's start if it was never accounted. Jobs whose pods all
        # ended before their watermark have nothing left, and must not drag the start back (the nodes'
        # counters of this process would count those windows again).
        starts: list[float] = []
        pods_of: dict[str, list[PodInfo]] = {}
        for p in pods:
            if p.job_uid is not None:
                pods_of.setdefault(p.job_uid, []).append(p)
        for uid, st in self.jobs.items():
            if uid not in pods_of or st.bad_status is not None:
                continue
            watermark = None if st.ledger.observed_at_ms is None else st.ledger.observed_at_ms / 1000.0
            unaccounted = [p for p in pods_of[uid] if watermark is None or p.end_s > watermark]
            if not unaccounted:
                continue
            first_start = min(p.start_s for p in unaccounted)
            starts.append(first_start if watermark is None else max(watermark, first_start))
        if not starts:
            return []
        floor = now - self.settings.max_backfill_seconds
        start = max(min(starts), floor)
        if min(starts) < floor:
            log.warning(
                "accounting restarts %.0f s after the oldest watermark; charging the last %.0f s only",
                now - min(starts),
                self.settings.max_backfill_seconds,
            )
        if start >= now:
            return []
        step = self.settings.step_seconds
        # Long gaps are recomputed in fewer, longer windows: a counter's rate over any window is its
        # exact mean there, so only the gauges' and pod boundaries' resolution gets coarser.
        count = min(self.settings.max_backfill_windows, max(1, math.ceil((now - start) / step - 1e-9)))
        step_ms = math.ceil((now - start) * 1000.0 / count)
        edges = [now - (count - k) * step_ms / 1000.0 for k in range(count + 1)]
        # The window ends stay on one grid (one range query serves them all), but the first window starts
        # exactly where the recomputation must, not up to `count` ms earlier: the node counters would count
        # that sliver again after an orderly handover (the previous replica's last window ended there).
        if edges[0] < start < edges[1]:
            edges[0] = start
        counted = self._counted_until
        if counted is not None and edges[0] < counted < now and counted not in edges:
            # After a standby spell: an edge where this process's node counters stopped, so the windows
            # before it (already counted here) and after it (not yet) are told apart exactly.
            edges = sorted([*edges, counted])
        return list(itertools.pairwise(edges))

    async def _fetch(
        self, windows: Sequence[tuple[float, float]], nodes: Sequence[NodeInfo]
    ) -> list[TelemetrySnapshot | None]:
        if not windows:
            return []
        if self.telemetry is None:
            return [None] * len(windows)
        identity = self.identity.with_nodes({n.name: n.addresses for n in nodes})
        if len(windows) == 1:
            t0, t1 = windows[0]
            snap = await self.telemetry.fetch(at=t1, window_seconds=max(t1 - t0, 1e-3), identity=identity)
            return [snap]
        step = windows[0][1] - windows[0][0]
        snaps = await self.telemetry.fetch_range(windows[0][0], windows[-1][1], step, identity=identity)
        by_time = {round(s.fetched_at * 1000): s for s in snaps}
        return [by_time.get(round(t1 * 1000)) for _, t1 in windows]

    def _pod_table(self, table: NodeAccountingTable, pods: Sequence[PodInfo], job_index: Mapping[str, int]) -> PodTable:
        index = self._node_index(table)
        rows = [p for p in pods if p.node in index]
        return PodTable(
            node=np.fromiter((index[p.node] for p in rows), dtype=np.intp, count=len(rows)),
            requests=resource_matrix([p.requests for p in rows]),
            job=np.fromiter(
                (job_index.get(p.job_uid, -1) if p.job_uid else -1 for p in rows), dtype=np.intp, count=len(rows)
            ),
            start_s=np.fromiter((p.start_s for p in rows), dtype=np.float64, count=len(rows)),
            end_s=np.fromiter((p.end_s for p in rows), dtype=np.float64, count=len(rows)),
        )

    def _with_measured_shares(
        self, table: NodeAccountingTable, pods: Sequence[PodInfo], pod_table: PodTable, snap: TelemetrySnapshot | None
    ) -> PodTable:
        """Shares from measured CPU cores (cAdvisor) over the node's allocatable cores; NaN = use requests."""
        index = self._node_index(table)
        rows = [p for p in pods if p.node in index]
        shares = np.full(len(rows), np.nan)
        if snap is not None:
            for i, p in enumerate(rows):
                t = snap.pods.get((p.namespace, p.name))
                cores = table.allocatable[index[p.node], 0]
                if t is not None and t.cpu_cores is not None and cores > 0:
                    shares[i] = t.cpu_cores / cores
        return dataclasses.replace(pod_table, share_override=shares)

    def _override_table(
        self, table: NodeAccountingTable, profile: CostProfile
    ) -> tuple[NodeAccountingTable, NDArray[np.bool_]]:
        """The nodes priced with ``profile``, and where it can price them at all.

        A profile without a GPU power model cannot price a node with GPUs (``CostProfile.power_model``
        refuses); such nodes keep their own profile in the table and are marked unusable.
        """
        cached = self._override_cache.get(profile.name)
        if cached is not None:
            return cached
        usable = np.ones(len(table), dtype=bool)
        chosen: list[CostProfile] = []
        for i, own in enumerate(self._node_profiles):
            try:
                profile.power_model(gpu_count=round(float(table.allocatable[i, 2])))
                chosen.append(profile)
            except ProfileError:
                usable[i] = False
                chosen.append(own)
        priced = NodeAccountingTable.from_profiles(table.names, chosen, table.allocatable, self.profiles.currency)
        self._override_cache[profile.name] = (priced, usable)
        return priced, usable

    def _reprice(
        self, table: NodeAccountingTable, jobs: Sequence[JobInfo], pod_table: PodTable
    ) -> tuple[list[NodeAccountingTable], PodTable]:
        """Which pods ``spec.costProfile`` re-prices, with which tables; sets each job's condition."""
        overrides: list[NodeAccountingTable] = []
        usable: list[NDArray[np.bool_]] = []
        position: dict[str, int] = {}
        job_pricing = np.full(len(jobs), -1, dtype=np.intp)
        unknown: dict[int, str] = {}
        for k, info in enumerate(jobs):
            name = info.cost_profile
            if name is None:
                continue
            if name not in position:
                try:
                    profile = self.profiles.by_name(name)
                except KeyError:
                    unknown[k] = name
                    continue
                priced, ok = self._override_table(table, profile)
                position[name] = len(overrides)
                overrides.append(priced)
                usable.append(ok)
            job_pricing[k] = position[name]
        refused: dict[int, set[str]] = {}
        pricing = np.full(len(pod_table), -1, dtype=np.intp)
        if overrides:
            is_job = pod_table.job >= 0
            pricing[is_job] = job_pricing[pod_table.job[is_job]]
        for k, ok in enumerate(usable):
            bad = np.flatnonzero((pricing == k) & ~ok[pod_table.node])
            for pod in bad.tolist():
                refused.setdefault(int(pod_table.job[pod]), set()).add(table.names[int(pod_table.node[pod])])
            pricing[bad] = -1
        known = ", ".join(p.name for p in self.profiles.profiles)
        for k, info in enumerate(jobs):
            state = self.jobs[info.uid]
            state.profile_checked = True
            name = info.cost_profile
            if name is None:
                state.profile_condition = None
            elif k in unknown:
                state.profile_condition = Condition(
                    COST_PROFILE_CONDITION,
                    "False",
                    "UnknownCostProfile",
                    f"spec.costProfile: no cost profile named {name!r} (known: {known}); the job is charged "
                    "with its nodes' own profiles",
                )
            elif k in refused:
                nodes = ", ".join(sorted(refused[k])[:5]) + (", ..." if len(refused[k]) > 5 else "")
                state.profile_condition = Condition(
                    COST_PROFILE_CONDITION,
                    "False",
                    "CostProfileMismatch",
                    f"spec.costProfile: profile {name!r} has no GPU power model, so it cannot price GPU node(s) "
                    f"{nodes}; the job's pods there are charged with those nodes' own profiles",
                )
            else:
                state.profile_condition = Condition(
                    COST_PROFILE_CONDITION,
                    "True",
                    "CostProfileApplied",
                    f"spec.costProfile: the job's share of its nodes is priced with cost profile {name!r} "
                    "instead of the nodes' own",
                )
        if not overrides:
            return [], pod_table
        return overrides, dataclasses.replace(pod_table, pricing=pricing)

    _index_cache: tuple[NodeAccountingTable, dict[str, int]] | None = None

    def _node_index(self, table: NodeAccountingTable) -> dict[str, int]:
        # Keyed by the table object itself (held here), not its id(): ids are reused after collection.
        if self._index_cache is None or self._index_cache[0] is not table:
            self._index_cache = (table, table.index())
        return self._index_cache[1]

    def _accrue(self, job_order: Sequence[str], acc: WindowAccount) -> None:
        end_ms = round(acc.t1 * 1000.0)
        touched = np.flatnonzero((acc.job_active_seconds > 0.0) | (acc.job_cost != 0.0).any(axis=1))
        for k, inc in acc.increments(touched.tolist()).items():
            state = self.jobs[job_order[k]]
            watermark = state.ledger.observed_at_ms
            if watermark is not None and end_ms <= watermark:
                continue  # already in the stored ledger (recomputed after a restart)
            state.add_pending(inc)

    def _check_budgets(self) -> None:
        for state in self.jobs.values():
            info = state.info
            if info.budget is None or state.budget_verdict is not None:
                continue
            cond = info.condition(BUDGET_CONDITION)
            if cond is not None and cond.get("status") == "True":
                continue  # already reported (by us or a previous process)
            amounts = state.live_amounts()
            verdict = check_budget(
                info.budget, amounts.cost().total, amounts.joules / JOULES_PER_KWH, self.profiles.currency
            )
            if verdict.exceeded:
                state.budget_verdict = (verdict.reason, verdict.message)
                log.info("leptonjob %s/%s: %s", info.namespace, info.name, verdict.message)

    def _choose_due(self, now: float) -> list[str]:
        urgent: list[str] = []
        normal: list[tuple[float, str]] = []
        min_gap = self.settings.min_flush_interval_seconds
        for uid, st in self.jobs.items():
            if st.bad_status is not None:
                continue
            has_pending = st.has_pending
            if (
                st.budget_verdict is not None
                or st.profile_condition_pending
                or (has_pending and (st.info.finished or st.ledger.observed_at_ms is None))
            ):
                urgent.append(uid)
            elif has_pending and now - st.last_write_at >= min_gap:
                normal.append((st.last_write_at, uid))
        normal.sort()
        chosen: list[str] = []
        for uid in [*urgent, *(u for _, u in normal)]:
            st = self.jobs[uid]
            # A budget verdict costs up to three writes (status, event, action), a cost profile that
            # cannot be applied two (status, event); reserve them.
            cost = 1 + (2 if st.budget_verdict is not None else 0)
            if (
                st.profile_condition_pending
                and st.profile_condition is not None
                and st.profile_condition.status != "True"
            ):
                cost += 1
            if self.limiter.tokens < cost:
                break
            self.limiter.tokens -= cost
            chosen.append(uid)
        return chosen

    # --- writes --------------------------------------------------------------------------------------
    async def _write(self, uid: str, now: float) -> bool:
        state = self.jobs.get(uid)
        if state is None:
            return False
        for attempt in range(2):
            try:
                await self._write_once(state, now)
                self._writes["ok"] += 1
                return True
            except Conflict:
                self._writes["conflict"] += 1
                if attempt == 1:
                    return False
                try:
                    fresh = await self.kube.get(LEPTONJOBS, state.info.namespace, state.info.name)
                    state.info = parse_job(fresh)
                    state.ledger = ledger_from_status(state.info.status, self.settings.history)
                except NotFound:
                    self._writes["not_found"] += 1
                    return False
                except (KubeError, ValueError) as exc:
                    log.warning("leptonjob %s/%s: re-read after a conflict failed: %s", *state.info.key, exc)
                    self._writes["error"] += 1
                    return False
            except NotFound:
                self._writes["not_found"] += 1
                return False
            except KubeError as exc:
                log.warning("leptonjob %s/%s: status write failed, retrying next tick: %s", *state.info.key, exc)
                self._writes["error"] += 1
                return False
        return False

    async def _write_once(self, state: JobState, now: float) -> None:
        info = state.info
        new = state.ledger.settle(state.pending)
        verdict = state.budget_verdict
        profile = state.profile_condition if state.profile_condition_pending else None
        profile_pending = state.profile_condition_pending
        if new.observed_at_ms is None and verdict is None and not profile_pending:
            return
        to_complete = cost_to_complete(info.expected_duration_seconds, new.active_ms / 1000.0, state.per_hour)
        status: dict[str, Any] = {}
        if new.observed_at_ms is not None:
            status.update(
                status_patch(new, currency=self.profiles.currency, per_hour=state.per_hour, to_complete=to_complete)
            )
        updates: list[Condition] = []
        if verdict is not None:
            updates.append(Condition(BUDGET_CONDITION, "True", *verdict))
        if profile is not None:
            updates.append(profile)
        if updates or profile_pending:
            moment = datetime.fromtimestamp(now, tz=UTC)
            kept = info.conditions
            if profile_pending and state.profile_condition is None:  # spec.costProfile was removed
                kept = tuple(c for c in kept if c.get("type") != COST_PROFILE_CONDITION)
            status["conditions"] = merge_conditions(kept, updates, moment)
        patch = {"metadata": {"resourceVersion": info.resource_version}, "status": status}
        body = await self.kube.merge_patch(LEPTONJOBS, info.namespace, info.name, patch, subresource="status")
        state.info = parse_job(body)
        state.ledger = new
        state.clear_pending()
        state.last_write_at = now
        if profile is not None and profile.status != "True":
            await self._event(info, profile.reason, profile.message, now)
        if verdict is not None:
            state.budget_verdict = None
            await self._budget_side_effects(info, verdict, now)

    async def _event(self, info: JobInfo, reason: str, message: str, now: float) -> None:
        """One Warning event on the job (best effort: a lost event must not lose the status it explains)."""
        stamp = format_time(now)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{info.name}.", "namespace": info.namespace},
            "involvedObject": {
                "apiVersion": LEPTONJOBS.api_version,
                "kind": "LeptonJob",
                "name": info.name,
                "namespace": info.namespace,
                "uid": info.uid,
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "source": {"component": "lepton-accounting"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.kube.create(EVENTS, info.namespace, event)
        except KubeError as exc:
            log.warning("leptonjob %s/%s: could not record the %s event: %s", *info.key, reason, exc)

    async def _budget_side_effects(self, info: JobInfo, verdict: tuple[str, str], now: float) -> None:
        reason, message = verdict
        assert info.budget is not None
        await self._event(info, BUDGET_CONDITION, message, now)
        action = info.budget.action
        try:
            if action is BudgetAction.SUSPEND and not info.suspended:
                await self.kube.merge_patch(LEPTONJOBS, info.namespace, info.name, {"spec": {"suspend": True}})
            elif action is BudgetAction.STOP and not info.finished:
                annotations = {ANNOTATION_STOP: reason, ANNOTATION_STOP_MESSAGE: message}
                await self.kube.merge_patch(
                    LEPTONJOBS, info.namespace, info.name, {"metadata": {"annotations": annotations}}
                )
        except KubeError as exc:
            log.warning("leptonjob %s/%s: budget action %s failed: %s", *info.key, action, exc)

    # --- views ---------------------------------------------------------------------------------------
    def _job_view(self, st: JobState) -> JobView:
        return JobView(
            st.info.namespace,
            st.info.name,
            st.live_amounts(),
            st.per_hour,
            st.live_estimated(),
            st.info.finished,
            st.info.budget,
            st.budget_exceeded,
        )

    def _publish(self, now: float, table: NodeAccountingTable | None, seconds: float, estimated_nodes: int) -> None:
        retention = self.settings.finished_job_metrics_retention_seconds
        for key in [k for k, (t, _) in self._finished_views.items() if now - t > retention]:
            del self._finished_views[key]
        jobs = {k: v for k, (_, v) in self._finished_views.items()}
        for st in self.jobs.values():
            jobs[st.info.key] = self._job_view(st)
        pending = sum(1 for st in self.jobs.values() if st.pending)
        self._view = AccountingView(
            at=now,
            currency=self.profiles.currency,
            nodes=table,
            last_window=self._last_window,
            instance_types=self._instance_types,
            gpu_hardware_fraction=self._gpu_hw_fraction,
            totals=self.totals,
            jobs=jobs,
            tick_seconds=seconds,
            writes=dict(self._writes),
            telemetry_errors=dict(self._telemetry_errors),
            pending_jobs=pending,
            estimated_nodes=estimated_nodes,
        )

    def _publish_writes(self) -> None:
        v = self._view
        jobs = dict(v.jobs)
        for st in self.jobs.values():
            jobs[st.info.key] = self._job_view(st)
        self._view = dataclasses.replace(
            v, jobs=jobs, writes=dict(self._writes), pending_jobs=sum(1 for st in self.jobs.values() if st.pending)
        )
