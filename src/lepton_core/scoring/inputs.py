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

Layout, for speed (a request scores ~500 nodes, where each numpy call costs more than its arithmetic):
a ``NodeState`` keeps everything per node in one **node-major** 2-D block (one row per node, one column
per quantity), including the node's cost constants copied from its ``NodeCostTable`` and a few values
derived from allocatable. Selecting one request's candidates is then a single ``take`` of contiguous
rows. The public attributes are column views into the block: update them **in place**
(``state.requested_gpus[i] += 1``) between calls; rebinding them is an error. ``allocatable_*`` and the
derived and constant columns are read-only: build a new ``NodeState`` when nodes come, go or change size.
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

FIT_TOLERANCE = 1e-9
"""Relative and absolute slack of the fit check (requests summed in floating point)."""


def _fraction(value: float, name: str) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must be a fraction in [0, 1] (got {value!r})")


class PodDemand:
    """What one pod asks for, and how busy it is expected to keep what it asks for.

    GPUs: the whole part (``floor(gpus)``) is taken as exclusive devices, the fractional part as a share
    of one more device (GPU sharing, e.g. the Alibaba traces).
    """

    __slots__ = (
        "_arrays",
        "busy_cpu_cores",
        "busy_gpus",
        "cpu_busy_fraction",
        "cpu_cores",
        "gpu_busy_fraction",
        "gpus",
        "memory_bytes",
        "shared_gpu_fraction",
        "whole_gpus",
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
    whole_gpus: float
    """``floor(gpus)``: devices the pod gets to itself."""
    shared_gpu_fraction: float
    """``gpus − whole_gpus``: the share of one more device."""
    _arrays: tuple[FloatArray, FloatArray, slice | NDArray[np.intp], FloatArray] | None

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
        self.whole_gpus = float(math.floor(self.gpus))
        self.shared_gpu_fraction = self.gpus - self.whole_gpus
        self._arrays = None

    def _kernel_arrays(self) -> tuple[FloatArray, FloatArray, slice | NDArray[np.intp], FloatArray]:
        """The numpy kernel's view of the demand, built on first use (the compiled kernel needs none)."""
        if self._arrays is None:
            busy2 = np.array(((self.busy_cpu_cores,), (self.busy_gpus,)))
            demand3 = np.array(((self.cpu_cores,), (self.gpus,), (self.memory_bytes,)))
            resources = (("cpu", self.cpu_cores), ("memory", self.memory_bytes), ("gpu", self.gpus))
            asked = [(r, v) for r, v in resources if v]
            columns = [SHARE_INV[r] for r, _ in asked]
            # A slice where the columns are adjacent (the common pods), else an index array.
            share_columns: slice | NDArray[np.intp] = (
                slice(columns[0], columns[-1] + 1)
                if columns and columns == list(range(columns[0], columns[-1] + 1))
                else np.array(columns, dtype=np.intp)
            )
            share_demand = np.array([[v] for _, v in asked]).reshape(len(asked), 1)
            self._arrays = (busy2, demand3, share_columns, share_demand)
        return self._arrays

    @property
    def busy2(self) -> FloatArray:
        """(2, 1): busy cores, busy GPUs."""
        return self._kernel_arrays()[0]

    @property
    def demand3(self) -> FloatArray:
        """(3, 1): cores, GPUs, memory bytes."""
        return self._kernel_arrays()[1]

    @property
    def share_columns(self) -> slice | NDArray[np.intp]:
        """The numpy kernel's share columns of the resources the pod asks for."""
        return self._kernel_arrays()[2]

    @property
    def share_demand(self) -> FloatArray:
        return self._kernel_arrays()[3]

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


class _Column:
    """A named column of an owner's node-major ``_block``, returned as a (writable or read-only) view."""

    def __init__(self, index: int, writable: bool = True) -> None:
        self.index = index
        self.writable = writable

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Column: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> FloatArray: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> FloatArray | _Column:
        if obj is None:
            return self
        col: FloatArray = obj._block[:, self.index]  # type: ignore[attr-defined]
        if not self.writable:
            col.flags.writeable = False
        return col

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"{self.name}: update the array in place (state.{self.name}[...] = ...), do not rebind it")


# Column order of NodeState._block. The columns up to HOT_COLUMNS are what every request reads (taken
# for the candidates in one call); the rest are constants read only for reports. Resources come in the
# order cpu, gpu, memory and related columns are adjacent, so scoring treats e.g. (cpu, gpu) utilization
# as one (2, n) slice: half the numpy calls. ``None`` default: derived or copied from the cost table.
_STATE_COLUMNS: tuple[tuple[str, float | None], ...] = (
    ("limit_cpu_cores", None),  # allocatable with the fit tolerance
    ("limit_gpus", None),
    ("limit_memory_bytes", None),
    ("requested_cpu_cores", 0.0),
    ("requested_gpus", 0.0),
    ("requested_memory_bytes", 0.0),
    ("inv_cpu_cores", None),  # 1 / allocatable, 0 where the node has none
    ("inv_gpus", None),
    # 1 / allocatable, inf where the node has none (asking for it = taking the whole node); memory
    # before GPUs so that a CPU pod's columns (cpu, memory) and a GPU pod's (all three) are slices.
    ("share_inv_cpu_cores", None),
    ("share_inv_memory_bytes", None),
    ("share_inv_gpus", None),
    ("cpu_utilization", math.nan),
    ("gpu_utilization", math.nan),
    ("pending_cpu_cores", 0.0),
    ("pending_gpus", 0.0),
    ("telemetry_observed_at", math.nan),
    ("workload_pods", 0.0),
    ("autoscaled", 0.0),
    ("price_per_kwh", 0.0),
    ("pue_per_kilowatt", None),  # PUE / 1000: price per kWh × this = price per IT watt-hour
    ("fixed_cost_per_hour", None),
    ("gpu_span_watts", None),  # one GPU: max − idle
    ("curve_base", None),  # the platform curve's first entry in the cost table's curve table
    # Read when needed only (see HOT_COLUMNS).
    ("inv_memory_bytes", None),
    ("measured_power_watts", math.nan),
    ("power_cap_watts", math.nan),
    ("gpu_idle_watts_total", None),
    ("gpu_span_watts_total", None),
    ("gpu_exponent", None),
    ("hardware_cost_per_hour", None),
    ("operations_cost_per_hour", None),
    ("allocatable_cpu_cores", 0.0),
    ("allocatable_gpus", 0.0),
    ("allocatable_memory_bytes", 0.0),
)
COL = {name: i for i, (name, _) in enumerate(_STATE_COLUMNS)}
_STATE_BLOCK_COLUMNS = len(_STATE_COLUMNS)
HOT_COLUMNS = COL["curve_base"] + 1
"""Columns every request reads, copied column-major for the candidates; the others are read in place
when a branch needs them (power caps, fractional GPUs, keep-alive and risk power) or for reports."""
# Slices for the scoring kernel (same package), over the columns of the block.
LIMIT3 = slice(COL["limit_cpu_cores"], COL["limit_memory_bytes"] + 1)
REQ3 = slice(COL["requested_cpu_cores"], COL["requested_memory_bytes"] + 1)
REQ2 = slice(COL["requested_cpu_cores"], COL["requested_gpus"] + 1)
INV2 = slice(COL["inv_cpu_cores"], COL["inv_gpus"] + 1)
SHARE_INV = {
    "cpu": COL["share_inv_cpu_cores"],
    "memory": COL["share_inv_memory_bytes"],
    "gpu": COL["share_inv_gpus"],
}
UTIL2 = slice(COL["cpu_utilization"], COL["gpu_utilization"] + 1)
PENDING2 = slice(COL["pending_cpu_cores"], COL["pending_gpus"] + 1)
ALLOC3 = slice(COL["allocatable_cpu_cores"], COL["allocatable_memory_bytes"] + 1)
_WRITABLE = (
    "requested_cpu_cores",
    "requested_gpus",
    "requested_memory_bytes",
    "cpu_utilization",
    "gpu_utilization",
    "pending_cpu_cores",
    "pending_gpus",
    "telemetry_observed_at",
    "workload_pods",
    "autoscaled",
    "price_per_kwh",
    "measured_power_watts",
    "power_cap_watts",
)


def _inverse(x: FloatArray, missing: float) -> FloatArray:
    """1 / x, ``missing`` where x <= 0 (a resource the node does not have)."""
    out = np.full_like(x, missing)
    np.divide(1.0, x, out=out, where=x > 0.0)
    return out


class NodeState:
    """The nodes, one entry per node in every array (see the module docstring). Build with :meth:`build`."""

    __slots__ = ("_block", "costs")

    allocatable_cpu_cores = _Column(COL["allocatable_cpu_cores"], writable=False)
    allocatable_memory_bytes = _Column(COL["allocatable_memory_bytes"], writable=False)
    allocatable_gpus = _Column(COL["allocatable_gpus"], writable=False)
    requested_cpu_cores = _Column(COL["requested_cpu_cores"])
    requested_memory_bytes = _Column(COL["requested_memory_bytes"])
    requested_gpus = _Column(COL["requested_gpus"])
    cpu_utilization = _Column(COL["cpu_utilization"])
    """Measured busy fraction of the node's CPUs, [0, 1]; NaN when unknown."""
    gpu_utilization = _Column(COL["gpu_utilization"])
    """Measured mean GPU duty cycle, [0, 1]; NaN when unknown (ignored on nodes without GPUs)."""
    telemetry_observed_at = _Column(COL["telemetry_observed_at"])
    """Unix time (s) of the node's newest telemetry sample; NaN when it never had one."""
    measured_power_watts = _Column(COL["measured_power_watts"])
    """Measured IT power (Kepler/DCGM), NaN when unknown; used for the power cap."""
    pending_cpu_cores = _Column(COL["pending_cpu_cores"])
    """Expected busy cores placed since the telemetry sample (burst compensation)."""
    pending_gpus = _Column(COL["pending_gpus"])
    """Expected busy GPUs placed since the telemetry sample (burst compensation)."""
    workload_pods = _Column(COL["workload_pods"])
    """Pods on the node that are not DaemonSet or static pods (placed ones included); 0 = empty."""
    autoscaled = _Column(COL["autoscaled"])
    """1.0 where the node belongs to an autoscaled pool (keeping it busy keeps it from being scaled
    down), else 0.0."""
    power_cap_watts = _Column(COL["power_cap_watts"])
    """IT power cap; NaN for none."""
    price_per_kwh = _Column(COL["price_per_kwh"])
    """The node's electricity price now (``costs.prices_per_kwh_at(now)``; refresh it as time passes)."""
    inv_cpu_cores = _Column(COL["inv_cpu_cores"], writable=False)
    """1 / allocatable cpu (0 where none); derived."""
    inv_memory_bytes = _Column(COL["inv_memory_bytes"], writable=False)
    inv_gpus = _Column(COL["inv_gpus"], writable=False)

    _block: FloatArray
    costs: NodeCostTable
    """Power models, fixed cost rates and tariffs (built once per inventory)."""

    def __init__(self, costs: NodeCostTable, block: FloatArray) -> None:
        """Low-level: prefer :meth:`build`. ``block`` is node-major, columns as ``_STATE_COLUMNS``."""
        n = len(costs)
        if block.shape != (n, _STATE_BLOCK_COLUMNS):
            raise ValueError(f"node state: expected {n} nodes in every array")
        object.__setattr__(self, "costs", costs)
        object.__setattr__(self, "_block", block)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{name}: NodeState arrays are updated in place, not rebound")

    def __len__(self) -> int:
        return int(self._block.shape[0])

    @property
    def block(self) -> FloatArray:
        """Every column as one node-major (nodes, columns) array (for ``score``; layout in ``COL``)."""
        return self._block

    def take(self, indices: NDArray[np.intp]) -> NodeState:
        """The nodes at ``indices`` (in that order), e.g. the candidates of one request (a copy)."""
        return NodeState(self.costs.take(indices), self._block.take(indices, axis=0))

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
            arr = self._block[:, COL[name]]
            bad = ~np.isfinite(arr) | (arr < 0.0)
            if bad.any():
                raise ValueError(f"{name}[{int(np.argmax(bad))}]: must be a finite, non-negative number")
        for name in ("cpu_utilization", "gpu_utilization"):
            arr = self._block[:, COL[name]]
            bad = ~np.isnan(arr) & ~((arr >= 0.0) & (arr <= 1.0))
            if bad.any():
                raise ValueError(f"{name}[{int(np.argmax(bad))}]: must be in [0, 1] or NaN")
        for name in ("measured_power_watts", "power_cap_watts"):
            arr = self._block[:, COL[name]]
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
        given: dict[str, Any] = {
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
            "autoscaled": None if autoscaled is None else np.asarray(autoscaled, dtype=bool),
        }
        n = len(costs)
        block = np.empty((n, _STATE_BLOCK_COLUMNS))
        for i, (name, default) in enumerate(_STATE_COLUMNS):
            if default is None:
                continue  # derived or constant, below
            value = given[name]
            if value is None:
                block[:, i] = default
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected {n} entries (one per node), got shape {arr.shape}")
            block[:, i] = arr
        alloc3 = block[:, ALLOC3]
        block[:, LIMIT3] = alloc3 * (1.0 + FIT_TOLERANCE) + FIT_TOLERANCE
        inv3 = _inverse(alloc3, 0.0)
        share_inv3 = _inverse(alloc3, math.inf)
        for k, resource in enumerate(("cpu_cores", "gpus", "memory_bytes")):
            block[:, COL[f"inv_{resource}"]] = inv3[:, k]
            block[:, COL[f"share_inv_{resource}"]] = share_inv3[:, k]
        c = costs.constants
        for name in (
            "fixed_cost_per_hour",
            "gpu_span_watts",
            "gpu_idle_watts_total",
            "gpu_span_watts_total",
            "gpu_exponent",
            "hardware_cost_per_hour",
            "operations_cost_per_hour",
            "curve_base",
        ):
            block[:, COL[name]] = c[:, _COST_COL[name]]
        block[:, COL["pue_per_kilowatt"]] = c[:, _COST_COL["pue"]] * (1.0 / 1000.0)
        state = cls(costs, block)
        state.validate()
        return state


# Column order of NodeCostTable.constants (node-major).
_COST_COLUMNS = (
    "hardware_cost_per_hour",
    "operations_cost_per_hour",
    "fixed_cost_per_hour",
    "pue",
    "gpu_count",
    "gpu_idle_watts_total",
    "gpu_span_watts_total",
    "gpu_span_watts",
    "gpu_exponent",
    "curve_base",  # the node's platform curve: its first entry in the flattened curve table
)
_COST_COL = {name: i for i, name in enumerate(_COST_COLUMNS)}


class NodeCostTable:
    """What each node costs, from its cost profile: power model, fixed cost rates and tariff.

    Built once per inventory change (not per request); ``prices_per_kwh_at`` evaluates each distinct
    tariff once. The platform curves are tabulated on the union grid of their breakpoints (as
    ``NodePowerTable`` does, so the function is the same; tested) as one intercept and one slope per
    segment and node, read back with flat ``take``s.
    """

    __slots__ = (
        "_curve",
        "_full_power",
        "_grid",
        "_index",
        "_inv_step",
        "_segments",
        "constants",
        "tariff_index",
        "tariffs",
    )

    hardware_cost_per_hour = _Column(_COST_COL["hardware_cost_per_hour"], writable=False)
    """Amortized hardware (platform + GPUs) per hour."""
    operations_cost_per_hour = _Column(_COST_COL["operations_cost_per_hour"], writable=False)
    fixed_cost_per_hour = _Column(_COST_COL["fixed_cost_per_hour"], writable=False)
    """Hardware + operations per hour."""
    pue = _Column(_COST_COL["pue"], writable=False)
    gpu_count = _Column(_COST_COL["gpu_count"], writable=False)
    gpu_idle_watts_total = _Column(_COST_COL["gpu_idle_watts_total"], writable=False)
    """All GPUs of the node at idle, IT watts."""
    gpu_span_watts_total = _Column(_COST_COL["gpu_span_watts_total"], writable=False)
    """count × (max − idle) per node, IT watts."""
    gpu_span_watts = _Column(_COST_COL["gpu_span_watts"], writable=False)
    """One GPU's max − idle, IT watts."""
    gpu_exponent = _Column(_COST_COL["gpu_exponent"], writable=False)

    constants: FloatArray
    """Per-node constants, node-major, columns as ``_COST_COLUMNS``."""
    tariffs: tuple[Tariff, ...]
    tariff_index: NDArray[np.intp]
    """tariffs[tariff_index[i]] is node i's tariff."""

    @property
    def _block(self) -> FloatArray:  # what the column descriptors read
        return self.constants

    def __init__(
        self,
        power: NodePowerTable,
        hardware_cost_per_hour: ArrayLike,
        operations_cost_per_hour: ArrayLike,
        tariffs: Sequence[Tariff],
        tariff_index: Sequence[int] | NDArray[np.intp],
    ) -> None:
        n = len(power)
        consts = np.empty((n, len(_COST_COLUMNS)))
        for name, value in (
            ("hardware_cost_per_hour", hardware_cost_per_hour),
            ("operations_cost_per_hour", operations_cost_per_hour),
        ):
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected {n} entries (one per node)")
            if (~np.isfinite(arr) | (arr < 0.0)).any():
                raise ValueError(f"{name}: must be finite and non-negative")
            consts[:, _COST_COL[name]] = arr
        index = np.asarray(tariff_index, dtype=np.intp)
        if index.shape != (n,) or (n and (index.min() < 0 or index.max() >= len(tariffs))):
            raise ValueError("tariff_index: expected one valid tariff position per node")
        span = power.gpu_max_watts - power.gpu_idle_watts
        consts[:, _COST_COL["fixed_cost_per_hour"]] = consts[:, 0] + consts[:, 1]
        consts[:, _COST_COL["pue"]] = power.pue
        consts[:, _COST_COL["gpu_count"]] = power.gpu_count
        consts[:, _COST_COL["gpu_idle_watts_total"]] = power.gpu_count * power.gpu_idle_watts
        consts[:, _COST_COL["gpu_span_watts_total"]] = power.gpu_count * span
        consts[:, _COST_COL["gpu_span_watts"]] = np.where(power.gpu_count > 0, span, 0.0)
        consts[:, _COST_COL["gpu_exponent"]] = power.gpu_exponent
        # Platform curves: on segment j (grid[j] <= u < grid[j+1]) P(u) = intercept_j + slope_j × u. A
        # last, repeated segment catches u == 1, so a lookup never needs clipping.
        # One row per *distinct* curve (one per profile, so a few KiB that stay in cache); nodes point at
        # theirs with ``curve_base``.
        grid = power.grid
        g = grid.size
        watts = power._curves  # (curves, g): each distinct curve on the union grid
        slope = np.diff(watts, axis=1) / np.diff(grid)
        slope = np.concatenate([slope, slope[:, -1:]], axis=1)  # (curves, g): the padded segment
        intercept = watts - slope * grid
        intercept[:, -1] = intercept[:, -2]
        curve = np.concatenate([intercept, slope], axis=1)  # (curves, 2g): intercepts, then slopes
        consts[:, _COST_COL["curve_base"]] = power._curve_of_node * (2 * g)
        steps = np.diff(grid)
        uniform = bool(np.allclose(steps, steps[0], rtol=0.0, atol=1e-12)) and grid[0] == 0.0
        self._init(
            constants=consts,
            curve=curve,
            grid=grid,
            inv_step=(g - 1) / float(grid[-1]) if uniform else 0.0,
            full_power=power,
            index=None,
            tariffs=tuple(tariffs),
            tariff_index=index,
        )

    def _init(
        self,
        *,
        constants: FloatArray,
        curve: FloatArray,
        grid: FloatArray,
        inv_step: float,
        full_power: NodePowerTable,
        index: NDArray[np.intp] | None,
        tariffs: tuple[Tariff, ...],
        tariff_index: NDArray[np.intp],
    ) -> None:
        self.constants = constants
        self._curve = curve
        self._segments = grid.size
        self._grid = grid
        self._inv_step = inv_step
        self._full_power = full_power
        self._index = index
        self.tariffs = tariffs
        self.tariff_index = tariff_index

    def __len__(self) -> int:
        return int(self.constants.shape[0])

    @property
    def power(self) -> NodePowerTable:
        """The nodes' power models (``NodePowerTable``), in this table's order."""
        if self._index is None:
            return self._full_power
        return self._full_power.take(self._index)

    def take(self, indices: NDArray[np.intp]) -> NodeCostTable:
        """The nodes at ``indices``, e.g. one request's candidates out of the whole inventory."""
        out = object.__new__(NodeCostTable)
        index = indices if self._index is None else self._index[indices]
        out._init(
            constants=self.constants.take(indices, axis=0),
            curve=self._curve,
            grid=self._grid,
            inv_step=self._inv_step,
            full_power=self._full_power,
            index=np.asarray(index, dtype=np.intp),
            tariffs=self.tariffs,
            tariff_index=self.tariff_index[indices],
        )
        return out

    def platform_watts_at(self, cpu_utilization: FloatArray, curve_base: FloatArray) -> FloatArray:
        """Platform (host) IT power at ``cpu_utilization`` in [0, 1] (no NaN) of the nodes whose
        ``curve_base`` (this table's column, or NodeState's) is given; the utilization's last axis runs
        over those nodes (e.g. shape (2, n): now and after)."""
        u = cpu_utilization
        if self._inv_step:
            # curve_base is a whole number, so floor(u·steps + base) = segment + base.
            j = (u * self._inv_step + curve_base).astype(np.intp)
        else:
            j = np.searchsorted(self._grid, u, side="right") - 1
            j += curve_base.astype(np.intp)
        curve = self._curve.ravel()
        out: FloatArray = curve.take(j + self._segments) * u
        out += curve.take(j)
        return out

    def platform_watts(self, cpu_utilization: FloatArray) -> FloatArray:
        """Platform (host) IT power of each node at ``cpu_utilization`` in [0, 1] (no NaN)."""
        return self.platform_watts_at(cpu_utilization, self.constants[:, _COST_COL["curve_base"]])

    def gpu_dynamic_fraction(self, gpu_utilization: FloatArray) -> FloatArray:
        """u**k per node for u in [0, 1]: all GPUs at a mean ``u`` draw idle_total + span_total × this."""
        return _power_law(gpu_utilization, self.gpu_exponent)

    def gpu_watts(self, gpu_utilization: FloatArray) -> FloatArray:
        """All GPUs of each node at its mean GPU utilization in [0, 1] (same as ``power.gpu_watts``)."""
        out: FloatArray = self.gpu_idle_watts_total + self.gpu_span_watts_total * self.gpu_dynamic_fraction(
            gpu_utilization
        )
        return out

    def it_power_watts(self, cpu_utilization: FloatArray, gpu_utilization: FloatArray) -> FloatArray:
        """IT power (no PUE) of each node with every GPU at the mean ``gpu_utilization`` (as
        ``NodePowerTable``); utilizations must already be in [0, 1] (no NaN)."""
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


def _power_law(u: FloatArray, exponent: FloatArray) -> FloatArray:
    """u**k elementwise for u in [0, 1] and a per-node k > 0."""
    # exp(k·log u) is twice as fast as a power with an array exponent; the floor keeps log finite at
    # u = 0, where the result underflows to exactly 0.
    out: FloatArray = np.exp(exponent * np.log(np.maximum(u, 1e-300)))
    return out


def tariff_price_at(tariff: Tariff, now: float) -> float:
    """``tariff.price_per_kwh_at(now)``, clamped into the series' domain (see ``prices_per_kwh_at``)."""
    f = tariff.prices
    if f.period is None:
        if now < float(f.breakpoints[0]):
            now = float(f.breakpoints[0])
        elif now >= f.end:
            return float(f.values[-1])
    return tariff.price_per_kwh_at(now)
