"""Exact money and energy amounts: integers of fixed-point units, so sums never depend on their order.

A job's ledger is a sum of thousands of small increments, and its history merges those increments into
ever coarser buckets. With floats the two sums would differ in the last bits (addition is not
associative); with integers they are equal, always, which is what "totals preserved exactly" means.

Units: money in nano-units of the currency (1e-9; int64 holds 9.2 billion currency units) and energy in
millijoules (int64 holds 2.5 GWh). Rounding one increment to those units moves it by at most half a
unit, far below any tolerance anyone accounts to. Pure; neighbours: ``history`` and ``ledger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lepton_core.models.cost import CostBreakdown

NANO_PER_UNIT = 1_000_000_000
"""Fixed-point money units per currency unit."""
MILLIJOULES_PER_JOULE = 1000


def quantize_money(amount: NDArray[np.float64]) -> NDArray[np.int64]:
    """Currency units -> nano-units, rounded half to even."""
    out: NDArray[np.int64] = np.rint(np.asarray(amount, dtype=np.float64) * NANO_PER_UNIT).astype(np.int64)
    return out


def quantize_energy(joules: NDArray[np.float64]) -> NDArray[np.int64]:
    """Joules -> millijoules, rounded half to even."""
    out: NDArray[np.int64] = np.rint(np.asarray(joules, dtype=np.float64) * MILLIJOULES_PER_JOULE).astype(np.int64)
    return out


@dataclass(frozen=True, slots=True)
class Amounts:
    """Hardware, energy and operations money (nano-units) and energy (millijoules)."""

    hardware: int = 0
    energy: int = 0
    operations: int = 0
    millijoules: int = 0

    @classmethod
    def of(cls, hardware: float = 0.0, energy: float = 0.0, operations: float = 0.0, joules: float = 0.0) -> Amounts:
        """From floats in currency units and joules."""
        return cls(
            round(hardware * NANO_PER_UNIT),
            round(energy * NANO_PER_UNIT),
            round(operations * NANO_PER_UNIT),
            round(joules * MILLIJOULES_PER_JOULE),
        )

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.hardware + other.hardware,
            self.energy + other.energy,
            self.operations + other.operations,
            self.millijoules + other.millijoules,
        )

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.hardware - other.hardware,
            self.energy - other.energy,
            self.operations - other.operations,
            self.millijoules - other.millijoules,
        )

    def scaled(self, fraction: float) -> Amounts:
        """A fraction of these amounts (pro-rata part of a window), rounded per component."""
        return Amounts(
            round(self.hardware * fraction),
            round(self.energy * fraction),
            round(self.operations * fraction),
            round(self.millijoules * fraction),
        )

    @property
    def total(self) -> int:
        """hardware + energy + operations, nano-units."""
        return self.hardware + self.energy + self.operations

    @property
    def joules(self) -> float:
        return self.millijoules / MILLIJOULES_PER_JOULE

    @property
    def is_zero(self) -> bool:
        return not (self.hardware or self.energy or self.operations or self.millijoules)

    def cost(self) -> CostBreakdown:
        """The money as floats in currency units (for people, status fields and metrics)."""
        return CostBreakdown(
            self.hardware / NANO_PER_UNIT, self.energy / NANO_PER_UNIT, self.operations / NANO_PER_UNIT
        )

    def as_list(self) -> list[int]:
        return [self.hardware, self.energy, self.operations, self.millijoules]

    @classmethod
    def from_list(cls, values: Sequence[object], where: str = "amounts") -> Amounts:
        """Inverse of ``as_list``; rejects anything but four integers, naming ``where``."""
        ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        if len(values) != 4 or len(ints) != 4:
            raise ValueError(f"{where}: expected four integers [hardware, energy, operations, millijoules]")
        return cls(*ints)


ZERO = Amounts()
