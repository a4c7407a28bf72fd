"""A LeptonJob's spec as typed values: parsed once at the edge, rejected early with the field named.

The API server already enforces the CRD (``lepton_operator.crd``); this parser re-checks what the
operator relies on, because objects admitted before a rule existed (or by a cluster without CEL) still
reach it. A ``SpecError`` is a permanent error: the job ends in phase Failed with reason InvalidSpec
and the message, which starts with the field path.

Live cost accounting reads ``JobSpec.budget``, ``cost_profile`` and ``expected_duration_seconds`` from
here too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lepton_operator.crd import (
    BUDGET_ACTIONS,
    DEFAULT_MASTER_PORT,
    DEFAULT_SCHEDULER_NAME,
    MAX_WORKERS,
)

GPU_RESOURCE = "nvidia.com/gpu"


class SpecError(ValueError):
    """An invalid LeptonJob spec; ``field`` is the path (``spec.workers``), the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Budget:
    max_cost: float | None
    max_energy_kwh: float | None
    action: str
    """notify, suspend or stop."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    workers: int
    template: Mapping[str, Any] = field(repr=False)
    """The pod template as written (read-only by convention; ``workers`` copies it per pod)."""
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    master_port: int = DEFAULT_MASTER_PORT
    max_failure_retry: int = 3
    max_job_failure_retry: int = 0
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    suspend: bool = False
    priority: int = 5
    budget: Budget | None = None
    cost_profile: str | None = None
    expected_duration_seconds: int | None = None


def _int(raw: Mapping[str, Any], name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"spec.{name}", f"must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise SpecError(f"spec.{name}", f"must be {bound}, not {value}")
    return value


def _number(raw: Mapping[str, Any], path: str, name: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{path}.{name}", f"must be a number, not {value!r}")
    if value < 0:
        raise SpecError(f"{path}.{name}", f"must not be negative, not {value}")
    return float(value)


def _check_containers(pod_spec: Mapping[str, Any]) -> None:
    containers = pod_spec.get("containers")
    path = "spec.template.spec.containers"
    if not isinstance(containers, list) or not containers:
        raise SpecError(path, "at least one container is required")
    seen: set[str] = set()
    for kind in ("initContainers", "containers"):
        for n, container in enumerate(pod_spec.get(kind) or []):
            where = f"spec.template.spec.{kind}[{n}]"
            if not isinstance(container, Mapping):
                raise SpecError(where, "must be an object")
            name = container.get("name")
            if not isinstance(name, str) or not name:
                raise SpecError(f"{where}.name", "is required")
            if name in seen:
                raise SpecError(f"{where}.name", f"duplicate container name {name!r}")
            seen.add(name)
            if not isinstance(container.get("image"), str) or not container.get("image"):
                raise SpecError(f"{where}.image", "is required")
            resources = container.get("resources") or {}
            requests = (resources.get("requests") or {}) if isinstance(resources, Mapping) else {}
            limits = (resources.get("limits") or {}) if isinstance(resources, Mapping) else {}
            if GPU_RESOURCE in requests and str(limits.get(GPU_RESOURCE)) != str(requests[GPU_RESOURCE]):
                raise SpecError(f"{where}.resources.limits", f"{GPU_RESOURCE} must be set and equal the request")


def parse_job_spec(raw: Any) -> JobSpec:
    """Typed spec, or ``SpecError`` naming the first offending field."""
    if not isinstance(raw, Mapping):
        raise SpecError("spec", "is required and must be an object")
    template = raw.get("template")
    if not isinstance(template, Mapping) or not isinstance(template.get("spec"), Mapping):
        raise SpecError("spec.template.spec", "a pod template with a spec is required")
    pod_spec = template["spec"]
    _check_containers(pod_spec)
    if pod_spec.get("restartPolicy", "Never") not in ("Never", "OnFailure"):
        raise SpecError(
            "spec.template.spec.restartPolicy", f"must be Never or OnFailure, not {pod_spec['restartPolicy']!r}"
        )
    for forbidden, why in (
        ("schedulerName", "set spec.schedulerName instead"),
        ("hostname", "set by the operator"),
        ("subdomain", "set by the operator"),
        ("schedulingGates", "managed by the operator"),
    ):
        if forbidden in pod_spec:
            raise SpecError(f"spec.template.spec.{forbidden}", why)
    scheduler = raw.get("schedulerName", DEFAULT_SCHEDULER_NAME)
    if not isinstance(scheduler, str) or not scheduler:
        raise SpecError("spec.schedulerName", "must be a non-empty string")
    suspend = raw.get("suspend", False)
    if not isinstance(suspend, bool):
        raise SpecError("spec.suspend", f"must be true or false, not {suspend!r}")
    budget = None
    raw_budget = raw.get("budget")
    if raw_budget is not None:
        if not isinstance(raw_budget, Mapping):
            raise SpecError("spec.budget", "must be an object")
        action = raw_budget.get("action", "notify")
        if action not in BUDGET_ACTIONS:
            raise SpecError("spec.budget.action", f"must be one of {', '.join(BUDGET_ACTIONS)}, not {action!r}")
        budget = Budget(
            _number(raw_budget, "spec.budget", "maxCost"), _number(raw_budget, "spec.budget", "maxEnergyKWh"), action
        )
        if budget.max_cost is None and budget.max_energy_kwh is None:
            raise SpecError("spec.budget", "set maxCost, maxEnergyKWh or both")
    cost_profile = raw.get("costProfile")
    if cost_profile is not None and (not isinstance(cost_profile, str) or not cost_profile):
        raise SpecError("spec.costProfile", "must be a profile name")
    workers = _int(raw, "workers", 1, 1, MAX_WORKERS)
    assert workers is not None
    return JobSpec(
        workers=workers,
        template=copy.deepcopy(dict(template)),
        scheduler_name=scheduler,
        master_port=_int(raw, "masterPort", DEFAULT_MASTER_PORT, 1, 65535) or DEFAULT_MASTER_PORT,
        max_failure_retry=_int(raw, "maxFailureRetry", 3, 0, 100) or 0,
        max_job_failure_retry=_int(raw, "maxJobFailureRetry", 0, 0, 100) or 0,
        active_deadline_seconds=_int(raw, "activeDeadlineSeconds", None, 1),
        ttl_seconds_after_finished=_int(raw, "ttlSecondsAfterFinished", None, 0),
        suspend=suspend,
        priority=_int(raw, "priority", 5, 1, 9) or 5,
        budget=budget,
        cost_profile=cost_profile,
        expected_duration_seconds=_int(raw, "expectedDurationSeconds", None, 1),
    )
