"""The job lifecycle as a pure function: (job, its pods, now) -> ``Plan`` of what to do next.

No I/O here: ``lepton_operator.controller`` gathers the inputs (the job's live body, its pods from the
operator's pod informer), executes the plan over the API and calls ``plan`` again whenever anything changes.
Being level-triggered and deterministic is what makes the operator idempotent: a replayed event, a
restarted operator or a second look at the same state yields the same plan, and pods are named
``<job>-worker-<i>-r<run>a<attempt>`` so that creating one twice is a 409, never a duplicate.

State that must survive a crash is either in ``status`` or derivable from the pods themselves: the run
and each worker's attempt are in pod labels, and ``plan`` takes the larger of what the status recorded
and what the pods show, so a crash between creating a pod and recording it loses nothing.

Phases: Queued (pods created, held by the gang gate) -> Starting (gate released from all workers at
once) -> Running (all workers running) -> Succeeded (all workers succeeded). A failed worker is replaced
(Restarting) up to ``maxFailureRetry`` times per run; once a worker exhausts that, the whole gang
restarts as a new run up to ``maxJobFailureRetry`` times, then the job is Failed. ``suspend`` removes the
workers (Suspended) and resuming starts a new run; ``activeDeadlineSeconds`` fails the job; the
``lepton.ai/stop`` annotation stops it (Stopped); ``ttlSecondsAfterFinished`` deletes it after it
finished. Every transition a user would want to see yields an ``Event``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lepton_operator import naming
from lepton_operator.spec import JobSpec, SpecError, parse_job_spec
from lepton_operator.status import (
    TERMINAL_PHASES,
    Condition,
    LifecycleStatus,
    node_summary,
    rfc3339,
)
from lepton_operator.workers import JobRef, PodView


@dataclass(frozen=True, slots=True)
class JobView:
    ref: JobRef
    generation: int
    spec: JobSpec | None
    spec_error: SpecError | None
    status: LifecycleStatus
    stop_reason: str | None = None
    stop_message: str | None = None
    deleting: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> JobView:
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        spec: JobSpec | None = None
        error: SpecError | None = None
        try:
            spec = parse_job_spec(body.get("spec"))
        except SpecError as exc:
            error = exc
        generation = meta.get("generation")
        return cls(
            ref=JobRef(str(meta.get("namespace", "")), str(meta.get("name", "")), str(meta.get("uid", ""))),
            generation=generation if isinstance(generation, int) else 0,
            spec=spec,
            spec_error=error,
            status=LifecycleStatus.from_status(body.get("status")),
            stop_reason=annotations.get(naming.ANNOTATION_STOP) or None,
            stop_message=annotations.get(naming.ANNOTATION_STOP_MESSAGE) or None,
            deleting=bool(meta.get("deletionTimestamp")),
        )


@dataclass(frozen=True, slots=True)
class NewPod:
    index: int
    run: int
    attempt: int
    gated: bool


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclass
class Plan:
    create: list[NewPod] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    """Pods whose gang gate to remove (all workers of a run at once)."""
    delete: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    """Lifecycle-owned status fields to write (``None`` values remove a field)."""
    conditions: list[Condition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after_seconds: float | None = None
    """Look again after this long even if nothing changes (deadlines, TTL)."""
    delete_job: bool = False
    finished: bool = False
    """Nothing will ever be left to do for this job (the caller may stop watching it)."""


_PHASE_REASONS = {
    "Queued": "Created",
    "Starting": "GangReleased",
    "Running": "AllWorkersRunning",
    "Succeeded": "AllWorkersSucceeded",
    "Suspended": "Suspended",
}


def _transition(plan: Plan, old_phase: str | None, new_phase: str, reason: str, message: str) -> None:
    """Record a phase change: the new phase's condition True, the old one's False, with the reason."""
    plan.fields["phase"] = new_phase
    if old_phase == new_phase:
        return
    plan.conditions.append(Condition(new_phase, "True", reason, message))
    if old_phase is not None and not any(c.type == old_phase for c in plan.conditions):
        plan.conditions.append(Condition(old_phase, "False", reason, message))


def _counts(views: Mapping[int, PodView], workers: int) -> dict[str, Any]:
    active = sum(1 for p in views.values() if p.active)
    ready = sum(1 for p in views.values() if p.ready and p.active)
    succeeded = sum(1 for p in views.values() if p.phase == "Succeeded")
    failed = sum(1 for p in views.values() if p.phase == "Failed")
    return {"active": active, "ready": ready, "succeeded": succeeded, "failed": failed, "summary": f"{ready}/{workers}"}


def _nodes(views: Mapping[int, PodView]) -> list[str]:
    return sorted({p.node for p in views.values() if p.node})


def _latest(pods: Sequence[PodView], run: int) -> dict[int, PodView]:
    latest: dict[int, PodView] = {}
    for pod in pods:
        if pod.run == run and (pod.index not in latest or pod.attempt > latest[pod.index].attempt):
            latest[pod.index] = pod
    return latest


def _ttl(plan: Plan, spec: JobSpec | None, completed: datetime.datetime, now: datetime.datetime) -> None:
    ttl = spec.ttl_seconds_after_finished if spec is not None else None
    if ttl is None:
        plan.finished = True
        return
    remaining = (completed - now).total_seconds() + ttl
    if remaining <= 0:
        plan.delete_job = True
        plan.finished = True
        plan.events.append(Event("Normal", "Expired", f"ttlSecondsAfterFinished={ttl} passed: deleting the job"))
    else:
        plan.requeue_after_seconds = remaining


def _finish(
    job: JobView,
    ours: Sequence[PodView],
    run: int,
    now: datetime.datetime,
    *,
    phase: str,
    reason: str,
    message: str,
    event_type: str,
) -> Plan:
    plan = Plan(delete=[p.name for p in ours if p.active])
    workers = job.spec.workers if job.spec is not None else len(_latest(ours, run))
    latest = _latest(ours, run)
    settled = {i: (dataclasses.replace(p, ready=False, deleting=True) if p.active else p) for i, p in latest.items()}
    _transition(plan, job.status.phase, phase, reason, message)
    plan.fields.update(
        {"completionTime": rfc3339(now), "observedGeneration": job.generation, "workers": _counts(settled, workers)}
    )
    plan.events.append(Event(event_type, reason, message))
    _ttl(plan, job.spec, now, now)
    return plan


def fail(job: JobView, pods: Sequence[PodView], now: datetime.datetime, reason: str, message: str) -> Plan:
    """End the job in phase Failed for a reason found outside ``plan`` (e.g. the API rejected a pod)."""
    ours = [p for p in pods if p.owner_uid == job.ref.uid]
    run = max(job.status.run, max((p.run for p in ours), default=0))
    return _finish(job, ours, run, now, phase="Failed", reason=reason, message=message, event_type="Warning")


def _after_finish(job: JobView, ours: Sequence[PodView], now: datetime.datetime) -> Plan:
    plan = Plan()
    if job.status.phase != "Succeeded":
        plan.delete = [p.name for p in ours if p.active]  # a worker that outlived its failed job burns money
    _ttl(plan, job.spec, job.status.completion_time or now, now)
    return plan


def _suspend(job: JobView, ours: Sequence[PodView], run: int) -> Plan:
    plan = Plan(delete=[p.name for p in ours if p.active])
    if job.status.phase == "Suspended":
        return plan
    message = f"spec.suspend is true: removed {len(plan.delete)} running workers; set it to false to resume"
    _transition(plan, job.status.phase, "Suspended", "Suspended", message)
    # Resuming starts a fresh run, so new pods never collide with terminating ones.
    plan.fields.update(
        {
            "run": run + 1 if ours else run,
            "workerAttempts": [],
            "startTime": None,
            "observedGeneration": job.generation,
            "workers": {
                "active": 0,
                "ready": 0,
                "succeeded": 0,
                "failed": 0,
                "summary": f"0/{job.spec.workers if job.spec else 0}",
            },
            "nodes": [],
            "nodeSummary": "",
        }
    )
    plan.events.append(Event("Normal", "Suspended", message))
    return plan


def plan(job: JobView, pods: Sequence[PodView], now: datetime.datetime) -> Plan:
    """What to do next for ``job`` given all pods labelled with its name (foreign owners are ignored)."""
    if job.deleting:
        return Plan(finished=True)  # garbage collection removes the pods and the service with the job
    st = job.status
    ours = [p for p in pods if p.owner_uid == job.ref.uid]
    run = max(st.run, max((p.run for p in ours), default=0))
    if st.phase in TERMINAL_PHASES:
        return _after_finish(job, ours, now)
    if job.spec is None:
        return _finish(
            job, ours, run, now, phase="Failed", reason="InvalidSpec", message=str(job.spec_error), event_type="Warning"
        )
    spec = job.spec
    if job.stop_reason:
        message = job.stop_message or f"stop requested with the {naming.ANNOTATION_STOP} annotation"
        return _finish(
            job, ours, run, now, phase="Stopped", reason=_reason(job.stop_reason), message=message, event_type="Normal"
        )
    if spec.suspend:
        return _suspend(job, ours, run)

    result = Plan()
    resumed = st.phase == "Suspended"
    if resumed:
        result.conditions.append(Condition("Suspended", "False", "Resumed", "spec.suspend is false"))
        result.events.append(Event("Normal", "Resumed", f"spec.suspend is false: starting run {run}"))

    start_time = None if resumed else st.start_time
    if spec.active_deadline_seconds is not None and start_time is not None:
        elapsed = (now - start_time).total_seconds()
        if elapsed >= spec.active_deadline_seconds:
            message = (
                f"activeDeadlineSeconds={spec.active_deadline_seconds} passed since the workers started at "
                f"{rfc3339(start_time)}"
            )
            return _finish(
                job, ours, run, now, phase="Failed", reason="DeadlineExceeded", message=message, event_type="Warning"
            )
        result.requeue_after_seconds = spec.active_deadline_seconds - elapsed

    workers = spec.workers
    current = [p for p in ours if p.run == run and p.index < workers]
    result.delete = [p.name for p in ours if p.active and (p.run < run or p.index >= workers)]
    recorded = [st.attempt(i) if st.run == run else 0 for i in range(workers)]
    latest = _latest(current, run)
    attempts = [max(recorded[i], latest[i].attempt if i in latest else 0) for i in range(workers)]
    retries = st.retries + sum(a - r for a, r in zip(attempts, recorded, strict=True))
    job_restarts = st.job_restarts + max(0, run - st.run)
    admitted = any(not p.gated for p in current)

    after: dict[int, PodView] = {}
    failed: PodView | None = None
    replaced = 0
    for i in range(workers):
        pod = latest.get(i) if i in latest and latest[i].attempt == attempts[i] else None
        if pod is not None and (pod.phase == "Failed" or (pod.deleting and not pod.terminal)):
            if attempts[i] < spec.max_failure_retry:
                attempts[i] += 1
                replaced += 1
                result.events.append(
                    Event(
                        "Warning",
                        "WorkerFailed",
                        f"worker {i} ({pod.name}) {pod.describe_failure()}; replacing it "
                        f"(retry {attempts[i]} of {spec.max_failure_retry})",
                    )
                )
                pod = None
            else:
                failed = failed or pod
                after[i] = pod
                continue
        if pod is None:
            name = naming.worker_pod_name(job.ref.name, i, run, attempts[i])
            result.create.append(NewPod(i, run, attempts[i], gated=not admitted))
            pod = PodView(name, job.ref.uid, i, run, attempts[i], "Pending", gated=not admitted)
        after[i] = pod
    retries += replaced

    common = {"observedGeneration": job.generation, "retries": retries, "jobRestarts": job_restarts}
    if failed is not None:
        description = (
            f"worker {failed.index} ({failed.name}) {failed.describe_failure()} after "
            f"{spec.max_failure_retry} retries (maxFailureRetry)"
        )
        if job_restarts < spec.max_job_failure_retry:
            new_run = run + 1
            restart = Plan(
                create=[NewPod(i, new_run, 0, gated=True) for i in range(workers)],
                delete=sorted(set(result.delete) | {p.name for p in current if p.active}),
                conditions=list(result.conditions),
                events=[
                    *result.events,
                    Event(
                        "Warning",
                        "JobRestarted",
                        f"{description}; restarting all {workers} workers as run {new_run} "
                        f"(restart {job_restarts + 1} of {spec.max_job_failure_retry})",
                    ),
                ],
            )
            _transition(restart, st.phase, "Restarting", "JobRestarted", description)
            restart.fields.update(common)
            restart.fields.update(
                {
                    "run": new_run,
                    "jobRestarts": job_restarts + 1,
                    "workerAttempts": [0] * workers,
                    "workers": {"active": workers, "ready": 0, "succeeded": 0, "failed": 0, "summary": f"0/{workers}"},
                }
            )
            return restart
        message = (
            f"{description}, and the job was restarted {job_restarts} times "
            f"(maxJobFailureRetry={spec.max_job_failure_retry})"
        )
        final = _finish(
            job, ours, run, now, phase="Failed", reason="BackoffLimitExceeded", message=message, event_type="Warning"
        )
        final.fields.update({**common, "run": run, "workerAttempts": attempts})
        return final

    # All-or-nothing start: the gate comes off every worker of a run together, once all of them exist.
    released_now = False
    if not admitted:
        if not result.create and all(p.gated for p in after.values()):
            result.release = [after[i].name for i in range(workers)]
            released_now = True
    else:
        result.release = [p.name for p in after.values() if p.gated]  # finish a release a crash interrupted
    if result.release:
        after = {i: (_ungated(p) if p.name in result.release else p) for i, p in after.items()}
    if released_now:
        result.events.append(
            Event("Normal", "Started", f"all {workers} workers exist: released them together to {spec.scheduler_name}")
        )
        if start_time is None:
            start_time = now
            if spec.active_deadline_seconds is not None:
                result.requeue_after_seconds = float(spec.active_deadline_seconds)

    nodes = _nodes(after)
    result.fields.update(common)
    result.fields.update(
        {
            "run": run,
            "workerAttempts": attempts,
            "workers": _counts(after, workers),
            "nodes": nodes,
            "nodeSummary": node_summary(nodes),
            "startTime": rfc3339(start_time) if start_time else None,
        }
    )
    if all(p.phase == "Succeeded" for p in after.values()):
        message = f"all {workers} workers succeeded"
        _transition(result, st.phase, "Succeeded", "AllWorkersSucceeded", message)
        result.fields["completionTime"] = rfc3339(now)
        result.events.append(Event("Normal", "Succeeded", message))
        result.requeue_after_seconds = None
        _ttl(result, spec, now, now)
        return result

    if replaced:
        phase, reason, message = "Restarting", "WorkerFailed", f"replacing {replaced} failed workers"
    elif not admitted and not released_now:
        phase, reason, message = (
            "Queued",
            "Created",
            (f"waiting for all {workers} workers to exist before starting them together"),
        )
    elif all(p.phase in ("Running", "Succeeded") for p in after.values()):
        # Workers that finished early do not take a running gang back to Starting.
        phase, reason = "Running", "AllWorkersRunning"
        message = f"all {workers} workers running on {node_summary(nodes) or 'their nodes'}"
    elif st.phase == "Restarting":
        phase, reason, message = "Restarting", "WorkerFailed", "waiting for replacement workers to run"
    else:
        phase, reason, message = "Starting", "GangReleased", f"waiting for all {workers} workers to run"
    if phase != st.phase:
        _transition(result, st.phase, phase, reason, message)
        if phase == "Running":
            result.events.append(Event("Normal", "Running", message))
        elif phase == "Queued" and st.phase is None:
            result.events.append(
                Event("Normal", "Queued", f"creating {workers} workers held by the {naming.GANG_GATE} scheduling gate")
            )
    else:
        result.fields["phase"] = phase
    return result


def _ungated(pod: PodView) -> PodView:
    return dataclasses.replace(pod, gated=False)


def _reason(text: str) -> str:
    """A condition reason must be CamelCase-ish; keep what a user wrote when it is, else a generic one."""
    cleaned = "".join(ch for ch in text if ch.isalnum())
    return cleaned if cleaned and cleaned[0].isalpha() else "StopRequested"
