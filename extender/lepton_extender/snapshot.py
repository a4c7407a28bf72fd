"""The extender's in-memory view of the cluster: nodes, pods, recent placements, telemetry.

Requests only read this (and record their own placements); it is fed in the background by a
``ClusterSource`` (``sources``: a Kubernetes watch, or a static inventory) and by the telemetry
refresher (``refresh``), all on the event loop's thread, so no locks are needed.

Layout: the scoring arrays (``lepton_core.scoring.NodeState``) are rebuilt when the node *set* or a
node's size or labels change (rare; done by the refresher, never on the request path), and updated in
place for everything else (pods, placements, telemetry, prices).

**Recent placements** (burst compensation, as crane-scheduler's "hot value"):

* when prioritize ranks nodes for a pod, the best node is *assumed* to get it: its requests, its
  workload count and its pending busy load grow by the pod's, so the next pod of a burst sees it;
* when the watch shows the pod bound, the assumption's requests are dropped (the bound pod is counted
  from then on) and its pending load moves to the node it was actually bound to;
* a pod bound since startup that we did not assume (another scheduler, a retry) is pending too;
* pending load counts until the node's telemetry was observed ``settle_seconds`` after the placement
  (the pod has started and shows up in the measured utilization); an assumption never bound is
  dropped after ``assume_ttl_seconds``.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from lepton_core.compiled import jit
from lepton_core.kube.objects import NodeInfo, PodInfo, Resources
from lepton_core.profiles import CostProfile, ProfileError, ProfileSet
from lepton_core.scoring import COL, NodeCostTable, NodeState, PodDemand, score_nodes
from lepton_core.telemetry import NodeTelemetry, Signal, TelemetrySnapshot
from lepton_extender.names import NameTable, Resolved
from lepton_extender.names import warm_up as warm_up_name_readers
from lepton_extender.wire import ExtenderArgs, PriorityTable

log = logging.getLogger("lepton.extender.snapshot")

LOOKUP_CACHE_SIZE = 64
"""Candidate lists whose node positions are kept (``ClusterSnapshot.lookup``)."""

_REQ_CPU = COL["requested_cpu_cores"]
_REQ_MEM = COL["requested_memory_bytes"]
_REQ_GPU = COL["requested_gpus"]
_WORKLOAD = COL["workload_pods"]
_PENDING_CPU = COL["pending_cpu_cores"]
_PENDING_GPU = COL["pending_gpus"]


# Records kept per placed pod are tuples of plain values: the cyclic garbage collector stops tracking
# such tuples, so tens of thousands of them (a burst, assumptions living 30 s) do not lengthen its
# full collections, which run on the request path.
class _Placement(NamedTuple):
    """A pod placed on a node that telemetry may not show yet."""

    node: str
    busy_cpu_cores: float
    busy_gpus: float
    placed_at: float


class _Demand(NamedTuple):
    """What an assumed pod adds to its node (a ``PodDemand``'s figures)."""

    cpu_cores: float
    memory_bytes: float
    gpus: float
    busy_cpu_cores: float
    busy_gpus: float

    @classmethod
    def of(cls, d: PodDemand) -> _Demand:
        return cls(d.cpu_cores, d.memory_bytes, d.gpus, d.busy_cpu_cores, d.busy_gpus)


class _Assumption(NamedTuple):
    node: str
    demand: _Demand
    assumed_at: float


@dataclass(frozen=True, slots=True)
class _Counted:
    """What a bound pod adds to its node (so a delete subtracts exactly that)."""

    node: str
    requests: Resources
    workload: bool


@dataclass(slots=True)
class SnapshotStats:
    nodes: int = 0
    unmatched_profile_nodes: int = 0
    rebuilds: int = 0
    telemetry_fetched_at: float | None = None
    synced: bool = False
    lookup_hits: int = 0
    relayouts: int = 0


@dataclass
class ClusterSnapshot:
    """See the module docstring. ``clock`` is injectable so tests control time."""

    profiles: ProfileSet
    clock: Callable[[], float]
    assume_ttl_seconds: float = 30.0
    settle_seconds: float = 60.0
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    telemetry: TelemetrySnapshot | None = None
    stats: SnapshotStats = field(default_factory=SnapshotStats)
    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    state: NodeState | None = None
    priorities: PriorityTable = field(default_factory=lambda: PriorityTable([]))
    """Pre-encoded prioritize answer entries per node (``wire.PriorityTable``)."""
    version: int = 0
    """Bumped whenever the scoring arrays change (rebuild, requests, placements, telemetry, prices): a
    result computed at one version is what scoring would answer again until it changes."""
    _counted: dict[str, _Counted] = field(default_factory=dict)
    _assumed: dict[str, _Assumption] = field(default_factory=dict)
    _placements: dict[str, _Placement] = field(default_factory=dict)
    _dirty: bool = True
    _warned: set[str] = field(default_factory=set)
    _price_hour: float = math.nan
    _pending_checked_at: float = -math.inf
    _lookups: OrderedDict[bytes, Resolved] = field(default_factory=OrderedDict)
    _name_table: NameTable = field(default_factory=lambda: NameTable([]))
    _layout: dict[str, int] = field(default_factory=dict)
    """Node name -> rank in the order kube-scheduler sends candidates (``relayout``); empty: by name."""
    _layout_checked_at: float = -math.inf

    @property
    def assumptions(self) -> int:
        """Pods placed by prioritize and not bound yet."""
        return len(self._assumed)

    @property
    def pending_placements(self) -> int:
        """Placements counted on top of measured load (burst compensation)."""
        return len(self._placements)

    # --- feeding: nodes and pods ----------------------------------------------------------------
    def upsert_node(self, info: NodeInfo) -> None:
        old = self.nodes.get(info.name)
        self.nodes[info.name] = info
        if old != info:
            self._dirty = True

    def delete_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is not None:
            self._dirty = True

    def upsert_pod(self, pod: PodInfo) -> None:
        old = self.pods.get(pod.uid)
        self.pods[pod.uid] = pod
        self._uncount(pod.uid)
        if pod.node_name and not pod.terminal:
            self._count(pod)
            newly_bound = old is None or old.node_name != pod.node_name
            assumption = self._assumed.pop(pod.uid, None)
            if assumption is not None:
                self._apply_requests(assumption.node, assumption.demand, -1.0)
            if newly_bound and self.stats.synced:
                # Bound since startup: pending until telemetry sees it (moves an assumption's pending load).
                self._set_placement(pod.uid, pod.node_name, pod.demand, self.clock())
        elif pod.terminal:
            self._forget_placement(pod.uid)

    def delete_pod(self, uid: str) -> None:
        self.pods.pop(uid, None)
        self._uncount(uid)
        assumption = self._assumed.pop(uid, None)
        if assumption is not None:
            self._apply_requests(assumption.node, assumption.demand, -1.0)
        self._forget_placement(uid)

    def mark_synced(self) -> None:
        """The source has listed everything once: pods bound from now on are new placements."""
        self.stats.synced = True

    def retain_nodes(self, names: set[str]) -> None:
        """Keep only these nodes (a source re-listed: anything else was deleted meanwhile)."""
        for name in [n for n in self.nodes if n not in names]:
            self.delete_node(name)

    def retain_pods(self, uids: set[str]) -> None:
        """Keep only these pods (a source re-listed: anything else was deleted meanwhile)."""
        for uid in [u for u in self.pods if u not in uids]:
            self.delete_pod(uid)

    # --- feeding: telemetry -----------------------------------------------------------------------
    def apply_telemetry(self, snap: TelemetrySnapshot) -> None:
        self.telemetry = snap
        self.stats.telemetry_fetched_at = snap.fetched_at
        if self.state is not None:
            self._write_telemetry(snap.nodes.values())
            self._recompute_pending()

    def _write_telemetry(self, records: Iterable[NodeTelemetry]) -> None:
        state = self.state
        assert state is not None
        rows: list[int] = []
        cpu: list[float] = []
        gpu: list[float] = []
        seen: list[float] = []
        power: list[float] = []
        for t in records:
            i = self.index.get(t.node)
            if i is None:
                continue
            rows.append(i)
            cpu.append(math.nan if t.cpu_utilization is None else t.cpu_utilization)
            gpu.append(math.nan if t.gpu_utilization is None else t.gpu_utilization)
            times = [t.sample_times[s] for s in (Signal.CPU_UTILIZATION, Signal.GPU_UTILIZATION) if s in t.sample_times]
            # The older of the two utilization samples: a node is only as fresh as its stalest input.
            seen.append(min(times) if times else t.observed_at)
            power.append(math.nan if t.measured_power_watts is None else t.measured_power_watts)
        if not rows:
            return
        idx = np.asarray(rows, dtype=np.intp)
        columns = (
            state.cpu_utilization,
            state.gpu_utilization,
            state.telemetry_observed_at,
            state.measured_power_watts,
        )
        values = (np.clip(cpu, 0.0, 1.0), np.clip(gpu, 0.0, 1.0), np.asarray(seen), np.asarray(power))
        if all(np.array_equal(c[idx], v, equal_nan=True) for c, v in zip(columns, values, strict=True)):
            # The same samples again (polled faster than Prometheus scrapes): nothing a score depends on
            # changed, so the version stays and a kept filter scoring stays valid for its prioritize.
            return
        self.version += 1
        for c, v in zip(columns, values, strict=True):
            c[idx] = v

    # --- requests: placements ---------------------------------------------------------------------
    def assume(self, uid: str, node: str, demand: PodDemand) -> None:
        """Prioritize ranked ``node`` best for pod ``uid``: count it there until the watch says otherwise."""
        if uid in self._counted:
            return  # already bound (a late or repeated call): the watch counts it
        now = self.clock()
        d = _Demand.of(demand)
        i = self.index.get(node)
        if i is not None and self.state is not None and uid not in self._assumed and uid not in self._placements:
            # A pod seen for the first time (every prioritize of a new pod): its requests and its pending
            # load in one compiled call, the same sums _apply_requests and _set_placement make.
            self.version += 1
            _place_on_row(self.state.block, i, d.cpu_cores, d.memory_bytes, d.gpus, d.busy_cpu_cores, d.busy_gpus)
            self._assumed[uid] = _Assumption(node, d, now)
            self._placements[uid] = _Placement(node, d.busy_cpu_cores, d.busy_gpus, now)
            return
        previous = self._assumed.pop(uid, None)
        if previous is not None:
            self._apply_requests(previous.node, previous.demand, -1.0)
        self._assumed[uid] = _Assumption(node, d, now)
        self._apply_requests(node, d, +1.0)
        self._set_placement(uid, node, d, now)

    def expire(self) -> None:
        """Drop assumptions never bound within the TTL and placements past the horizon (background tick).

        Both are kept in the order they were made (``assume`` re-inserts; a placement keeps its first
        time), so the expired ones are a prefix: the loops stop at the first live entry instead of
        walking (or copying) tens of thousands of them every tick during a burst.
        """
        now = self.clock()
        expired = []
        for uid, a in self._assumed.items():
            if now - a.assumed_at <= self.assume_ttl_seconds:
                break
            expired.append((uid, a))
        for uid, a in expired:
            del self._assumed[uid]
            self._apply_requests(a.node, a.demand, -1.0)
            self._forget_placement(uid)
        # A placement nobody measures still ends after the settle time plus the assumption TTL (requests,
        # which include bound pods, carry the load from then on).
        horizon = self.settle_seconds + self.assume_ttl_seconds
        done = []
        for uid, p in self._placements.items():
            if now - p.placed_at <= horizon:
                break
            if uid not in self._assumed:
                done.append(uid)
        for uid in done:
            self._forget_placement(uid)
        # Placements that telemetry has caught up with end when telemetry arrives (apply_telemetry); the
        # full pass here only guards against float drift, so it runs once a minute.
        if now - self._pending_checked_at >= 60.0:
            self._recompute_pending()

    # --- rebuilding the scoring arrays ------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._dirty

    def rebuild(self) -> None:
        """Rebuild the scoring arrays from the records (node set changed). Not on the request path."""
        now = self.clock()
        layout = self._layout
        names = sorted(self.nodes, key=lambda n: (layout.get(n, len(layout)), n)) if layout else sorted(self.nodes)
        self._dirty = False
        self.stats.rebuilds += 1
        if not names:
            self.names, self.index, self.state = [], {}, None
            self._lookups.clear()
            self._name_table = NameTable([])
            self.priorities = PriorityTable([])
            self.version += 1
            return
        infos = [self.nodes[n] for n in names]
        profiles: list[CostProfile] = []
        gpu_counts: list[int] = []
        unmatched = 0
        for info in infos:
            gpus = round(info.allocatable.gpus)
            profile, matched = self._profile_for(info, gpus)
            unmatched += not matched
            profiles.append(profile)
            gpu_counts.append(gpus)
        costs = NodeCostTable.from_profiles(profiles, gpu_counts)
        # Fresh copies of the names, allocated one after another: lookups compare request names with these
        # keys, and keys packed together stay in cache (measured: the lookup is memory-bound).
        index = {n.encode().decode(): i for i, n in enumerate(names)}
        n = len(names)
        req = np.zeros((3, n))
        workload = np.zeros(n)
        for c in self._counted.values():
            i = index.get(c.node)
            if i is not None:
                req[:, i] += (c.requests.cpu_cores, c.requests.memory_bytes, c.requests.gpus)
                workload[i] += c.workload
        for a in self._assumed.values():
            i = index.get(a.node)
            if i is not None:
                req[:, i] += (a.demand.cpu_cores, a.demand.memory_bytes, a.demand.gpus)
                workload[i] += 1.0
        self.state = NodeState.build(
            costs=costs,
            now=now,
            allocatable_cpu_cores=[x.allocatable.cpu_cores for x in infos],
            allocatable_memory_bytes=[x.allocatable.memory_bytes for x in infos],
            allocatable_gpus=[x.allocatable.gpus for x in infos],
            requested_cpu_cores=req[0],
            requested_memory_bytes=req[1],
            requested_gpus=req[2],
            workload_pods=workload,
            autoscaled=[x.autoscaled for x in infos],
            power_cap_watts=[math.nan if x.power_cap_watts is None else x.power_cap_watts for x in infos],
        )
        self._price_hour = math.floor(now / 3600.0)
        self.names = names
        self.index = index
        self._lookups.clear()
        self._name_table = NameTable(names)
        self.priorities = PriorityTable(names)
        self.version += 1
        self.stats.nodes = n
        # Score once here, off the request path: the first call loads (or compiles) the scoring kernel,
        # which must not happen inside a request kube-scheduler times out after 5 s (/readyz waits for this).
        score_nodes(PodDemand(cpu_cores=1.0), self.state, now, candidates=np.zeros(1, dtype=np.intp))
        scratch = np.zeros((1, self.state.block.shape[1]))  # the compiled row bookkeeping, likewise
        _add_to_row(scratch, 0, 1.0, 1.0, 1.0, 1.0)
        _add_pending_to_row(scratch, 0, 1.0, 1.0)
        _place_on_row(scratch, 0, 1.0, 1.0, 1.0, 1.0, 1.0)
        warm_up_name_readers()  # the compiled NodeNames readers and answer renderer, likewise
        self.priorities.render(np.zeros(1, dtype=np.intp), np.zeros(1, dtype=np.int64))
        self.stats.unmatched_profile_nodes = unmatched
        if self.telemetry is not None:
            self._write_telemetry(self.telemetry.nodes.values())
        self._recompute_pending()

    def relayout(self, every_seconds: float = 600.0) -> bool:
        """Lay the scoring arrays out in the order kube-scheduler sends candidates, once that order (learned
        by the name reader: ``NameTable.learned_order``) covers at least half of the nodes and fewer than
        half of them are followed by their learned successor. A request's candidates then sit next to each
        other in memory, and the rows, names and answer heads it reads come in few cache lines instead of
        one each: a window of 500 of 5,000 nodes in an order unrelated to the arrays cost ~25 % more CPU
        per request than the same window in array order (bench/extender_bench.py, shuffled-order case).
        kube-scheduler's order (zones interleaved) is stable while the node set is; checked at most every
        ``every_seconds`` (a rebuild holds the loop for tens of milliseconds). Background tick only."""
        now = self.clock()
        if now - self._layout_checked_at < every_seconds or self._dirty or self.state is None:
            return False
        self._layout_checked_at = now
        learned = self._name_table.learned_order()
        if learned is None or learned.coverage < 0.5 or learned.in_place >= 0.5:
            return False
        names = self.names
        self._layout = {names[i]: rank for rank, i in enumerate(learned.order)}
        self.stats.relayouts += 1
        log.info("scoring arrays laid out in the candidates' order (%.0f %% were in place)", learned.in_place * 100)
        self.rebuild()
        return True

    def refresh_prices(self) -> None:
        """Re-read tariffs when the hour changes (tariffs are hourly or coarser)."""
        now = self.clock()
        hour = math.floor(now / 3600.0)
        if self.state is not None and hour != self._price_hour:
            self.state.price_per_kwh[:] = self.state.costs.prices_per_kwh_at(now)
            self._price_hour = hour
            self.version += 1

    def _profile_for(self, info: NodeInfo, gpus: int) -> tuple[CostProfile, bool]:
        match = self.profiles.resolve(info.labels)
        profile = match.profile
        if not match.matched:
            self._warn_once(
                info.name,
                f"node {info.name}: no cost profile matches its labels; using default profile {profile.name!r}",
            )
        try:
            profile.power_model(gpus)
        except ProfileError:
            fallback = self.profiles.default
            if fallback.gpu is None:
                raise
            self._warn_once(
                info.name + "/gpu",
                f"node {info.name}: has {gpus} GPUs but profile {profile.name!r} "
                f"has no GPU model; using default profile {fallback.name!r}",
            )
            return fallback, False
        return profile, match.matched

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # --- bookkeeping --------------------------------------------------------------------------------
    def _count(self, pod: PodInfo) -> None:
        assert pod.node_name is not None
        c = _Counted(pod.node_name, pod.requests, not pod.daemon)
        self._counted[pod.uid] = c
        self._add(c.node, c.requests, 1.0 if c.workload else 0.0, +1.0)

    def _uncount(self, uid: str) -> None:
        c = self._counted.pop(uid, None)
        if c is not None:
            self._add(c.node, c.requests, 1.0 if c.workload else 0.0, -1.0)

    def _apply_requests(self, node: str, demand: PodDemand | _Demand, sign: float) -> None:
        self._add(node, demand, 1.0, sign)

    def _add(self, node: str, r: Resources | PodDemand | _Demand, workload: float, sign: float) -> None:
        i = self.index.get(node)
        if i is None or self.state is None:
            return  # the next rebuild counts it from the records
        self.version += 1
        _add_to_row(
            self.state.block,
            i,
            sign * r.cpu_cores,
            sign * r.memory_bytes,
            sign * r.gpus,
            sign * workload,
        )

    def _set_placement(self, uid: str, node: str, demand: PodDemand | _Demand, at: float) -> None:
        old = self._placements.get(uid)
        placed_at = at if old is None else min(old.placed_at, at)
        p = _Placement(node, demand.busy_cpu_cores, demand.busy_gpus, placed_at)
        if old is not None:
            self._add_pending(old, -1.0)
        self._placements[uid] = p
        self._add_pending(p, +1.0)

    def _forget_placement(self, uid: str) -> None:
        old = self._placements.pop(uid, None)
        if old is not None:
            self._add_pending(old, -1.0)

    def _add_pending(self, p: _Placement, sign: float) -> None:
        i = self.index.get(p.node)
        if i is None or self.state is None:
            return
        self.version += 1
        _add_pending_to_row(self.state.block, i, sign * p.busy_cpu_cores, sign * p.busy_gpus)

    def _recompute_pending(self) -> None:
        """Drop placements telemetry has seen; recompute the pending arrays exactly (no float drift)."""
        s = self.state
        now = self.clock()
        self._pending_checked_at = now
        # A placement nobody will ever measure (no telemetry at all) still ends: after the settle time
        # plus the assumption TTL, requests (which include bound pods) carry the load on their own.
        horizon = self.settle_seconds + self.assume_ttl_seconds
        for uid, p in list(self._placements.items()):
            i = self.index.get(p.node)
            seen = math.nan if (i is None or s is None) else float(s.telemetry_observed_at[i])
            if (seen >= p.placed_at + self.settle_seconds or now - p.placed_at > horizon) and uid not in self._assumed:
                del self._placements[uid]
        if s is None:
            return
        cpu = np.zeros(len(self.names))
        gpu = np.zeros(len(self.names))
        for p in self._placements.values():
            i = self.index.get(p.node)
            if i is not None:
                cpu[i] += p.busy_cpu_cores
                gpu[i] += p.busy_gpus
        if not (np.array_equal(s.pending_cpu_cores, cpu) and np.array_equal(s.pending_gpus, gpu)):
            s.pending_cpu_cores[:] = cpu
            s.pending_gpus[:] = gpu
            self.version += 1

    def resolve_names(self, key: bytes) -> Resolved | None:
        """Positions (-1: unknown) of the names in a plain-shape ``NodeNames`` key (``names.plain_names``),
        or None when the bytes are not that shape after all: the ``names.NameResolver`` the request parse
        calls, so that one compiled pass (``names.NameTable.resolve``) both proves the shape and maps the
        names. Read-only arrays.

        The positions are kept for the last ``LOOKUP_CACHE_SIZE`` keys: kube-scheduler sends the same
        lists again and again (its rotating windows over a stable node list — ~10 distinct ones at 5,000
        nodes — and prioritize after filter).
        """
        hit = self._lookups.get(key)
        if hit is not None:
            self._lookups.move_to_end(key)
            self.stats.lookup_hits += 1
            return hit
        found = self._name_table.resolve(key)
        if found is None:
            return None
        found.positions.flags.writeable = False
        self._lookups[key] = found
        if len(self._lookups) > LOOKUP_CACHE_SIZE:
            self._lookups.popitem(last=False)
        return found

    def lookup(self, args: ExtenderArgs) -> Resolved:
        """Positions of the request's candidates in the scoring arrays (-1 for nodes the snapshot does not
        know) and how many are unknown. The arrays may be read-only.

        The plain shape (``args.names_key``) was usually resolved while the request was parsed
        (``args.resolved``, still this snapshot's if it is the cached entry); else it is resolved now
        (``resolve_names``). Other shapes take a dict.
        """
        key = args.names_key
        if key is not None:
            got = args.resolved
            if got is not None and self._lookups.get(key) is got:
                return got
            got = self.resolve_names(key)
            if got is not None and got.positions.size == args.count:
                return got
        names = args.names
        idx = np.fromiter(map(self.index.get, names, repeat(-1)), dtype=np.intp, count=len(names))
        idx.flags.writeable = False
        return Resolved(idx, int(np.count_nonzero(idx < 0)))


# One node's bookkeeping, on the request path (every prioritize assumes a placement): one compiled call
# instead of a dozen numpy scalar reads and writes on a row view. Amounts never go below zero.
@jit
def _add_to_row(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    block: NDArray[np.float64], i: int, cpu: float, memory: float, gpus: float, workload: float
) -> None:  # pragma: no cover - compiled; tested through the snapshot's requests
    block[i, _REQ_CPU] = max(0.0, block[i, _REQ_CPU] + cpu)
    block[i, _REQ_MEM] = max(0.0, block[i, _REQ_MEM] + memory)
    block[i, _REQ_GPU] = max(0.0, block[i, _REQ_GPU] + gpus)
    block[i, _WORKLOAD] = max(0.0, block[i, _WORKLOAD] + workload)


@jit
def _place_on_row(  # noqa: PLR0917 - compiled: numba calls take positional arguments
    block: NDArray[np.float64], i: int, cpu: float, memory: float, gpus: float, busy_cpu: float, busy_gpus: float
) -> None:  # pragma: no cover - compiled; tested through the snapshot's placements
    """A new assumed pod: ``_add_to_row`` (one workload pod) and ``_add_pending_to_row`` in one call."""
    _add_to_row(block, i, cpu, memory, gpus, 1.0)
    _add_pending_to_row(block, i, busy_cpu, busy_gpus)


@jit
def _add_pending_to_row(
    block: NDArray[np.float64], i: int, cpu: float, gpus: float
) -> None:  # pragma: no cover - compiled; tested through the snapshot's placements
    block[i, _PENDING_CPU] = max(0.0, block[i, _PENDING_CPU] + cpu)
    block[i, _PENDING_GPU] = max(0.0, block[i, _PENDING_GPU] + gpus)
