"""The simulated cluster's allocation state, as arrays over nodes (one row per node).

Neighbours: ``lepton_simulator.engine`` changes it (place, release, power on/off); the policies in
``lepton_simulator.policies`` read it to score candidates; ``lepton_simulator.scenario`` supplies the
inventory. Fit is what kube-scheduler's NodeResourcesFit filter checks (cpu, memory and GPUs by request)
plus GPU sharing: every GPU is tracked in milli-GPUs, a shared pod goes to the fullest GPU that still has
room for it (best fit, as GPU-sharing schedulers do), and whole-GPU pods take GPUs nobody uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lepton_simulator.scenario import NodeCatalog
from lepton_simulator.trace import GPU_MILLI_PER_GPU, JobTable

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

DEFAULT_MILLI_CPU_REQUEST = 100
"""kube-scheduler scores a pod without a CPU request as if it asked for 0.1 core (``NonZeroRequested``)."""
DEFAULT_MEMORY_REQUEST_MIB = 200
"""… and 200 MiB of memory without a memory request."""


@dataclass(frozen=True, slots=True)
class Request:
    """One worker's demand, precomputed once per job."""

    job: int
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    allowed_models: BoolArray | None
    """Indexed by ``ClusterState.model_id``; ``None``: any node."""

    @property
    def shared_gpu(self) -> bool:
        return self.num_gpu == 1 and self.gpu_milli < GPU_MILLI_PER_GPU

    @property
    def gpu_milli_total(self) -> int:
        return self.num_gpu * self.gpu_milli

    @property
    def cpu_milli_nonzero(self) -> int:
        return self.cpu_milli or DEFAULT_MILLI_CPU_REQUEST

    @property
    def memory_mib_nonzero(self) -> int:
        return self.memory_mib or DEFAULT_MEMORY_REQUEST_MIB


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one worker went: its node and the GPU slots (with milli-GPUs taken on each)."""

    node: int
    gpu_slots: tuple[int, ...]
    gpu_milli: int


class ClusterState:
    """Capacities and allocations of every node; ``ready`` marks nodes kube-scheduler may use."""

    def __init__(self, catalog: NodeCatalog) -> None:
        specs = catalog.specs
        n = len(specs)
        self.size = n
        self.cap_cpu: IntArray = np.array([s.cpu_milli for s in specs], dtype=np.int64)
        self.cap_mem: IntArray = np.array([s.memory_mib for s in specs], dtype=np.int64)
        self.gpu_count: IntArray = np.array([s.gpu for s in specs], dtype=np.int64)
        slots = max(1, int(self.gpu_count.max(initial=0)))
        # Absent GPU slots hold -1 so that no request (>= 1 milli) ever fits them.
        self.gpu_free: IntArray = np.where(np.arange(slots)[None, :] < self.gpu_count[:, None], GPU_MILLI_PER_GPU, -1)
        self.full_free: IntArray = self.gpu_count.copy()
        """GPUs with nothing on them, per node."""
        self.max_free: IntArray = np.where(self.gpu_count > 0, GPU_MILLI_PER_GPU, -1).astype(np.int64)
        """The most milli-GPUs free on any one GPU of the node (-1 without GPUs)."""
        self.alloc_cpu: IntArray = np.zeros(n, dtype=np.int64)
        self.alloc_mem: IntArray = np.zeros(n, dtype=np.int64)
        self.alloc_cpu_nonzero: IntArray = np.zeros(n, dtype=np.int64)
        self.alloc_mem_nonzero: IntArray = np.zeros(n, dtype=np.int64)
        self.alloc_gpu_milli: IntArray = np.zeros(n, dtype=np.int64)
        self.pods: IntArray = np.zeros(n, dtype=np.int64)
        self.ready: BoolArray = np.zeros(n, dtype=bool)
        models = sorted({s.gpu_model for s in specs if s.gpu > 0})
        self.models: tuple[str, ...] = ("", *models)
        ids = {m: i for i, m in enumerate(self.models)}
        self.model_id: NDArray[np.intp] = np.array([ids[s.gpu_model] if s.gpu > 0 else 0 for s in specs], dtype=np.intp)
        # Nodes of one class are interchangeable while empty: same shape, GPU model, profile, power model
        # and tariff, so every policy scores them alike (the engine scores one per class).
        keys: dict[tuple[object, ...], int] = {}
        self.node_class: NDArray[np.intp] = np.array(
            [
                keys.setdefault(
                    (
                        s.cpu_milli,
                        s.memory_mib,
                        s.gpu,
                        s.gpu_model,
                        id(catalog.profiles[i]),
                        id(catalog.power_models[i]),
                        int(catalog.tariff_index[i]),
                    ),
                    len(keys),
                )
                for i, s in enumerate(specs)
            ],
            dtype=np.intp,
        )
        self.classes = len(keys)

    # --- requests ------------------------------------------------------------------------------------

    def requests_for(self, jobs: JobTable) -> list[Request]:
        """One ``Request`` per job (a worker's demand; GPU model constraints as a mask over models)."""
        out: list[Request] = []
        masks: dict[frozenset[str], BoolArray] = {}
        for j in range(len(jobs)):
            allowed = jobs.gpu_models[j]
            mask = None
            if allowed is not None:
                mask = masks.get(allowed)
                if mask is None:
                    mask = np.array([m in allowed for m in self.models], dtype=bool)
                    masks[allowed] = mask
            out.append(
                Request(
                    job=j,
                    cpu_milli=int(jobs.cpu_milli[j]),
                    memory_mib=int(jobs.memory_mib[j]),
                    num_gpu=int(jobs.num_gpu[j]),
                    gpu_milli=int(jobs.gpu_milli[j]),
                    allowed_models=mask,
                )
            )
        return out

    # --- fit -----------------------------------------------------------------------------------------

    def feasible(self, req: Request) -> BoolArray:
        """Ready nodes where one worker of ``req`` fits now."""
        ok = (
            self.ready
            & (self.alloc_cpu <= self.cap_cpu - req.cpu_milli)
            & (self.alloc_mem <= self.cap_mem - req.memory_mib)
        )
        return self._gpu_fit(ok, req, self.full_free, self.max_free)

    def fits_empty(self, req: Request) -> BoolArray:
        """Nodes where one worker of ``req`` would fit if the node were empty (ready or not)."""
        ok = (self.cap_cpu >= req.cpu_milli) & (self.cap_mem >= req.memory_mib)
        return self._gpu_fit(ok, req, self.gpu_count, np.where(self.gpu_count > 0, GPU_MILLI_PER_GPU, -1))

    def _gpu_fit(self, ok: BoolArray, req: Request, full_free: IntArray, max_free: IntArray) -> BoolArray:
        if req.num_gpu > 0:
            ok &= (max_free >= req.gpu_milli) if req.shared_gpu else (full_free >= req.num_gpu)
        if req.allowed_models is not None:
            ok &= req.allowed_models[self.model_id]
        return ok

    def fits_node(self, node: int, req: Request) -> bool:
        """Scalar ``feasible`` for one node."""
        if not self.ready[node]:
            return False
        if self.alloc_cpu[node] + req.cpu_milli > self.cap_cpu[node]:
            return False
        if self.alloc_mem[node] + req.memory_mib > self.cap_mem[node]:
            return False
        if req.num_gpu > 0:
            if req.shared_gpu:
                if self.max_free[node] < req.gpu_milli:
                    return False
            elif self.full_free[node] < req.num_gpu:
                return False
        return req.allowed_models is None or bool(req.allowed_models[self.model_id[node]])

    # --- GPU slot choice ------------------------------------------------------------------------------

    def best_fit_free(self, nodes: NDArray[np.intp], gpu_milli: int) -> IntArray:
        """For a shared-GPU worker: free milli on the GPU it would take on each node (best fit)."""
        free = self.gpu_free[nodes]
        big = np.iinfo(np.int64).max
        out: IntArray = np.where(free >= gpu_milli, free, big).min(axis=1)
        return out

    def _choose_slots(self, node: int, req: Request) -> tuple[int, ...]:
        row = self.gpu_free[node]
        if req.num_gpu == 0:
            return ()
        if req.shared_gpu:
            candidates = np.flatnonzero(row >= req.gpu_milli)
            return (int(candidates[np.argmin(row[candidates])]),)
        return tuple(int(i) for i in np.flatnonzero(row == GPU_MILLI_PER_GPU)[: req.num_gpu])

    # --- changes -------------------------------------------------------------------------------------

    def place(self, node: int, req: Request) -> Placement:
        slots = self._choose_slots(node, req)
        self.alloc_cpu[node] += req.cpu_milli
        self.alloc_mem[node] += req.memory_mib
        self.alloc_cpu_nonzero[node] += req.cpu_milli_nonzero
        self.alloc_mem_nonzero[node] += req.memory_mib_nonzero
        self.pods[node] += 1
        if slots:
            self.gpu_free[node, list(slots)] -= req.gpu_milli
            self.alloc_gpu_milli[node] += req.gpu_milli * len(slots)
            self._refresh_gpu(node)
        return Placement(node=node, gpu_slots=slots, gpu_milli=req.gpu_milli)

    def release(self, placement: Placement, req: Request) -> None:
        node = placement.node
        self.alloc_cpu[node] -= req.cpu_milli
        self.alloc_mem[node] -= req.memory_mib
        self.alloc_cpu_nonzero[node] -= req.cpu_milli_nonzero
        self.alloc_mem_nonzero[node] -= req.memory_mib_nonzero
        self.pods[node] -= 1
        if placement.gpu_slots:
            self.gpu_free[node, list(placement.gpu_slots)] += placement.gpu_milli
            self.alloc_gpu_milli[node] -= placement.gpu_milli * len(placement.gpu_slots)
            self._refresh_gpu(node)

    def _refresh_gpu(self, node: int) -> None:
        row = self.gpu_free[node]
        self.full_free[node] = int(np.count_nonzero(row == GPU_MILLI_PER_GPU))
        self.max_free[node] = int(row.max())

    # --- utilization (allocation-derived) -------------------------------------------------------------

    def cpu_utilization(self, node: int) -> float:
        return min(1.0, float(self.alloc_cpu[node]) / float(self.cap_cpu[node]))

    def gpu_utilizations(self, node: int) -> list[float]:
        """Per GPU: milli-GPUs allocated / 1000."""
        count = int(self.gpu_count[node])
        row = self.gpu_free[node, :count]
        return [(GPU_MILLI_PER_GPU - int(f)) / GPU_MILLI_PER_GPU for f in row]
