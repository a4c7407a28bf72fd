"""The operator's API client against the emulator over HTTP: error classes, retries, credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lepton_operator import credentials
from lepton_operator.informer import PodInformer
from lepton_operator.kube import (
    STRATEGIC_MERGE_PATCH,
    AlreadyExists,
    Conflict,
    Endpoint,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    core_path,
)
from tests.kube_emulator.client import KubeClient as HttpClient
from tests.kube_emulator.runner import EmulatorThread

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "w", "labels": {"a": "1"}},
    "spec": {"containers": [{"name": "main", "image": "x"}], "schedulingGates": [{"name": "lepton.ai/gang"}]},
}


def _client(kubeconfig: Path) -> KubeClient:
    info = credentials.login(kubeconfig=str(kubeconfig))
    return KubeClient(Endpoint.from_connection_info(info), retry_delays_seconds=(0.01, 0.01))


def test_credentials_come_from_the_kubeconfig_named_at_login_time(
    kubeconfig: Path, kube_emulator: EmulatorThread
) -> None:
    info = credentials.login()  # $KUBECONFIG was set by the fixture after the kubernetes package was imported
    assert info.server == kube_emulator.url and info.token == "emulator-token"
    assert Endpoint.from_connection_info(info).headers == {"Authorization": "Bearer emulator-token"}


def test_errors_are_classified_and_transient_ones_retried(
    kubeconfig: Path, kube_emulator: EmulatorThread, kube: HttpClient
) -> None:
    kube.ensure_namespace("ns")

    async def scenario() -> None:
        client = _client(kubeconfig)
        try:
            created = await client.create(core_path("pods", "ns"), POD)
            with pytest.raises(AlreadyExists):
                await client.create(core_path("pods", "ns"), POD)
            with pytest.raises(NotFound):
                await client.get(core_path("pods", "ns", "missing"))
            stale = {"metadata": {"resourceVersion": "1"}, "spec": {}}
            with pytest.raises(Conflict) as conflict:
                await client.patch(core_path("pods", "ns", "w"), stale)
            assert conflict.value.temporary
            with pytest.raises(Invalid) as invalid:
                await client.patch(core_path("pods", "ns", "w"), {"spec": {"restartPolicy": "Never"}})
            assert not invalid.value.temporary
            released = await client.patch(
                core_path("pods", "ns", "w"),
                {"spec": {"schedulingGates": [{"name": "lepton.ai/gang", "$patch": "delete"}]}},
                STRATEGIC_MERGE_PATCH,
            )
            assert "schedulingGates" not in released["spec"] or not released["spec"]["schedulingGates"]
            assert created["metadata"]["uid"] == released["metadata"]["uid"]

            kube_emulator.call(lambda e: e.inject_fault("GET", "pods", 503, 2))
            assert (await client.get(core_path("pods", "ns", "w")))["metadata"]["name"] == "w"  # retried
            kube_emulator.call(lambda e: e.inject_fault("GET", "pods", 503, 5))
            with pytest.raises(KubeError) as outage:
                await client.get(core_path("pods", "ns", "w"))
            assert outage.value.status == 503 and outage.value.temporary
        finally:
            await client.close()

    asyncio.run(scenario())


def _worker(name: str, job: str, index: int) -> dict[str, object]:
    labels = {
        "lepton.ai/job-name": job,
        "lepton.ai/worker-index": str(index),
        "lepton.ai/run": "0",
        "lepton.ai/attempt": "0",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "x"}]},
    }


def test_the_pod_informer_lists_follows_and_relists_when_its_watch_expires(
    kubeconfig: Path, kube_emulator: EmulatorThread, kube: HttpClient
) -> None:
    for ns in ("a", "b"):
        kube.ensure_namespace(ns)
        kube.create(_worker("train-worker-0-r0a0", "train", 0), ns)  # same name in two namespaces
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "unrelated"},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
        },
        "a",
    )

    async def scenario() -> None:
        client = _client(kubeconfig)
        pokes: list[tuple[str, str]] = []
        informer = PodInformer(client, on_change=lambda ns, job: pokes.append((ns, job)), retry_delay_seconds=0.05)
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.ready.wait(), 10)
            assert len(informer) == 2 and [p.name for p in informer.pods_of("b", "train")] == ["train-worker-0-r0a0"]
            await asyncio.to_thread(kube.create, _worker("train-worker-1-r0a0", "train", 1), "a")
            await _until(lambda: len(informer.pods_of("a", "train")) == 2)
            assert ("a", "train") in pokes

            def expire_then_delete(e: Any) -> None:
                e.expire_watches()  # the watch ends; while it is down a pod goes and history is compacted,
                e.store.delete(e.store.resource("", "v1", "pods"), "b", "train-worker-0-r0a0", {})
                e.store.compact()  # so resuming is a 410 and only a fresh listing can tell the pod is gone

            await asyncio.to_thread(kube_emulator.call, expire_then_delete)
            await _until(lambda: informer.pods_of("b", "train") == [])
            assert informer.relists == 2
        finally:
            task.cancel()
            await client.close()

    asyncio.run(scenario())


async def _until(predicate: Callable[[], bool], timeout_seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
