"""LeptonJob ``status.cost`` / ``status.energy`` <-> ``Ledger``: the one place that knows the layout.

The CRD (``lepton_operator.crd``) declares the fields people read — ``hardware``, ``energy``,
``operations``, ``total``, ``currency``, ``perHour``, ``toComplete``, ``observedAt``, ``estimated``;
``joules``, ``kWh``, ``averageWatts`` — as floats for ``kubectl get``. The exact state lives in
``status.cost.history`` (a free-form object owned by accounting)::

    history:
      version: 1
      levelsSeconds: [60, 3600, 86400]     # bucket widths, finest first
      capacities: [60, 48, 62]
      total: [hardware, energy, operations, millijoules]   # integers: money in 1e-9 currency units
      activeMs: 123000                     # accounted time with a pod running
      estimatedMs: 0                       # accounted time from the model on requests
      windows: 41                          # accounted windows so far
      compressionRatio: 13.7               # windows per bucket (for people)
      buckets: [[level, slot, startMs, endMs, hardware, energy, operations, millijoules, estimated], ...]

``ledger_from_status`` reads ``history.total`` when present (exact), else the floats (a status written
by hand or by an older version). The watermark is ``observedAt`` (RFC 3339, millisecond resolution).
Neighbours: ``lepton_core.accounting.ledger`` (the ledger), ``writer`` (sends what ``status_patch`` builds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lepton_core.accounting.amounts import Amounts
from lepton_core.accounting.history import History, HistoryPolicy
from lepton_core.accounting.ledger import Ledger
from lepton_core.units import JOULES_PER_KWH
from lepton_operator.accounting.inventory import format_time, parse_time

HISTORY_VERSION = 1


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer")
    return value


def ledger_from_status(status: Mapping[str, Any], policy: HistoryPolicy) -> Ledger:
    """The job's ledger as stored; a job never accounted gets an empty one. ValueError names the field."""
    cost = status.get("cost")
    if not isinstance(cost, Mapping) or "observedAt" not in cost:
        return Ledger(history=History(policy))
    observed_ms = round(parse_time(cost["observedAt"], "status.cost.observedAt") * 1000.0)
    hist = cost.get("history")
    if isinstance(hist, Mapping) and hist.get("version") == HISTORY_VERSION and "total" in hist:
        total_raw = hist["total"]
        if not isinstance(total_raw, list):
            raise ValueError("status.cost.history.total: expected a list of four integers")
        amounts = Amounts.from_list(total_raw, "status.cost.history.total")
        buckets = hist.get("buckets") or []
        if not isinstance(buckets, list):
            raise ValueError("status.cost.history.buckets: expected a list")
        history = History.from_lists(buckets, policy, _int(hist.get("windows", 0), "status.cost.history.windows"))
        return Ledger(
            amounts=amounts,
            observed_at_ms=observed_ms,
            active_ms=_int(hist.get("activeMs", 0), "status.cost.history.activeMs"),
            estimated_ms=_int(hist.get("estimatedMs", 0), "status.cost.history.estimatedMs"),
            estimated=bool(cost.get("estimated", False)),
            history=history,
        )
    # No exact state: rebuild it from the floats people see (to the nano-unit).
    energy = status.get("energy") if isinstance(status.get("energy"), Mapping) else {}
    floats: dict[str, float] = {}
    for key, where, block in (
        ("hardware", "status.cost.hardware", cost),
        ("energy", "status.cost.energy", cost),
        ("operations", "status.cost.operations", cost),
        ("joules", "status.energy.joules", energy),
    ):
        value = block.get(key, 0.0) if isinstance(block, Mapping) else 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number")
        floats[key] = float(value)
    amounts = Amounts.of(floats["hardware"], floats["energy"], floats["operations"], floats["joules"])
    history = History(policy)
    history.add(observed_ms, observed_ms, amounts)  # one bucket holding the past, so Σ history = total
    return Ledger(
        amounts=amounts,
        observed_at_ms=observed_ms,
        estimated=bool(cost.get("estimated", False)),
        history=history,
    )


def status_patch(
    ledger: Ledger,
    *,
    currency: str,
    per_hour: float,
    to_complete: float | None,
) -> dict[str, Any]:
    """The ``status.cost`` and ``status.energy`` blocks for a ledger (a merge patch fragment)."""
    if ledger.observed_at_ms is None:
        raise ValueError("a ledger with no accounted window has nothing to write")
    money = ledger.amounts.cost()
    history = ledger.history
    policy = history.policy
    cost: dict[str, Any] = {
        # The CRD keeps people's figures non-negative; a negative energy price (markets have them) can
        # only lower the exact total in history.total, never make the status invalid.
        "hardware": max(0.0, money.hardware),
        "energy": max(0.0, money.energy),
        "operations": max(0.0, money.operations),
        "total": max(0.0, money.total),
        "currency": currency,
        "perHour": max(0.0, per_hour),
        "observedAt": format_time(ledger.observed_at_ms / 1000.0),
        "estimated": ledger.estimated,
        "history": {
            "version": HISTORY_VERSION,
            "levelsSeconds": list(policy.level_seconds),
            "capacities": list(policy.capacities),
            "total": ledger.amounts.as_list(),
            "activeMs": ledger.active_ms,
            "estimatedMs": ledger.estimated_ms,
            "windows": history.windows,
            "compressionRatio": round(history.compression_ratio, 3),
            "buckets": history.as_lists(),
        },
    }
    cost["toComplete"] = None if to_complete is None else max(0.0, to_complete)  # null deletes a stale estimate
    joules = max(0.0, ledger.amounts.joules)
    return {
        "cost": cost,
        "energy": {"joules": joules, "kWh": joules / JOULES_PER_KWH, "averageWatts": max(0.0, ledger.average_watts)},
    }
