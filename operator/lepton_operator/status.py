"""The LeptonJob ``status`` as two writers share it: lifecycle (this operator) and live cost accounting.

Ownership: ``phase``, ``observedGeneration``, ``workers``, ``retries``, ``jobRestarts``, ``run``,
``workerAttempts``, ``startTime``, ``completionTime``, ``nodes``, ``nodeSummary`` and the conditions whose
type is a phase name belong to the lifecycle; ``cost``, ``energy`` and the ``BudgetExceeded`` and
``CostProfileApplied`` conditions to accounting. Both write with JSON merge patches to the ``status``
subresource. Because a merge patch replaces ``conditions`` as a whole, every writer of conditions reads
the current list, changes only its own types (``merge_conditions``) and sends the whole list with
``metadata.resourceVersion`` as a precondition (``conditions_patch``); a 409 means "read again and retry".
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lepton_operator.crd import PHASES

LIFECYCLE_CONDITIONS = frozenset(PHASES)
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Stopped"})


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""
    observed_generation: int | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }
        if self.observed_generation is not None:
            result["observedGeneration"] = self.observed_generation
        return result

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Condition:
        generation = raw.get("observedGeneration")
        return cls(
            str(raw.get("type", "")),
            str(raw.get("status", "Unknown")),
            str(raw.get("reason", "")),
            str(raw.get("message", "")),
            str(raw.get("lastTransitionTime", "")),
            generation if isinstance(generation, int) else None,
        )


def merge_conditions(
    existing: Iterable[Mapping[str, Any]], updates: Iterable[Condition], now: datetime.datetime
) -> list[dict[str, Any]]:
    """``existing`` with ``updates`` applied by type; lastTransitionTime moves only when status changes."""
    result = [dict(c) for c in existing]
    for update in updates:
        entry = update.as_dict()
        for n, current in enumerate(result):
            if current.get("type") == update.type:
                same_status = current.get("status") == update.status
                kept = current.get("lastTransitionTime") if same_status else None
                entry["lastTransitionTime"] = kept or rfc3339(now)
                result[n] = entry
                break
        else:
            entry["lastTransitionTime"] = rfc3339(now)
            result.append(entry)
    return result


def conditions_patch(body: Mapping[str, Any], updates: Iterable[Condition], now: datetime.datetime) -> dict[str, Any]:
    """A status merge patch for ``updates`` that is safe next to other condition writers (see module doc)."""
    status = body.get("status") or {}
    return {
        "metadata": {"resourceVersion": body.get("metadata", {}).get("resourceVersion")},
        "status": {"conditions": merge_conditions(status.get("conditions") or [], updates, now)},
    }


@dataclass(frozen=True, slots=True)
class LifecycleStatus:
    """The lifecycle-owned part of a LeptonJob's status, read tolerantly (absent fields get defaults)."""

    phase: str | None = None
    run: int = 0
    retries: int = 0
    job_restarts: int = 0
    worker_attempts: tuple[int, ...] = ()
    start_time: datetime.datetime | None = None
    completion_time: datetime.datetime | None = None
    conditions: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_status(cls, raw: Any) -> LifecycleStatus:
        raw = raw if isinstance(raw, Mapping) else {}

        def count(name: str) -> int:
            value = raw.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

        attempts = raw.get("workerAttempts")
        phase = raw.get("phase")
        return cls(
            phase=phase if phase in LIFECYCLE_CONDITIONS else None,
            run=count("run"),
            retries=count("retries"),
            job_restarts=count("jobRestarts"),
            worker_attempts=tuple(a if isinstance(a, int) and a >= 0 else 0 for a in attempts)
            if isinstance(attempts, list)
            else (),
            start_time=parse_time(raw.get("startTime")),
            completion_time=parse_time(raw.get("completionTime")),
            conditions=tuple(c for c in raw.get("conditions") or [] if isinstance(c, Mapping)),
        )

    def attempt(self, index: int) -> int:
        return self.worker_attempts[index] if index < len(self.worker_attempts) else 0


def lifecycle_fields(status: Mapping[str, Any]) -> dict[str, Any]:
    """The lifecycle-owned keys of a status dict (for diffing before a write)."""
    owned = (
        "phase",
        "observedGeneration",
        "workers",
        "retries",
        "jobRestarts",
        "run",
        "workerAttempts",
        "startTime",
        "completionTime",
        "nodes",
        "nodeSummary",
        "conditions",
    )
    return {k: status[k] for k in owned if k in status}


def node_summary(nodes: Sequence[str], limit: int = 3) -> str:
    """``a,b,c`` or ``a,b,c+2`` for the NODES column."""
    if len(nodes) <= limit:
        return ",".join(nodes)
    return ",".join(nodes[:limit]) + f"+{len(nodes) - limit}"
