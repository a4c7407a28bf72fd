"""What a replay is made of: jobs (one row per job, arrays) and the node inventory.

Neighbours: ``lepton_simulator.readers`` builds these from openb or the generic CSV format and reports
malformed rows with their line number; ``lepton_simulator.engine`` replays them. Times are seconds
relative to the trace's own origin (``lepton_simulator.scenario`` maps them onto calendar time).

Resources are per **worker**: a job with ``workers = 4`` asks for four times ``cpu_milli``, and its workers
start all-or-nothing. GPUs are either whole (``gpu_milli = 1000`` per GPU, any ``num_gpu``) or a share of
one GPU (``num_gpu = 1`` and ``gpu_milli < 1000``, the GPU-sharing pods of the Alibaba traces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from lepton_core.profiles import GPU_MODEL_LABEL

GPU_MILLI_PER_GPU = 1000
NODE_CLASS_LABEL = "lepton.ai/node-class"
"""Label matched by the shipped CPU-only profiles (``cpu-small``, ``cpu-large``, ``cpu-xlarge``)."""


class TraceError(ValueError):
    """A malformed trace; the message names the file, the line and the field."""


@dataclass(frozen=True, eq=False)
class JobTable:
    """Jobs as parallel arrays (one entry per job), sorted by ``submit_s``."""

    name: tuple[str, ...]
    submit_s: NDArray[np.float64]
    duration_s: NDArray[np.float64]
    cpu_milli: NDArray[np.int64]
    memory_mib: NDArray[np.int64]
    num_gpu: NDArray[np.int64]
    gpu_milli: NDArray[np.int64]
    """Per GPU: 1000 for whole GPUs, less for a share of one GPU; 0 when ``num_gpu`` is 0."""
    gpu_models: tuple[frozenset[str] | None, ...]
    """Allowed GPU models (openb ``gpu_spec``); ``None`` for any."""
    workers: NDArray[np.int64]
    priority: NDArray[np.int64]
    """Higher runs first when jobs wait (FIFO among equals)."""

    def __post_init__(self) -> None:
        n = len(self.name)
        for fname in (
            "submit_s",
            "duration_s",
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "workers",
            "priority",
        ):
            if getattr(self, fname).shape != (n,):
                raise ValueError(f"{fname}: expected {n} entries, one per job")
        if len(self.gpu_models) != n:
            raise ValueError(f"gpu_models: expected {n} entries, one per job")
        if n and np.any(np.diff(self.submit_s) < 0.0):
            raise ValueError("submit_s: jobs must be sorted by submit time")

    def __len__(self) -> int:
        return len(self.name)

    def head(self, count: int) -> JobTable:
        """The first ``count`` jobs (``--limit``)."""
        return self.select(np.arange(min(count, len(self)), dtype=np.intp))

    def select(self, indices: NDArray[np.intp]) -> JobTable:
        idx = np.asarray(indices, dtype=np.intp)
        return JobTable(
            name=tuple(self.name[i] for i in idx),
            submit_s=self.submit_s[idx],
            duration_s=self.duration_s[idx],
            cpu_milli=self.cpu_milli[idx],
            memory_mib=self.memory_mib[idx],
            num_gpu=self.num_gpu[idx],
            gpu_milli=self.gpu_milli[idx],
            gpu_models=tuple(self.gpu_models[i] for i in idx),
            workers=self.workers[idx],
            priority=self.priority[idx],
        )

    @property
    def gpu_fraction(self) -> NDArray[np.float64]:
        """GPUs per worker as a number (0.46 for a 460-milli share, 8 for eight whole GPUs)."""
        out: NDArray[np.float64] = self.num_gpu * self.gpu_milli / GPU_MILLI_PER_GPU
        return out

    @classmethod
    def from_rows(cls, rows: Sequence[JobRow]) -> JobTable:
        """Build from rows in any order; sorted stably by submit time."""
        order = sorted(range(len(rows)), key=lambda i: rows[i].submit_s)
        r = [rows[i] for i in order]
        return cls(
            name=tuple(x.name for x in r),
            submit_s=np.array([x.submit_s for x in r], dtype=np.float64),
            duration_s=np.array([x.duration_s for x in r], dtype=np.float64),
            cpu_milli=np.array([x.cpu_milli for x in r], dtype=np.int64),
            memory_mib=np.array([x.memory_mib for x in r], dtype=np.int64),
            num_gpu=np.array([x.num_gpu for x in r], dtype=np.int64),
            gpu_milli=np.array([x.gpu_milli for x in r], dtype=np.int64),
            gpu_models=tuple(x.gpu_models for x in r),
            workers=np.array([x.workers for x in r], dtype=np.int64),
            priority=np.array([x.priority for x in r], dtype=np.int64),
        )


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as read from a file (validated by ``__post_init__``)."""

    name: str
    submit_s: float
    duration_s: float
    cpu_milli: int
    memory_mib: int
    num_gpu: int = 0
    gpu_milli: int = 0
    gpu_models: frozenset[str] | None = None
    workers: int = 1
    priority: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.submit_s) and self.submit_s >= 0.0):
            raise ValueError(f"submit_s: must be a finite, non-negative number of seconds (got {self.submit_s!r})")
        if not (np.isfinite(self.duration_s) and self.duration_s >= 0.0):
            raise ValueError(f"duration_s: must be a finite, non-negative number of seconds (got {self.duration_s!r})")
        for fname in ("cpu_milli", "memory_mib", "num_gpu"):
            if getattr(self, fname) < 0:
                raise ValueError(f"{fname}: must not be negative (got {getattr(self, fname)!r})")
        if self.workers < 1:
            raise ValueError(f"workers: must be at least 1 (got {self.workers!r})")
        if self.num_gpu == 0 and self.gpu_milli != 0:
            raise ValueError(f"gpu_milli: must be 0 when num_gpu is 0 (got {self.gpu_milli!r})")
        if self.num_gpu > 0:
            if not (0 < self.gpu_milli <= GPU_MILLI_PER_GPU):
                raise ValueError(f"gpu_milli: must be in 1..1000 per GPU (got {self.gpu_milli!r})")
            if self.num_gpu > 1 and self.gpu_milli != GPU_MILLI_PER_GPU:
                raise ValueError(f"gpu_milli: a share of a GPU needs num_gpu = 1 (got num_gpu={self.num_gpu})")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of the inventory."""

    name: str
    cpu_milli: int
    memory_mib: int
    gpu: int = 0
    gpu_model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        if self.cpu_milli <= 0:
            raise ValueError(f"cpu_milli: must be positive (got {self.cpu_milli!r})")
        if self.memory_mib <= 0:
            raise ValueError(f"memory_mib: must be positive (got {self.memory_mib!r})")
        if self.gpu < 0:
            raise ValueError(f"gpu: must not be negative (got {self.gpu!r})")
        if self.gpu > 0 and not self.gpu_model:
            raise ValueError("gpu_model: a node with GPUs needs a GPU model")


def node_class(cpu_milli: int, gpu: int) -> str:
    """The ``lepton.ai/node-class`` the shipped profiles expect.

    CPU-only nodes are classed by hardware threads like the SPECpower groups behind the profiles
    (up to 64, 65-128, more); GPU nodes are ``gpu`` so that only their GPU model selects a profile.
    """
    if gpu > 0:
        return "gpu"
    threads = cpu_milli / 1000.0
    if threads <= 64:
        return "cpu-small"
    if threads <= 128:
        return "cpu-large"
    return "cpu-xlarge"


def default_labels(cpu_milli: int, gpu: int, gpu_model: str) -> dict[str, str]:
    """Labels a real node of this shape would carry for profile matching."""
    labels = {NODE_CLASS_LABEL: node_class(cpu_milli, gpu)}
    if gpu > 0 and gpu_model:
        labels[GPU_MODEL_LABEL] = gpu_model
    return labels


@dataclass(frozen=True)
class Trace:
    """A replayable trace: jobs, nodes and where they came from."""

    jobs: JobTable
    nodes: tuple[NodeSpec, ...]
    source: str
    """Human-readable origin (``openb:default``, a file pair, the embedded sample)."""
    notes: tuple[str, ...] = ()
    """Assumptions the reader made (printed with the report)."""

    def limited(self, count: int | None) -> Trace:
        if count is None or count >= len(self.jobs):
            return self
        return Trace(self.jobs.head(count), self.nodes, f"{self.source} (first {count} jobs)", self.notes)
