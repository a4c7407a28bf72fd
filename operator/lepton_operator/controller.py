"""Executes the lifecycle for each LeptonJob: gather inputs, ``lifecycle.plan``, act over the API, repeat.

One kopf daemon per LeptonJob runs ``Controller.run_job``: it plans from the job's live body (kopf keeps
it fresh) and the job's worker pods (``informer.PodInformer``, fully listed before any daemon plans, so a
restarted operator sees every existing pod before it decides anything), executes the plan, and
sleeps until something changes (a pod or job event pokes it), a deadline or TTL falls due, or the resync
interval passes. Daemons stop while kopf's peering pauses the operator (high availability) and when the
job is deleted.

Between a write and the watch event that reflects it, the pod cache and the live body lag behind. Two small
memories bridge that gap so the next plan is not made from stale data: ``Expectations`` (pods created,
released or deleted but not yet seen so) and the last status this daemon wrote (used while the live body
still shows the resourceVersion that write replaced).

Errors: temporary ones (``KubeError.temporary``: 5xx, 429, stale resourceVersion, network) back off
exponentially and retry; a pod the API server rejects as invalid is permanent (phase Failed, reason
PodTemplateRejected). Events are best effort and never fail a step.

Neighbours: ``lifecycle`` (decisions), ``workers`` (manifests), ``kube`` (HTTP), ``app`` (kopf wiring).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lepton_operator import lifecycle, naming
from lepton_operator.crd import API_VERSION, GROUP, KIND, PLURAL, VERSION
from lepton_operator.kube import (
    STRATEGIC_MERGE_PATCH,
    AlreadyExists,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    group_path,
)
from lepton_operator.kube import core_path as core
from lepton_operator.spec import JobSpec
from lepton_operator.status import lifecycle_fields, merge_conditions, rfc3339
from lepton_operator.workers import JobRef, PodView, headless_service, worker_pod

logger = logging.getLogger(__name__)

JobKey = tuple[str, str]
Clock = Callable[[], datetime.datetime]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ControllerSettings:
    resync_seconds: float = 60.0
    """Re-plan an unfinished job at least this often, even when nothing seems to change."""
    debounce_seconds: float = 0.05
    """After a poke, wait this long for more events so a burst of pod events costs one reconcile."""
    expectation_seconds: float = 30.0
    """How long a write the watch has not reflected yet is assumed to have happened."""
    backoff_seconds: tuple[float, float] = (0.5, 30.0)
    """First and longest delay after a temporary error (doubling, with jitter)."""
    priority_class_ttl_seconds: float = 60.0
    """How long the existence of a PriorityClass is cached."""
    component: str = naming.MANAGER
    """Source of the Kubernetes events the operator posts."""
    identity: str = ""
    """This replica's identity (reportingInstance of events)."""


class Expectations:
    """Writes this daemon made that the pod cache may not show yet."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._created: dict[str, tuple[PodView, float]] = {}
        self._released: dict[str, float] = {}
        self._deleted: dict[str, float] = {}

    def created(self, view: PodView) -> None:
        self._created[view.name] = (view, time.monotonic() + self._ttl)

    def released(self, name: str) -> None:
        self._released[name] = time.monotonic() + self._ttl

    def deleted(self, name: str) -> None:
        self._deleted[name] = time.monotonic() + self._ttl

    def merge(self, observed: Iterable[PodView]) -> list[PodView]:
        now = time.monotonic()
        result: list[PodView] = []
        seen: set[str] = set()
        for seen_pod in observed:
            pod = seen_pod
            seen.add(pod.name)
            self._created.pop(pod.name, None)
            if pod.name in self._released:
                if pod.gated and self._released[pod.name] > now:
                    pod = dataclasses.replace(pod, gated=False)
                else:
                    del self._released[pod.name]
            if pod.name in self._deleted:
                if not pod.deleting and self._deleted[pod.name] > now:
                    pod = dataclasses.replace(pod, deleting=True)
                elif pod.deleting:
                    del self._deleted[pod.name]
            result.append(pod)
        for name, (view, deadline) in list(self._created.items()):
            if deadline <= now:
                del self._created[name]
            else:
                result.append(view)
        for name in [n for n in self._deleted if n not in seen]:
            del self._deleted[name]  # gone for good
        return result


class Backoff:
    def __init__(self, first: float, longest: float) -> None:
        self.first, self.longest = first, longest
        self.failures = 0

    def next(self) -> float:
        delay = min(self.longest, self.first * 2.0**self.failures)
        self.failures += 1
        return float(delay * random.uniform(0.8, 1.2))

    def reset(self) -> None:
        self.failures = 0


class Controller:
    """State shared by all job daemons of one operator process."""

    def __init__(self, kube: KubeClient, settings: ControllerSettings, clock: Clock = utcnow) -> None:
        self.kube = kube
        self.settings = settings
        self.clock = clock
        self._triggers: dict[JobKey, asyncio.Event] = {}
        self._priority_classes: dict[str, tuple[bool | None, float]] = {}

    def poke(self, namespace: str, name: str) -> None:
        """Something about this job changed: wake its daemon now (no-op when it has none)."""
        trigger = self._triggers.get((namespace, name))
        if trigger is not None:
            trigger.set()

    async def run_job(self, body: Mapping[str, Any], stopped: Any, pods: Callable[[], Iterable[PodView]]) -> None:
        """The daemon of one job: plan, act, sleep; until the job is deleted or the operator pauses or stops."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        trigger = asyncio.Event()
        self._triggers[key] = trigger
        worker = JobWorker(self, body, pods)
        try:
            while not stopped:
                trigger.clear()
                delay = await worker.step()
                await _wait_any(trigger, stopped, delay)
                if trigger.is_set() and not stopped:
                    await asyncio.sleep(self.settings.debounce_seconds)
        finally:
            if self._triggers.get(key) is trigger:
                del self._triggers[key]

    async def priority_class(self, priority: int) -> bool | None:
        """Does the PriorityClass for ``priority`` exist? (None: unknown right now.)"""
        name = naming.priority_class_name(priority)
        cached = self._priority_classes.get(name)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        exists: bool | None
        try:
            await self.kube.get(group_path("scheduling.k8s.io", "v1", "priorityclasses", name=name))
            exists = True
        except NotFound:
            exists = False
        except KubeError:
            exists = None
        self._priority_classes[name] = (exists, time.monotonic() + self.settings.priority_class_ttl_seconds)
        return exists

    async def record(self, job: JobRef, event: lifecycle.Event) -> None:
        now = rfc3339(self.clock())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{job.name}.", "namespace": job.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": job.name,
                "namespace": job.namespace,
                "uid": job.uid,
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": self.settings.component},
            "reportingComponent": f"{GROUP}/operator",
            "reportingInstance": self.settings.identity or self.settings.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(core("events", job.namespace), body)
        except KubeError as exc:
            logger.warning("could not post event %s for %s/%s: %s", event.reason, job.namespace, job.name, exc)


async def _wait_any(trigger: asyncio.Event, stopped: Any, timeout: float | None) -> None:
    waiters = [asyncio.ensure_future(trigger.wait())]
    if hasattr(stopped, "wait"):
        waiters.append(asyncio.ensure_future(stopped.wait()))
    try:
        await asyncio.wait(
            waiters, timeout=None if timeout is None else max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()


class JobWorker:
    """Plans and acts for one job; lives as long as the job's daemon."""

    def __init__(self, controller: Controller, body: Mapping[str, Any], pods: Callable[[], Iterable[PodView]]) -> None:
        self.controller = controller
        self.kube = controller.kube
        self.body = body
        self.pods = pods
        self.expectations = Expectations(controller.settings.expectation_seconds)
        self.backoff = Backoff(*controller.settings.backoff_seconds)
        self.service_ready = False
        self.warned_priority = False
        self._written: tuple[str, Mapping[str, Any]] | None = None
        """(resourceVersion our last status write replaced, the body it returned)."""

    def _effective_body(self) -> Mapping[str, Any]:
        if self._written is not None:
            replaced, written = self._written
            if (self.body.get("metadata") or {}).get("resourceVersion") == replaced:
                return written  # the watch has not delivered our own write yet
            self._written = None
        return self.body

    async def step(self) -> float | None:
        """One reconcile. Returns how long to sleep before the next (None: until something changes)."""
        body = self._effective_body()
        job = lifecycle.JobView.from_body(body)
        pods = self.expectations.merge(self.pods())
        plan = lifecycle.plan(job, pods, self.controller.clock())
        try:
            await self._execute(job, body, plan, pods)
        except KubeError as exc:
            if exc.temporary or exc.status in (401, 403):
                delay = self.backoff.next()
                logger.warning("job %s/%s: %s; retrying in %.1fs", job.ref.namespace, job.ref.name, exc, delay)
                return delay
            raise
        self.backoff.reset()
        if plan.finished and plan.requeue_after_seconds is None:
            return None
        return min(
            plan.requeue_after_seconds or self.controller.settings.resync_seconds,
            self.controller.settings.resync_seconds,
        )

    async def _execute(
        self, job: lifecycle.JobView, body: Mapping[str, Any], plan: lifecycle.Plan, pods: list[PodView]
    ) -> None:
        ref = job.ref
        if plan.create and job.spec is not None:
            try:
                await self._create_pods(job, job.spec, plan.create)
            except Invalid as exc:
                # The API server refused the pod built from the template: no retry can fix that.
                plan = lifecycle.fail(
                    job,
                    pods,
                    self.controller.clock(),
                    "PodTemplateRejected",
                    f"the API server rejected a worker pod: {exc.message}",
                )
        if plan.release:
            await asyncio.gather(*(self._release(ref, name) for name in plan.release))
        await self._write_status(ref, body, plan)
        if plan.delete:
            await asyncio.gather(*(self._delete_pod(ref, name) for name in plan.delete))
        for event in plan.events:
            await self.controller.record(ref, event)
        if plan.delete_job:
            with contextlib.suppress(NotFound):
                await self.kube.delete(group_path(GROUP, VERSION, PLURAL, ref.namespace, ref.name), uid=ref.uid)

    async def _create_pods(self, job: lifecycle.JobView, spec: JobSpec, pods: list[lifecycle.NewPod]) -> None:
        ref = job.ref
        if not self.service_ready:
            await self._ensure_service(ref, spec)
        priority_class: str | None = None
        exists = await self.controller.priority_class(spec.priority)
        if exists:
            priority_class = naming.priority_class_name(spec.priority)
        elif exists is False and not self.warned_priority and spec.priority != 5:
            self.warned_priority = True
            await self.controller.record(
                ref,
                lifecycle.Event(
                    "Normal",
                    "PriorityClassNotFound",
                    f"spec.priority={spec.priority} but PriorityClass {naming.priority_class_name(spec.priority)} does "
                    "not exist: workers get the cluster's default priority",
                ),
            )
        results = await asyncio.gather(
            *(self._create_pod(ref, spec, new, priority_class) for new in pods), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _create_pod(self, ref: JobRef, spec: JobSpec, new: lifecycle.NewPod, priority_class: str | None) -> None:
        manifest = worker_pod(
            ref, spec, new.index, new.run, new.attempt, gated=new.gated, priority_class=priority_class
        )
        name = manifest["metadata"]["name"]
        try:
            created = await self.kube.create(core("pods", ref.namespace), manifest)
        except AlreadyExists:
            # Idempotency: the name is deterministic, so it is ours from an earlier try, or a leftover.
            created = await self.kube.get(core("pods", ref.namespace, name))
            owner = PodView.from_pod(created)
            if owner is None or owner.owner_uid != ref.uid:
                raise KubeError(
                    409,
                    "Conflict",
                    f"pod {name} exists and belongs to another owner; waiting for it to be garbage-collected",
                ) from None
        view = PodView.from_pod(created)
        if view is not None:
            self.expectations.created(view)

    async def _ensure_service(self, ref: JobRef, spec: JobSpec) -> None:
        manifest = headless_service(ref, spec)
        try:
            await self.kube.create(core("services", ref.namespace), manifest)
        except AlreadyExists:
            existing = await self.kube.get(core("services", ref.namespace, manifest["metadata"]["name"]))
            owners = [r.get("uid") for r in existing.get("metadata", {}).get("ownerReferences") or []]
            if ref.uid not in owners:
                await self.controller.record(
                    ref,
                    lifecycle.Event(
                        "Warning",
                        "ServiceNameTaken",
                        f"service {manifest['metadata']['name']} exists and is not this job's: workers cannot resolve "
                        "each other until it is removed",
                    ),
                )
                raise KubeError(409, "Conflict", "the job's service name is taken") from None
        self.service_ready = True

    async def _release(self, ref: JobRef, name: str) -> None:
        patch = {"spec": {"schedulingGates": [{"name": naming.GANG_GATE, "$patch": "delete"}]}}
        try:
            await self.kube.patch(core("pods", ref.namespace, name), patch, STRATEGIC_MERGE_PATCH)
        except NotFound:
            return
        self.expectations.released(name)

    async def _delete_pod(self, ref: JobRef, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.kube.delete(core("pods", ref.namespace, name))
        self.expectations.deleted(name)

    async def _write_status(self, ref: JobRef, body: Mapping[str, Any], plan: lifecycle.Plan) -> None:
        path = group_path(GROUP, VERSION, PLURAL, ref.namespace, ref.name, "status")
        for _ in range(3):
            patch = _status_patch(body, plan, self.controller.clock())
            if patch is None:
                return
            replaced = str((body.get("metadata") or {}).get("resourceVersion", ""))
            try:
                written = await self.kube.patch(path, patch)
            except KubeError as exc:
                if exc.status == 409:
                    # Someone else (cost accounting) wrote meanwhile: re-read and merge again.
                    body = await self.kube.get(group_path(GROUP, VERSION, PLURAL, ref.namespace, ref.name))
                    continue
                if exc.status == 404:
                    return  # the job is gone
                raise
            self._written = (replaced, written)
            return
        raise KubeError(409, "Conflict", "status kept changing under us")


def _status_patch(body: Mapping[str, Any], plan: lifecycle.Plan, now: datetime.datetime) -> dict[str, Any] | None:
    status = body.get("status") or {}
    current = lifecycle_fields(status)
    changes: dict[str, Any] = {}
    for key, value in plan.fields.items():
        if value is None:
            if key in current:
                changes[key] = None
        elif current.get(key) != value:
            changes[key] = value
    if plan.conditions:
        conditions = merge_conditions(status.get("conditions") or [], plan.conditions, now)
        if conditions != (status.get("conditions") or []):
            changes["conditions"] = conditions
    if not changes:
        return None
    return {"metadata": {"resourceVersion": (body.get("metadata") or {}).get("resourceVersion")}, "status": changes}
