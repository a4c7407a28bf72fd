"""A list-and-watch cache of the operator's worker pods (what client-go calls an informer).

Why not kopf for pods: kopf starts a worker task per pod and, with an index handler, holds every listed
pod at its index barrier until the whole listing is through, waking all of them at each step; at a few
thousand pods an operator restart spent minutes there (see docs/notes/operator.md). This cache lists the
labelled pods once (``ready`` is set only then, so a restarted operator never plans from a partial view),
then follows a watch from the list's resourceVersion, re-listing from scratch when the server says the
version expired (410) — which also forgets pods deleted while the watch was down. Each change calls
``on_change(namespace, job)`` so the job's daemon re-plans.

It keeps ``workers.PodView`` summaries only, grouped by (namespace, job name). ``OnDemand`` runs it only
while job daemons need it: kopf stops every daemon on a replica that peering pauses, so a standby holds no
pod watch and no cache, and lists afresh (``ready`` cleared until then) when kopf resumes it.
Neighbours: ``kube`` (HTTP), ``controller`` (reads ``pods_of`` and waits for ``ready``), ``app`` (starts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from lepton_operator import naming
from lepton_operator.kube import KubeClient, KubeError, core_path
from lepton_operator.workers import PodView

logger = logging.getLogger(__name__)

JobKey = tuple[str, str]


class WatchExpired(Exception):
    """The server no longer has the resourceVersion we resume from: list again."""


class PodInformer:
    def __init__(
        self,
        kube: KubeClient,
        *,
        namespaces: Iterable[str] = (),
        on_change: Callable[[str, str], None] | None = None,
        watch_timeout_seconds: int = 300,
        retry_delay_seconds: float = 1.0,
    ) -> None:
        self.kube = kube
        self.namespaces = tuple(namespaces)
        self.on_change = on_change
        self.watch_timeout_seconds = watch_timeout_seconds
        self.retry_delay_seconds = retry_delay_seconds
        self.ready = asyncio.Event()
        """Set once every selected namespace has been listed."""
        self._by_job: dict[JobKey, dict[str, PodView]] = {}
        self._job_of: dict[tuple[str, str], JobKey] = {}
        self.relists = 0
        """Full listings so far (the first, plus one per expired watch)."""

    def pods_of(self, namespace: str, job: str) -> list[PodView]:
        return list(self._by_job.get((namespace, job), {}).values())

    def forget(self) -> None:
        """Drop the cache and readiness (the informer stopped: what it holds goes stale)."""
        self.ready.clear()
        self._by_job.clear()
        self._job_of.clear()

    def __len__(self) -> int:
        return len(self._job_of)

    async def run(self) -> None:
        """Keep the cache in sync until cancelled (one task per namespace, or one for all)."""
        scopes: tuple[str | None, ...] = self.namespaces or (None,)
        listed = [asyncio.Event() for _ in scopes]

        async def all_listed() -> None:
            await asyncio.gather(*(event.wait() for event in listed))
            self.ready.set()

        waiter = asyncio.create_task(all_listed())
        try:
            await asyncio.gather(*(self._follow(scope, event) for scope, event in zip(scopes, listed, strict=True)))
        finally:
            waiter.cancel()

    async def _follow(self, namespace: str | None, listed: asyncio.Event) -> None:
        path = core_path("pods", namespace)
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list(path, namespace)
                    listed.set()
                version = await self._watch(path, version)
            except WatchExpired:
                version = None
            except KubeError as exc:
                if exc.status == 410:
                    version = None
                logger.warning("pod watch %s: %s; retrying", namespace or "(all namespaces)", exc)
                await asyncio.sleep(self.retry_delay_seconds * random.uniform(0.5, 1.5))

    async def _list(self, path: str, namespace: str | None) -> str:
        listing = await self.kube.get(path, {"labelSelector": naming.LABEL_JOB})
        fresh: dict[tuple[str, str], dict[str, Any]] = {
            (item["metadata"].get("namespace", ""), item["metadata"]["name"]): item
            for item in listing.get("items") or []
        }
        scope = [key for key in self._job_of if namespace is None or key[0] == namespace]
        touched: set[JobKey] = set()
        for key in scope:  # replace the scope atomically: forget what the server no longer has
            if key not in fresh:
                touched |= self._forget(*key)
        for item in fresh.values():
            touched |= self._store(item)
        self.relists += 1
        self._notify(touched)
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    async def _watch(self, path: str, version: str) -> str:
        params = {
            "watch": "true",
            "labelSelector": naming.LABEL_JOB,
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_timeout_seconds),
        }
        async for event in self.kube.watch(path, params):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise WatchExpired(obj.get("message", ""))
                raise KubeError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", "")))
            version = str(obj.get("metadata", {}).get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            meta = obj.get("metadata") or {}
            if kind == "DELETED":
                self._notify(self._forget(meta.get("namespace", ""), meta.get("name", "")))
            else:
                self._notify(self._store(obj))
        return version

    def _store(self, pod: dict[str, Any]) -> set[JobKey]:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        touched = self._forget(*key)
        view = PodView.from_pod(pod)
        job = (meta.get("labels") or {}).get(naming.LABEL_JOB)
        if view is not None and job:
            self._by_job.setdefault((key[0], job), {})[key[1]] = view
            self._job_of[key] = (key[0], job)
            touched.add((key[0], job))
        return touched

    def _forget(self, namespace: str, name: str) -> set[JobKey]:
        job = self._job_of.pop((namespace, name), None)
        if job is None:
            return set()
        pods = self._by_job.get(job, {})
        pods.pop(name, None)
        if not pods:
            self._by_job.pop(job, None)
        return {job}

    def _notify(self, jobs: set[JobKey]) -> None:
        if self.on_change is not None:
            for namespace, job in jobs:
                self.on_change(namespace, job)


class OnDemand:
    """Runs a ``PodInformer`` while anyone holds it (``async with on_demand.held():``), then stops it.

    The holders are the job daemons. kopf stops all of them when peering pauses the replica and starts
    them again when it resumes, so the pod watch follows kopf's own pause state exactly, without this
    module knowing about peering. ``linger_seconds`` keeps the watch through short gaps (the last job
    deleted and a new one created) rather than re-listing every pod for each.
    """

    def __init__(self, informer: PodInformer, *, linger_seconds: float = 10.0) -> None:
        self.informer = informer
        self.linger_seconds = linger_seconds
        self.holders = 0
        self._task: asyncio.Task[None] | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._primer: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def prime(self, seconds: float) -> None:
        """Start now and hold for ``seconds``: at start-up the daemons that will hold it are still being
        spawned (kopf lists the LeptonJobs first), and listing the pods meanwhile saves that much time
        before a restarted operator acts. Only the active replica primes (a standby never lists pods)."""

        async def hold() -> None:
            async with self.held():
                await asyncio.sleep(seconds)

        if self._primer is None or self._primer.done():
            self._primer = asyncio.create_task(hold(), name="pod informer primer")

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[PodInformer]:
        self.holders += 1
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        if not self.running:
            self.informer.forget()
            self._task = asyncio.create_task(self.informer.run(), name="pod informer")
        try:
            yield self.informer
        finally:
            self.holders -= 1
            if self.holders == 0 and self._stopper is None:
                self._stopper = asyncio.create_task(self._stop_later(), name="pod informer stopper")

    async def _stop_later(self) -> None:
        await asyncio.sleep(self.linger_seconds)
        self._stopper = None
        if self.holders == 0:
            await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            logger.info("pod informer stopped: no job daemon needs it (no jobs, or paused by peering)")
        if self._task is None:  # no holder restarted it meanwhile
            self.informer.forget()

    async def close(self) -> None:
        if self._primer is not None:
            self._primer.cancel()
            await asyncio.gather(self._primer, return_exceptions=True)
        if self._stopper is not None:
            self._stopper.cancel()
            await asyncio.gather(self._stopper, return_exceptions=True)
            self._stopper = None
        await self._stop()
