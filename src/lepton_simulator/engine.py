"""The event-driven cluster model: arrivals, placements, queueing, departures, node lifecycle.

Neighbours: replays a ``lepton_simulator.scenario.Scenario`` with one policy from
``lepton_simulator.policies`` over a ``lepton_simulator.state.ClusterState``, books power in a
``lepton_simulator.accounting.Ledger`` and returns a ``ReplayResult`` (``lepton_simulator.report`` prints
it).

Rules (each mirrors what a Kubernetes cluster does, simplified where said):

* **Events** at the same instant run in this order: departures, nodes becoming ready, arrivals, idle
  checks. Freed resources are visible to a job arriving at the same second.
* **Placement**: the fit filter (cpu, memory, GPUs, GPU model) picks the candidates among *ready* nodes,
  the policy scores them, the best wins (uniform random among equal best scores, seeded, as in
  kube-scheduler's ``selectHost``). A job of several workers is placed worker by worker and starts only
  if every worker fits (all-or-nothing); otherwise nothing of it is placed.
* **Queueing**: a job that fits nowhere waits. Waiting jobs are retried, highest priority first and FIFO
  among equals, whenever capacity appears (a departure, a node becoming ready); like kube-scheduler
  without a queue manager there is no head-of-line blocking: a smaller job may pass a bigger one. A job
  that would not fit even on an empty cluster is reported as never placed instead of waiting forever.
  Optimization that does not change results: when one node gains capacity, a waiting single-worker
  job can only fit there (it fit nowhere before), so only jobs that fit that node are tried.
* **Lifecycle** ``static``: every node is on from the first arrival to the last departure.
  ``autoscaled``: every node starts released. A job that fits no ready node first counts on room a
  booting node will have (reserved for it), else provisions a released node that fits it: cluster-
  autoscaler's ``least-waste`` expander (the node with the least unused cpu/memory/GPU fraction after
  the job; CPU-only jobs prefer CPU-only nodes, since GPU pools are tainted in practice). The node boots
  for ``boot_delay_seconds`` (billed, at idle power), then becomes ready. A node that stays empty for
  ``idle_release_seconds`` is released (no power, no cost).
"""

from __future__ import annotations

import bisect
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.cost import CostBreakdown
from lepton_simulator.accounting import Ledger, downsample_step
from lepton_simulator.policies.base import PlacementContext, Policy
from lepton_simulator.scenario import Scenario
from lepton_simulator.settings import Lifecycle, SimulationSettings
from lepton_simulator.state import ClusterState, Placement, Request
from lepton_simulator.trace import GPU_MILLI_PER_GPU

FloatArray = NDArray[np.float64]

_DEPART, _READY, _ARRIVE, _IDLE_CHECK = 0, 1, 2, 3
_PROGRESS_EVERY = 512


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """One policy's replay of one scenario."""

    policy: str
    lifecycle: Lifecycle
    cost: CostBreakdown
    energy_kwh: float
    carbon_kg: float | None
    wait_mean_s: float
    wait_p95_s: float
    makespan_s: float
    mean_cpu_allocation: float
    """Time-weighted allocated / allocatable CPU of the powered-on nodes."""
    mean_gpu_allocation: float
    """Time-weighted allocated / allocatable GPUs of the powered-on nodes (0 without GPUs)."""
    jobs_completed: int
    jobs_unplaced: int
    """Jobs that never started: too big for any node, or still waiting when the replay ended."""
    provisions: int
    """Nodes provisioned (booted) during the replay (0 in ``static``)."""
    node_hours: float
    """Σ powered-on hours over nodes."""
    start_s: FloatArray
    """Per job: trace time it started (NaN if never)."""
    end_s: float
    """Trace time of the replay's last event (the ledger is closed there)."""
    negative_price_credit: float
    """Energy cost earned back in hours of negative prices (see ``lower_bound``)."""
    power_t_s: FloatArray
    """Cluster power for plots: bin starts (trace seconds) …"""
    power_watts: FloatArray
    """… and the time-weighted mean power in each bin."""
    wall_seconds: float


@dataclass(slots=True)
class _PlannedNode:
    """Room a booting node will have, minus what waiting jobs have reserved on it."""

    cpu: int
    mem: int
    gpu_free: list[int]

    def take(self, req: Request) -> tuple[int, ...] | None:
        if req.cpu_milli > self.cpu or req.memory_mib > self.mem:
            return None
        slots: tuple[int, ...] = ()
        if req.num_gpu > 0:
            if req.shared_gpu:
                fitting = [i for i, f in enumerate(self.gpu_free) if f >= req.gpu_milli]
                if not fitting:
                    return None
                slots = (min(fitting, key=lambda i: self.gpu_free[i]),)
            else:
                free = [i for i, f in enumerate(self.gpu_free) if f == GPU_MILLI_PER_GPU]
                if len(free) < req.num_gpu:
                    return None
                slots = tuple(free[: req.num_gpu])
        self.cpu -= req.cpu_milli
        self.mem -= req.memory_mib
        for i in slots:
            self.gpu_free[i] -= req.gpu_milli
        return slots

    def give_back(self, req: Request, slots: tuple[int, ...]) -> None:
        self.cpu += req.cpu_milli
        self.mem += req.memory_mib
        for i in slots:
            self.gpu_free[i] += req.gpu_milli


class Replay:
    """One replay of a scenario under one policy; ``run`` may be called once."""

    def __init__(self, scenario: Scenario, policy: Policy, settings: SimulationSettings | None = None) -> None:
        self.scenario = scenario
        self.settings = settings or SimulationSettings()
        self.policy = policy
        self.jobs = scenario.trace.jobs
        self.catalog = scenario.catalog
        self.state = ClusterState(scenario.catalog)
        self.requests = self.state.requests_for(self.jobs)
        self.autoscaled = self.settings.lifecycle is Lifecycle.AUTOSCALED
        self.rng = np.random.default_rng(self.settings.seed)
        n = self.state.size
        j = len(self.jobs)
        self.powered = np.zeros(n, dtype=bool)
        self.booting = np.zeros(n, dtype=bool)
        self.idle_epoch = np.zeros(n, dtype=np.int64)
        self.start_s = np.full(j, np.nan)
        self.end_s = np.full(j, np.nan)
        self.unplaced = np.zeros(j, dtype=bool)
        self.placements: dict[int, list[Placement]] = {}
        self.queue: list[int] = []
        self.plans: dict[int, _PlannedNode] = {}
        self.reservations: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        self.provisions = 0
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self._allowed = self._allowed_matrix()
        self._idle_watts = np.array([m.idle_watts for m in self.catalog.power_models])
        self._power_cache: dict[tuple[int, int, bytes], float] = {}
        t_begin = float(self.jobs.submit_s[0]) if j else 0.0
        self.t_begin = t_begin
        self.t_now = t_begin
        self.ledger = Ledger(n, t_begin)
        # Cluster allocation integrals (for mean allocation): running sums and their time integrals.
        self._sum = np.zeros(4)  # alloc cpu, powered cap cpu, alloc gpu milli, powered cap gpu milli
        self._integral = np.zeros(4)

    # --- setup --------------------------------------------------------------------------------------

    def _allowed_matrix(self) -> NDArray[np.bool_]:
        """jobs × GPU models: may the job run on a node of that model."""
        out = np.ones((len(self.jobs), len(self.state.models)), dtype=bool)
        for j, req in enumerate(self.requests):
            if req.allowed_models is not None:
                out[j] = req.allowed_models
        return out

    def _never_fits(self, j: int) -> bool:
        """True when the job does not fit even an empty cluster (counting workers per node)."""
        req = self.requests[j]
        s = self.state
        ok = s.fits_empty(req)
        if not ok.any():
            return True
        workers = int(self.jobs.workers[j])
        if workers == 1:
            return False
        per_node = np.full(s.size, np.iinfo(np.int64).max)
        if req.cpu_milli > 0:
            per_node = np.minimum(per_node, s.cap_cpu // req.cpu_milli)
        if req.memory_mib > 0:
            per_node = np.minimum(per_node, s.cap_mem // req.memory_mib)
        if req.num_gpu > 0:
            if req.shared_gpu:
                per_gpu = GPU_MILLI_PER_GPU // req.gpu_milli
                per_node = np.minimum(per_node, s.gpu_count * per_gpu)
            else:
                per_node = np.minimum(per_node, s.gpu_count // req.num_gpu)
        return int(np.minimum(per_node[ok], workers).sum()) < workers

    # --- events -------------------------------------------------------------------------------------

    def _push(self, t: float, kind: int, a: int, b: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, kind, self._seq, a, b))

    def _advance(self, t: float) -> None:
        if t > self.t_now:
            self._integral += self._sum * (t - self.t_now)
            self.t_now = t

    def run(self, progress: Callable[[int], None] | None = None) -> ReplayResult:
        wall0 = time.perf_counter()
        jobs = self.jobs
        count = len(jobs)
        shapes: dict[tuple[object, ...], bool] = {}  # traces repeat a few request shapes many times
        never = np.zeros(count, dtype=bool)
        for j, req in enumerate(self.requests):
            shape = (
                req.cpu_milli,
                req.memory_mib,
                req.num_gpu,
                req.gpu_milli,
                jobs.gpu_models[j],
                int(jobs.workers[j]),
            )
            hit = shapes.get(shape)
            if hit is None:
                hit = shapes[shape] = self._never_fits(j)
            never[j] = hit
        if not self.autoscaled:
            for n in range(self.state.size):
                self._power_on(n, self.t_begin)
                self._become_ready(n)
        submit = jobs.submit_s
        next_job = 0
        done = 0
        heap = self._heap
        while next_job < count or heap:
            if heap and (next_job >= count or (heap[0][0], heap[0][1]) < (float(submit[next_job]), _ARRIVE)):
                t, kind, _, a, b = heapq.heappop(heap)
                self._advance(t)
                if kind == _DEPART:
                    self._depart(a, t)
                    done += 1
                elif kind == _READY:
                    self._ready(a, t)
                else:
                    self._idle_check(a, b, t)
            else:
                j = next_job
                next_job += 1
                t = float(submit[j])
                self._advance(t)
                done += 1
                if never[j]:
                    self.unplaced[j] = True
                    done += 1
                elif not self._try_place(j, t):
                    self._enqueue(j, t)
            if progress is not None and done >= _PROGRESS_EVERY:
                progress(done)
                done = 0
        if progress is not None and done:
            progress(done)
        t_end = self.t_now
        for j in self.queue:
            self.unplaced[j] = True
        self.ledger.close(t_end)
        return self._result(t_end, time.perf_counter() - wall0)

    # --- placement ----------------------------------------------------------------------------------

    def _choose(self, req: Request, t: float) -> int | None:
        s = self.state
        feasible = s.feasible(req)
        busy = s.pods > 0
        idx = np.flatnonzero(feasible & busy)
        weights: NDArray[np.int64] | None = None
        empty = feasible & ~busy
        if empty.any():
            # Empty nodes of one class score alike: score one per class, and weigh it by how many there
            # are so that ties are still broken uniformly over nodes. The result is the same as scoring
            # every node, at a fraction of the work (most of a big static cluster is empty).
            empty_idx = np.flatnonzero(empty)
            cls = s.node_class[empty_idx]
            counts = np.bincount(cls, minlength=s.classes)
            first = np.empty(s.classes, dtype=np.intp)
            first[cls[::-1]] = empty_idx[::-1]  # the last write wins: each class's first empty node
            present = np.flatnonzero(counts)
            weights = np.concatenate([np.ones(idx.size, dtype=np.int64), counts[present]])
            idx = np.concatenate([idx, first[present]])
        if idx.size == 0:
            return None
        ctx = PlacementContext(
            state=s,
            catalog=self.catalog,
            req=req,
            candidates=idx,
            now_s=t,
            epoch_s=t + self.scenario.start_epoch_s,
            autoscaled=self.autoscaled,
        )
        scores = self.policy.score(ctx)
        best = scores.max()
        if not np.isfinite(best):
            return None
        ties = np.flatnonzero(scores == best)
        if weights is None:
            pick = ties[0] if ties.size == 1 else ties[self.rng.integers(ties.size)]
            return int(idx[pick])
        w = weights[ties]
        if ties.size == 1 and w[0] == 1:
            return int(idx[ties[0]])
        k = int(np.searchsorted(np.cumsum(w), self.rng.integers(int(w.sum())), side="right"))
        node = int(idx[ties[k]])
        if w[k] == 1:
            return node
        same = np.flatnonzero(empty & (s.node_class == s.node_class[node]))
        return int(same[self.rng.integers(same.size)])

    def _try_place(self, j: int, t: float) -> bool:
        req = self.requests[j]
        placed: list[Placement] = []
        for _ in range(int(self.jobs.workers[j])):
            node = self._choose(req, t)
            if node is None:
                for p in reversed(placed):
                    self.state.release(p, req)
                return False
            placed.append(self.state.place(node, req))
        self._sum[0] += req.cpu_milli * len(placed)
        self._sum[2] += req.gpu_milli_total * len(placed)
        for node in {p.node for p in placed}:
            self.idle_epoch[node] += 1  # cancels a pending idle check
            self._update_power(node, t)
        self.placements[j] = placed
        self.start_s[j] = t
        self._drop_reservations(j)
        self._push(t + float(self.jobs.duration_s[j]), _DEPART, j)
        return True

    def _update_power(self, node: int, t: float) -> None:
        s = self.state
        # Nodes of a class return to the same allocations again and again (empty, one typical pod ...);
        # remembering the model's answer per (class, allocation) saves most model evaluations.
        key = (int(s.node_class[node]), int(s.alloc_cpu[node]), s.gpu_free[node].tobytes())
        watts = self._power_cache.get(key)
        if watts is None:
            model = self.catalog.power_models[node]
            u_cpu = s.cpu_utilization(node)
            if model.gpu_count > 0:
                watts = model.power_watts(u_cpu, s.gpu_utilizations(node))
            else:
                watts = model.power_watts(u_cpu)
            self._power_cache[key] = watts
        self.ledger.set_power(node, t, watts)

    # --- queue --------------------------------------------------------------------------------------

    def _enqueue(self, j: int, t: float) -> None:
        prio = self.jobs.priority
        bisect.insort(self.queue, j, key=lambda x: (-int(prio[x]), x))
        if self.autoscaled:
            self._provision(j, t)

    def _fit_on_node(self, node: int, queued: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Which queued jobs' workers fit ``node`` now (vectorized over jobs)."""
        s = self.state
        jobs = self.jobs
        if not s.ready[node]:
            return np.zeros(queued.size, dtype=bool)
        ok = (jobs.cpu_milli[queued] <= s.cap_cpu[node] - s.alloc_cpu[node]) & (
            jobs.memory_mib[queued] <= s.cap_mem[node] - s.alloc_mem[node]
        )
        num_gpu = jobs.num_gpu[queued]
        gpu_milli = jobs.gpu_milli[queued]
        shared = (num_gpu == 1) & (gpu_milli < GPU_MILLI_PER_GPU)
        gpu_ok = np.where(shared, gpu_milli <= s.max_free[node], num_gpu <= s.full_free[node])
        ok &= (num_gpu == 0) | gpu_ok
        ok &= self._allowed[queued, s.model_id[node]]
        out: NDArray[np.bool_] = ok
        return out

    def _retry(self, nodes: list[int], t: float) -> None:
        """Capacity appeared on ``nodes``: place waiting jobs, best priority first, until none fits."""
        workers = self.jobs.workers
        while self.queue:
            queued = np.asarray(self.queue, dtype=np.intp)
            candidates = workers[queued] > 1
            for node in nodes:
                candidates |= self._fit_on_node(node, queued)
            placed = False
            for pos in np.flatnonzero(candidates):
                j = int(queued[pos])
                if self._try_place(j, t):
                    self.queue.remove(j)
                    placed = True
                    break
            if not placed:
                return

    # --- lifecycle ----------------------------------------------------------------------------------

    def _power_on(self, node: int, t: float) -> None:
        self.powered[node] = True
        self.ledger.power_on(node, t, float(self._idle_watts[node]))
        self._sum[1] += self.state.cap_cpu[node]
        self._sum[3] += self.state.gpu_count[node] * GPU_MILLI_PER_GPU

    def _become_ready(self, node: int) -> None:
        self.booting[node] = False
        self.state.ready[node] = True

    def _provision(self, j: int, t: float) -> None:
        """Reserve room for every worker of waiting job ``j`` on booting nodes, booting more if needed."""
        if j in self.reservations:
            return
        req = self.requests[j]
        taken: list[tuple[int, tuple[int, ...]]] = []
        for _ in range(int(self.jobs.workers[j])):
            spot = self._reserve_on_booting(req)
            if spot is None:
                node = self._pick_node_to_boot(req)
                if node is None:
                    break  # nothing left to provision: the job waits for a departure
                self._boot(node, t)
                slots = self.plans[node].take(req)
                assert slots is not None
                spot = (node, slots)
            taken.append(spot)
        self.reservations[j] = taken

    def _reserve_on_booting(self, req: Request) -> tuple[int, tuple[int, ...]] | None:
        for node, plan in self.plans.items():
            if req.allowed_models is not None and not req.allowed_models[self.state.model_id[node]]:
                continue
            slots = plan.take(req)
            if slots is not None:
                return node, slots
        return None

    def _pick_node_to_boot(self, req: Request) -> int | None:
        s = self.state
        ok = s.fits_empty(req) & ~self.powered
        if req.num_gpu == 0 and (ok & (s.gpu_count == 0)).any():
            ok &= s.gpu_count == 0
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return None
        waste = (s.cap_cpu[idx] - req.cpu_milli) / s.cap_cpu[idx] + (s.cap_mem[idx] - req.memory_mib) / s.cap_mem[idx]
        terms = 2.0
        if req.num_gpu > 0:
            cap_gpu = s.gpu_count[idx] * GPU_MILLI_PER_GPU
            waste = waste + (cap_gpu - req.gpu_milli_total) / cap_gpu
            terms = 3.0
        return int(idx[np.argmin(waste / terms)])

    def _boot(self, node: int, t: float) -> None:
        self.provisions += 1
        self.booting[node] = True
        self._power_on(node, t)
        count = int(self.state.gpu_count[node])
        self.plans[node] = _PlannedNode(
            int(self.state.cap_cpu[node]), int(self.state.cap_mem[node]), [GPU_MILLI_PER_GPU] * count
        )
        self._push(t + self.settings.autoscaler.boot_delay_seconds, _READY, node)

    def _drop_reservations(self, j: int) -> None:
        for node, slots in self.reservations.pop(j, []):
            plan = self.plans.get(node)
            if plan is not None:
                plan.give_back(self.requests[j], slots)

    def _ready(self, node: int, t: float) -> None:
        self._become_ready(node)
        self.plans.pop(node, None)
        waiting_on_it = [j for j, spots in self.reservations.items() if any(n == node for n, _ in spots)]
        self._retry([node], t)
        for j in waiting_on_it:
            if j in self.reservations:  # still waiting: its room went to someone else
                self._drop_reservations(j)
                self._provision(j, t)
        if self.state.pods[node] == 0:
            self._schedule_idle_check(node, t)

    def _schedule_idle_check(self, node: int, t: float) -> None:
        if self.autoscaled:
            self.idle_epoch[node] += 1
            self._push(t + self.settings.autoscaler.idle_release_seconds, _IDLE_CHECK, node, int(self.idle_epoch[node]))

    def _idle_check(self, node: int, epoch: int, t: float) -> None:
        if self.idle_epoch[node] != epoch or self.state.pods[node] != 0 or not self.state.ready[node]:
            return
        self.state.ready[node] = False
        self.powered[node] = False
        self.ledger.power_off(node, t)
        self._sum[1] -= self.state.cap_cpu[node]
        self._sum[3] -= self.state.gpu_count[node] * GPU_MILLI_PER_GPU

    def _depart(self, j: int, t: float) -> None:
        req = self.requests[j]
        nodes: list[int] = []
        for p in self.placements.pop(j):
            self.state.release(p, req)
            if p.node not in nodes:
                nodes.append(p.node)
        self._sum[0] -= req.cpu_milli * int(self.jobs.workers[j])
        self._sum[2] -= req.gpu_milli_total * int(self.jobs.workers[j])
        self.end_s[j] = t
        for node in nodes:
            self._update_power(node, t)
        self._retry(nodes, t)
        for node in nodes:
            if self.state.pods[node] == 0:
                self._schedule_idle_check(node, t)

    # --- result -------------------------------------------------------------------------------------

    def _result(self, t_end: float, wall_seconds: float) -> ReplayResult:
        settlement = self.ledger.settle(self.catalog, self.scenario.start_epoch_s, self.scenario.carbon)
        started = ~np.isnan(self.start_s)
        waits = (self.start_s - self.jobs.submit_s)[started]
        completed = ~np.isnan(self.end_s)
        makespan = float(np.max(self.end_s[completed]) - self.t_begin) if completed.any() else 0.0
        integral = self._integral
        cpu_alloc = float(integral[0] / integral[1]) if integral[1] > 0 else 0.0
        gpu_alloc = float(integral[2] / integral[3]) if integral[3] > 0 else 0.0
        times = np.asarray(self.ledger.series_t)
        watts = np.asarray(self.ledger.series_watts)
        pt, pw = downsample_step(times, watts, self.t_begin, t_end, self.settings.power_samples_max)
        return ReplayResult(
            policy=self.policy.name,
            lifecycle=self.settings.lifecycle,
            cost=settlement.cost,
            energy_kwh=settlement.energy_kwh,
            carbon_kg=settlement.carbon_kg,
            wait_mean_s=float(waits.mean()) if waits.size else 0.0,
            wait_p95_s=float(np.percentile(waits, 95)) if waits.size else 0.0,
            makespan_s=makespan,
            mean_cpu_allocation=cpu_alloc,
            mean_gpu_allocation=gpu_alloc,
            jobs_completed=int(completed.sum()),
            jobs_unplaced=int(self.unplaced.sum()),
            provisions=self.provisions,
            node_hours=settlement.node_seconds_on / 3600.0,
            start_s=self.start_s.copy(),
            end_s=t_end,
            negative_price_credit=settlement.negative_price_credit,
            power_t_s=pt,
            power_watts=pw,
            wall_seconds=wall_seconds,
        )


def replay(
    scenario: Scenario,
    policy: Policy,
    settings: SimulationSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    return Replay(scenario, policy, settings).run(progress)
