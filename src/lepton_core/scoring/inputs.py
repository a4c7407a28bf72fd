"""Scoring inputs: one pod's demand and the nodes' state as a structure of arrays.

Neighbours: the extender's snapshot (``lepton_extender.snapshot``) and the simulator's cluster state
build these; ``lepton_core.scoring.score`` reads them. Both callers keep their own name ↔ position
maps: a ``NodeState`` is indexed by position only.

Conventions:

* every array has one entry per node, float64 unless noted; missing measurements are NaN, never 0;
* ``requested_*`` is what the scheduler has promised away on the node: pods bound to it **plus** pods the
  caller has just placed there and that are not bound yet;
* ``pending_*`` is the *expected busy* load (cores, GPUs) of pods placed on the node since its last
  telemetry sample (bound or not); it is added to the measured utilization until metrics catch up;
* a node's power model includes its PUE (``NodePowerTable.pue``); IT power is the model without it,
  energy cost is IT power × PUE × price, and power caps apply to IT power.

Layout, for speed: all of a ``NodeState``'s float arrays are rows of one 2-D block, and all of a
``NodeCostTable``'s per-node constants rows of another, so selecting one request's candidates is two
fancy-indexing operations instead of forty. The attributes are views into the block: update them **in
place** (``state.requested_gpus[i] += 1``) between calls; rebinding them is an error. ``allocatable_*``
are read-only because their reciprocals are cached in the block: build a new ``NodeState`` when nodes
come, go or change size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.power import NodePowerModel, NodePowerTable
from lepton_core.models.tariff import Tariff
from lepton_core.profiles import CostProfile

FloatArray = NDArray[np.float64]
ArrayLike = Sequence[float] | NDArray[np.floating[Any]] | NDArray[np.integer[Any]]
"""Anything numpy turns into a float64 array of one entry per node."""


def _fraction(value: float, name: str) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must be a fraction in [0, 1] (got {value!r})")


class PodDemand:
    """What one pod asks for, and how busy it is expected to keep what it asks for."""

    __slots__ = (
        "busy_cpu_cores",
        "busy_gpus",
        "cpu_busy_fraction",
        "cpu_cores",
        "gpu_busy_fraction",
        "gpus",
        "memory_bytes",
    )

    cpu_cores: float
    memory_bytes: float
    gpus: float
    """Whole or fractional GPUs (fractional GPU sharing, e.g. the Alibaba traces)."""
    cpu_busy_fraction: float
    """Expected CPU utilization of the requested cores, [0, 1]; 1 is the safe assumption."""
    gpu_busy_fraction: float
    """Expected duty cycle of the requested GPUs, [0, 1]; AI jobs keep their GPUs busy."""
    busy_cpu_cores: float
    busy_gpus: float

    def __init__(
        self,
        cpu_cores: float = 0.0,
        memory_bytes: float = 0.0,
        gpus: float = 0.0,
        cpu_busy_fraction: float = 1.0,
        gpu_busy_fraction: float = 1.0,
    ) -> None:
        for name, v in (("cpu_cores", cpu_cores), ("memory_bytes", memory_bytes), ("gpus", gpus)):
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name}: must be a finite, non-negative number (got {v!r})")
        _fraction(cpu_busy_fraction, "cpu_busy_fraction")
        _fraction(gpu_busy_fraction, "gpu_busy_fraction")
        self.cpu_cores = float(cpu_cores)
        self.memory_bytes = float(memory_bytes)
        self.gpus = float(gpus)
        self.cpu_busy_fraction = float(cpu_busy_fraction)
        self.gpu_busy_fraction = float(gpu_busy_fraction)
        self.busy_cpu_cores = self.cpu_cores * self.cpu_busy_fraction
        self.busy_gpus = self.gpus * self.gpu_busy_fraction

    def __repr__(self) -> str:
        return (
            f"PodDemand(cpu_cores={self.cpu_cores}, memory_bytes={self.memory_bytes}, gpus={self.gpus}, "
            f"cpu_busy_fraction={self.cpu_busy_fraction}, gpu_busy_fraction={self.gpu_busy_fraction})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PodDemand):
            return NotImplemented
        return repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class _Row:
    """A named row of an owner's 2-D ``_block``, returned as a (writable or read-only) view."""

    def __init__(self, index: int, writable: bool = True) -> None:
        self.index = index
        self.writable = writable

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Row: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> FloatArray: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> FloatArray | _Row:
        if obj is None:
            return self
        row: FloatArray = obj._block[self.index]  # type: ignore[attr-defined]
        if not self.writable:
            row = row.view()
            row.flags.writeable = False
        return row

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"{self.name}: update the array in place (state.{self.name}[...] = ...), do not rebind it")


# Row order of NodeState._block. Resources come in the order cpu, gpu, memory, and related rows are
# adjacent, so scoring treats e.g. (cpu, gpu) utilization as one (2, n) slice: half the numpy calls.
# The "inv_*" rows are derived from allocatable at build time (``None`` default: not an input).
_STATE_ROWS: tuple[tuple[str, float | None], ...] = (
    ("allocatable_cpu_cores", 0.0),
    ("allocatable_gpus", 0.0),
    ("allocatable_memory_bytes", 0.0),
    ("requested_cpu_cores", 0.0),
    ("requested_gpus", 0.0),
    ("requested_memory_bytes", 0.0),
    ("inv_cpu_cores", None),
    ("inv_gpus", None),
    ("inv_memory_bytes", None),
    ("cpu_utilization", math.nan),
    ("gpu_utilization", math.nan),
    ("pending_cpu_cores", 0.0),
    ("pending_gpus", 0.0),
    ("telemetry_observed_at", math.nan),
    ("measured_power_watts", math.nan),
    ("workload_pods", 0.0),
    ("power_cap_watts", math.nan),
    ("price_per_kwh", 0.0),
)
_ROW = {name: i for i, (name, _) in enumerate(_STATE_ROWS)}
_STATE_BLOCK_ROWS = len(_STATE_ROWS)
# Slices for the scoring function (same package).
ALLOC3 = slice(_ROW["allocatable_cpu_cores"], _ROW["allocatable_memory_bytes"] + 1)
REQ3 = slice(_ROW["requested_cpu_cores"], _ROW["requested_memory_bytes"] + 1)
INV3 = slice(_ROW["inv_cpu_cores"], _ROW["inv_memory_bytes"] + 1)
UTIL2 = slice(_ROW["cpu_utilization"], _ROW["gpu_utilization"] + 1)
PENDING2 = slice(_ROW["pending_cpu_cores"], _ROW["pending_gpus"] + 1)
ROW = _ROW


def _inverse(x: FloatArray) -> FloatArray:
    """1 / x, 0 where x <= 0 (a resource the node does not have)."""
    out = np.zeros_like(x)
    np.divide(1.0, x, out=out, where=x > 0.0)
    return out


class NodeState:
    """The nodes, one entry per node in every array (see the module docstring). Build with :meth:`build`."""

    __slots__ = ("_block", "autoscaled", "costs")

    allocatable_cpu_cores = _Row(_ROW["allocatable_cpu_cores"], writable=False)
    allocatable_memory_bytes = _Row(_ROW["allocatable_memory_bytes"], writable=False)
    allocatable_gpus = _Row(_ROW["allocatable_gpus"], writable=False)
    requested_cpu_cores = _Row(_ROW["requested_cpu_cores"])
    requested_memory_bytes = _Row(_ROW["requested_memory_bytes"])
    requested_gpus = _Row(_ROW["requested_gpus"])
    cpu_utilization = _Row(_ROW["cpu_utilization"])
    """Measured busy fraction of the node's CPUs, [0, 1]; NaN when unknown."""
    gpu_utilization = _Row(_ROW["gpu_utilization"])
    """Measured mean GPU duty cycle, [0, 1]; NaN when unknown (ignored on nodes without GPUs)."""
    telemetry_observed_at = _Row(_ROW["telemetry_observed_at"])
    """Unix time (s) of the node's newest telemetry sample; NaN when it never had one."""
    measured_power_watts = _Row(_ROW["measured_power_watts"])
    """Measured IT power (Kepler/DCGM), NaN when unknown; used for the power cap."""
    pending_cpu_cores = _Row(_ROW["pending_cpu_cores"])
    """Expected busy cores placed since the telemetry sample (burst compensation)."""
    pending_gpus = _Row(_ROW["pending_gpus"])
    """Expected busy GPUs placed since the telemetry sample (burst compensation)."""
    workload_pods = _Row(_ROW["workload_pods"])
    """Pods on the node that are not DaemonSet or static pods (placed ones included); 0 = empty."""
    power_cap_watts = _Row(_ROW["power_cap_watts"])
    """IT power cap; NaN for none."""
    price_per_kwh = _Row(_ROW["price_per_kwh"])
    """The node's electricity price now (``costs.prices_per_kwh_at(now)``; refresh it as time passes)."""
    inv_cpu_cores = _Row(_ROW["inv_cpu_cores"], writable=False)
    """1 / allocatable cpu (0 where none); derived."""
    inv_memory_bytes = _Row(_ROW["inv_memory_bytes"], writable=False)
    inv_gpus = _Row(_ROW["inv_gpus"], writable=False)

    _block: FloatArray
    costs: NodeCostTable
    """Power models, fixed cost rates and tariffs (built once per inventory)."""
    autoscaled: NDArray[np.bool_]
    """The node belongs to an autoscaled pool: keeping it busy keeps it from being scaled down."""

    def __init__(self, costs: NodeCostTable, block: FloatArray, autoscaled: NDArray[np.bool_]) -> None:
        """Low-level: prefer :meth:`build`. ``block`` rows follow ``_STATE_ROWS``."""
        n = len(costs)
        if block.shape != (_STATE_BLOCK_ROWS, n) or autoscaled.shape != (n,):
            raise ValueError(f"node state: expected {n} nodes in every array")
        object.__setattr__(self, "costs", costs)
        object.__setattr__(self, "_block", block)
        object.__setattr__(self, "autoscaled", autoscaled)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{name}: NodeState arrays are updated in place, not rebound")

    def __len__(self) -> int:
        return int(self._block.shape[1])

    @property
    def block(self) -> FloatArray:
        """All float rows as one (rows, nodes) array (for ``score``; layout in ``_STATE_ROWS``)."""
        return self._block

    def take(self, indices: NDArray[np.intp]) -> NodeState:
        """The nodes at ``indices`` (in that order), e.g. the candidates of one request (a copy)."""
        return NodeState(self.costs.take(indices), self._block.take(indices, axis=1), self.autoscaled[indices])

    def validate(self) -> None:
        """Full value checks (run by :meth:`build`; call again after bulk in-place updates from outside data)."""
        for name in (
            "allocatable_cpu_cores",
            "allocatable_memory_bytes",
            "allocatable_gpus",
            "requested_cpu_cores",
            "requested_memory_bytes",
            "requested_gpus",
            "pending_cpu_cores",
            "pending_gpus",
            "workload_pods",
        ):
            arr = self._block[_ROW[name]]
            bad = ~np.isfinite(arr) | (arr < 0.0)
            if bad.any():
                raise ValueError(f"{name}[{int(np.argmax(bad))}]: must be a finite, non-negative number")
        for name in ("cpu_utilization", "gpu_utilization"):
            arr = self._block[_ROW[name]]
            bad = ~np.isnan(arr) & ~((arr >= 0.0) & (arr <= 1.0))
            if bad.any():
                raise ValueError(f"{name}[{int(np.argmax(bad))}]: must be in [0, 1] or NaN")
        for name in ("measured_power_watts", "power_cap_watts"):
            arr = self._block[_ROW[name]]
            bad = ~np.isnan(arr) & ~(np.isfinite(arr) & (arr >= 0.0))
            if bad.any():
                raise ValueError(f"{name}[{int(np.argmax(bad))}]: must be a non-negative number or NaN")
        if (~np.isfinite(self.price_per_kwh)).any():
            raise ValueError("price_per_kwh: must be finite (negative market prices are allowed)")

    @classmethod
    def build(
        cls,
        *,
        costs: NodeCostTable,
        now: float,
        allocatable_cpu_cores: ArrayLike,
        allocatable_memory_bytes: ArrayLike,
        allocatable_gpus: ArrayLike,
        requested_cpu_cores: ArrayLike | None = None,
        requested_memory_bytes: ArrayLike | None = None,
        requested_gpus: ArrayLike | None = None,
        cpu_utilization: ArrayLike | None = None,
        gpu_utilization: ArrayLike | None = None,
        telemetry_observed_at: ArrayLike | None = None,
        measured_power_watts: ArrayLike | None = None,
        pending_cpu_cores: ArrayLike | None = None,
        pending_gpus: ArrayLike | None = None,
        workload_pods: ArrayLike | None = None,
        autoscaled: Sequence[bool] | NDArray[np.bool_] | None = None,
        power_cap_watts: ArrayLike | None = None,
    ) -> NodeState:
        """Copy the given arrays into a new state; omitted ones get their defaults (nothing requested, no
        telemetry, nothing pending, not autoscaled, no power cap). Prices are the tariffs' at ``now``."""
        given = {
            "allocatable_cpu_cores": allocatable_cpu_cores,
            "allocatable_memory_bytes": allocatable_memory_bytes,
            "allocatable_gpus": allocatable_gpus,
            "requested_cpu_cores": requested_cpu_cores,
            "requested_memory_bytes": requested_memory_bytes,
            "requested_gpus": requested_gpus,
            "cpu_utilization": cpu_utilization,
            "gpu_utilization": gpu_utilization,
            "telemetry_observed_at": telemetry_observed_at,
            "measured_power_watts": measured_power_watts,
            "pending_cpu_cores": pending_cpu_cores,
            "pending_gpus": pending_gpus,
            "workload_pods": workload_pods,
            "power_cap_watts": power_cap_watts,
            "price_per_kwh": costs.prices_per_kwh_at(now),
        }
        n = len(costs)
        block = np.empty((_STATE_BLOCK_ROWS, n))
        for i, (name, default) in enumerate(_STATE_ROWS):
            if default is None:
                continue  # derived below
            value = given[name]
            if value is None:
                block[i] = default
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected {n} entries (one per node), got shape {arr.shape}")
            block[i] = arr
        block[INV3] = _inverse(block[ALLOC3])
        flags = np.zeros(n, dtype=bool) if autoscaled is None else np.array(autoscaled, dtype=bool)
        if flags.shape != (n,):
            raise ValueError(f"autoscaled: expected {n} entries (one per node), got shape {flags.shape}")
        state = cls(costs, block, flags)
        state.validate()
        return state


# Row order of NodeCostTable._block (then the platform curve: watts at each grid point, then slopes).
_HW, _OPS, _PUE, _GPU_IDLE_TOTAL, _GPU_SPAN_TOTAL, _GPU_EXPONENT = range(6)
_COST_FIXED_ROWS = 6


class NodeCostTable:
    """What each node costs, from its cost profile: power model, fixed cost rates and tariff.

    Built once per inventory change (not per request); ``prices_per_kwh_at`` evaluates each distinct
    tariff once. The platform curves are tabulated on the union grid of their breakpoints (as
    ``NodePowerTable`` does, so the function is the same; tested) and read back with flat ``take``s.
    """

    __slots__ = ("_arange", "_block", "_full_power", "_grid", "_index", "_uniform", "tariff_index", "tariffs")

    hardware_cost_per_hour = _Row(_HW, writable=False)
    """Amortized hardware (platform + GPUs) per hour."""
    operations_cost_per_hour = _Row(_OPS, writable=False)
    pue = _Row(_PUE, writable=False)
    gpu_idle_watts_total = _Row(_GPU_IDLE_TOTAL, writable=False)
    """All GPUs of the node at idle, IT watts."""
    gpu_span_watts_total = _Row(_GPU_SPAN_TOTAL, writable=False)
    """count × (max − idle) per node, IT watts."""
    gpu_exponent = _Row(_GPU_EXPONENT, writable=False)

    tariffs: tuple[Tariff, ...]
    tariff_index: NDArray[np.intp]
    """tariffs[tariff_index[i]] is node i's tariff."""

    def __init__(
        self,
        power: NodePowerTable,
        hardware_cost_per_hour: ArrayLike,
        operations_cost_per_hour: ArrayLike,
        tariffs: Sequence[Tariff],
        tariff_index: Sequence[int] | NDArray[np.intp],
    ) -> None:
        n = len(power)
        grid = power.grid
        g = grid.size
        block = np.empty((_COST_FIXED_ROWS + 2 * g, n))
        for row, value, name in (
            (_HW, hardware_cost_per_hour, "hardware_cost_per_hour"),
            (_OPS, operations_cost_per_hour, "operations_cost_per_hour"),
        ):
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected {n} entries (one per node)")
            if (~np.isfinite(arr) | (arr < 0.0)).any():
                raise ValueError(f"{name}: must be finite and non-negative")
            block[row] = arr
        index = np.asarray(tariff_index, dtype=np.intp)
        if index.shape != (n,) or (n and (index.min() < 0 or index.max() >= len(tariffs))):
            raise ValueError("tariff_index: expected one valid tariff position per node")
        block[_PUE] = power.pue
        block[_GPU_IDLE_TOTAL] = power.gpu_count * power.gpu_idle_watts
        block[_GPU_SPAN_TOTAL] = power.gpu_count * (power.gpu_max_watts - power.gpu_idle_watts)
        block[_GPU_EXPONENT] = power.gpu_exponent
        watts = np.stack([power.platform_watts(np.full(n, u)) for u in grid])
        slope = np.diff(watts, axis=0) / np.diff(grid)[:, None]
        block[_COST_FIXED_ROWS : _COST_FIXED_ROWS + g] = watts
        block[_COST_FIXED_ROWS + g : _COST_FIXED_ROWS + 2 * g - 1] = slope
        block[_COST_FIXED_ROWS + 2 * g - 1] = slope[-1]  # u == 1 lands on the last point
        steps = np.diff(grid)
        self._init(
            block=block,
            grid=grid,
            uniform=bool(np.allclose(steps, steps[0], rtol=0.0, atol=1e-12)),
            full_power=power,
            index=None,
            tariffs=tuple(tariffs),
            tariff_index=index,
        )

    def _init(
        self,
        *,
        block: FloatArray,
        grid: FloatArray,
        uniform: bool,
        full_power: NodePowerTable,
        index: NDArray[np.intp] | None,
        tariffs: tuple[Tariff, ...],
        tariff_index: NDArray[np.intp],
    ) -> None:
        self._block = block
        self._grid = grid
        self._uniform = uniform
        self._full_power = full_power
        self._index = index
        self._arange = np.arange(block.shape[1], dtype=np.intp)
        self.tariffs = tariffs
        self.tariff_index = tariff_index

    def __len__(self) -> int:
        return int(self._block.shape[1])

    @property
    def power(self) -> NodePowerTable:
        """The nodes' power models (``NodePowerTable``), in this table's order."""
        if self._index is None:
            return self._full_power
        return self._full_power.take(self._index)

    @property
    def fixed_cost_per_hour(self) -> FloatArray:
        out: FloatArray = self._block[_HW] + self._block[_OPS]
        return out

    def take(self, indices: NDArray[np.intp]) -> NodeCostTable:
        """The nodes at ``indices``, e.g. one request's candidates out of the whole inventory."""
        out = object.__new__(NodeCostTable)
        index = indices if self._index is None else self._index[indices]
        out._init(
            block=self._block.take(indices, axis=1),
            grid=self._grid,
            uniform=self._uniform,
            full_power=self._full_power,
            index=np.asarray(index, dtype=np.intp),
            tariffs=self.tariffs,
            tariff_index=self.tariff_index[indices],
        )
        return out

    def platform_watts(self, cpu_utilization: FloatArray) -> FloatArray:
        """Platform (host) IT power of each node at ``cpu_utilization`` in [0, 1] (no NaN)."""
        u = cpu_utilization
        grid = self._grid
        last = grid.size - 2
        if self._uniform:
            j = ((u - grid[0]) * ((last + 1) / (grid[-1] - grid[0]))).astype(np.intp)
            np.minimum(j, last, out=j)
        else:
            j = np.searchsorted(grid, u, side="right") - 1
            np.clip(j, 0, last, out=j)
        n = self._arange.size
        flat = (j + _COST_FIXED_ROWS) * n + self._arange
        block = self._block.ravel()
        out: FloatArray = block.take(flat) + (u - grid.take(j)) * block.take(flat + grid.size * n)
        return out

    def gpu_dynamic_fraction(self, gpu_utilization: FloatArray) -> FloatArray:
        """u**k per node for u in [0, 1]: all GPUs draw idle_total + span_total × this."""
        # exp(k·log u) is twice as fast as a power with an array exponent; the floor keeps log finite
        # at u = 0, where the result underflows to exactly 0.
        out: FloatArray = np.exp(self._block[_GPU_EXPONENT] * np.log(np.maximum(gpu_utilization, 1e-300)))
        return out

    def gpu_watts(self, gpu_utilization: FloatArray) -> FloatArray:
        """All GPUs of each node at its mean GPU utilization in [0, 1] (same as ``power.gpu_watts``)."""
        b = self._block
        out: FloatArray = b[_GPU_IDLE_TOTAL] + b[_GPU_SPAN_TOTAL] * self.gpu_dynamic_fraction(gpu_utilization)
        return out

    def it_power_watts(self, cpu_utilization: FloatArray, gpu_utilization: FloatArray) -> FloatArray:
        """IT power (no PUE) of each node; utilizations must already be in [0, 1] (no NaN)."""
        out: FloatArray = self.platform_watts(cpu_utilization) + self.gpu_watts(gpu_utilization)
        return out

    def prices_per_kwh_at(self, now: float) -> FloatArray:
        """Each node's price per kWh at ``now``.

        Outside a non-cyclic price series the nearest end of the series is used (a live extender may run
        past the last hour of a price file; failing scheduling for a pricing gap would be worse).
        """
        per_tariff = np.array([tariff_price_at(t, now) for t in self.tariffs], dtype=np.float64)
        out: FloatArray = per_tariff[self.tariff_index]
        return out

    @classmethod
    def from_profiles(cls, profiles: Sequence[CostProfile], gpu_counts: Sequence[int]) -> NodeCostTable:
        """One profile and one GPU count per node (the GPU count comes from the node's allocatable).

        Raises ``ProfileError`` when a node has GPUs and its profile no GPU model; callers fall back to
        a profile that has one (the extender uses the default profile and warns).
        """
        if len(profiles) != len(gpu_counts):
            raise ValueError("need one GPU count per node profile")
        if not profiles:
            raise ValueError("need at least one node")
        models: list[NodePowerModel] = []
        hardware = np.empty(len(profiles))
        operations = np.empty(len(profiles))
        tariff_ids: dict[int, int] = {}
        tariffs: list[Tariff] = []
        index = np.empty(len(profiles), dtype=np.intp)
        cache: dict[tuple[int, int], tuple[NodePowerModel, float, float]] = {}
        for i, (p, g) in enumerate(zip(profiles, gpu_counts, strict=True)):
            key = (id(p), int(g))
            hit = cache.get(key)
            if hit is None:
                fixed = p.fixed_cost_per_hour(int(g))
                hit = (p.power_model(int(g)), fixed.hardware, fixed.operations)
                cache[key] = hit
            models.append(hit[0])
            hardware[i] = hit[1]
            operations[i] = hit[2]
            t = tariff_ids.get(id(p.tariff))
            if t is None:
                t = len(tariffs)
                tariff_ids[id(p.tariff)] = t
                tariffs.append(p.tariff)
            index[i] = t
        return cls(NodePowerTable(models), hardware, operations, tariffs, index)


def tariff_price_at(tariff: Tariff, now: float) -> float:
    """``tariff.price_per_kwh_at(now)``, clamped into the series' domain (see ``prices_per_kwh_at``)."""
    f = tariff.prices
    if f.period is None:
        if now < float(f.breakpoints[0]):
            now = float(f.breakpoints[0])
        elif now >= f.end:
            return float(f.values[-1])
    return tariff.price_per_kwh_at(now)
