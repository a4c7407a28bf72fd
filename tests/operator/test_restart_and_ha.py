"""Crashes and replicas: an operator killed with SIGKILL mid-job and started again creates no duplicate
workers and forgets nothing; with kopf's peering only the highest-priority live replica acts, and a
waiting one takes over when it dies."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kube_emulator.client import KubeClient, Kubelet
from tests.kube_emulator.resources import KOPF_PEERING_CRDS
from tests.kube_emulator.runner import EmulatorThread, running_emulator
from tests.operator.conftest import (
    CRD_PATH,
    OperatorProcess,
    event_reasons,
    job_manifest,
    requests_by,
    settle,
    wait_phase,
    wait_released,
    worker_pods,
)


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with running_emulator() as emulator:
        kube = KubeClient(emulator.url)
        kube.apply_file(CRD_PATH)
        kube.ensure_namespace("ml")
        yield emulator


def _pods_created(emulator: EmulatorThread, namespace: str) -> collections.Counter[str]:
    """How many times each pod name was created, from the API server's own event log."""

    def read(e: Any) -> collections.Counter[str]:
        return collections.Counter(
            obj["metadata"]["name"]
            for _, kind, obj, _, _ in e.store._history[("", "v1", "pods")].events
            if kind == "ADDED" and obj["metadata"]["namespace"] == namespace
        )

    return emulator.call(read)


def test_an_operator_killed_mid_job_and_restarted_duplicates_nothing_and_forgets_nothing(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    kube = KubeClient(emulator.url)
    kubelet = Kubelet(kube)
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", "--standalone").start()
    try:
        kube.create(job_manifest("train", workers=4, maxFailureRetry=3), "ml")
        names = wait_released(kube, "ml", "train", 4)
        kubelet.run_all("ml", names, ["gpu-0", "gpu-1"])
        kubelet.report("ml", "train-worker-2-r0a0", "Failed", exit_code=1)
        kube.wait_for(lambda: kube.find("pods", "ml", "train-worker-2-r0a1"), what="the first replacement")
        kubelet.run_all("ml", ["train-worker-2-r0a1"], ["gpu-1"])
        assert wait_phase(kube, "ml", "train", "Running")["status"]["retries"] == 1

        operator.kill()
        # While no operator runs: a worker fails and another job is submitted.
        kubelet.report("ml", "train-worker-3-r0a0", "Failed", exit_code=1)
        kube.create(job_manifest("second", workers=2), "ml")
        settle(0.5)
        assert worker_pods(kube, "ml", "second") == []

        operator.start()
        kube.wait_for(lambda: kube.find("pods", "ml", "train-worker-3-r0a1"), what="the replacement after restart")
        kubelet.run_all("ml", ["train-worker-3-r0a1"], ["gpu-0"])
        status = wait_phase(kube, "ml", "train", "Running")["status"]
        assert status["retries"] == 2 and status["workerAttempts"] == [0, 0, 1, 1]
        wait_released(kube, "ml", "second", 2)

        operator.kill()  # and once more, right away: the restarted operator re-plans from the same state
        operator.start()
        kubelet.run_all("ml", wait_released(kube, "ml", "second", 2), ["gpu-0", "gpu-1"])
        wait_phase(kube, "ml", "second", "Running")
        settle(1.0)

        created = _pods_created(emulator, "ml")
        assert max(created.values()) == 1, f"a pod was created twice: {created}"
        assert sorted(created) == sorted(
            [f"train-worker-{i}-r0a0" for i in range(4)]
            + ["train-worker-2-r0a1", "train-worker-3-r0a1", "second-worker-0-r0a0", "second-worker-1-r0a0"]
        )
        assert event_reasons(kube, "ml", "train").count("Started") == 1
        assert wait_phase(kube, "ml", "train", "Running")["status"]["retries"] == 2
    finally:
        operator.stop()


def test_peering_keeps_one_replica_active_and_a_standby_takes_over(emulator: EmulatorThread, tmp_path: Path) -> None:
    kube = KubeClient(emulator.url)
    kubelet = Kubelet(kube)
    for crd in KOPF_PEERING_CRDS:
        kube.create(crd)
    kube.create({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "lepton-operator"}})
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    args = ("--peering", "lepton-operator", "--peering-lifetime", "3")
    active = OperatorProcess(
        kubeconfig, tmp_path / "active.log", *args, "--priority", "100", env={"POD_NAME": "active"}
    )
    standby = OperatorProcess(
        kubeconfig, tmp_path / "standby.log", *args, "--priority", "50", env={"POD_NAME": "standby"}
    )
    try:
        active.start()
        kube.create(job_manifest("first", workers=1), "ml")
        wait_released(kube, "ml", "first", 1)
        standby.start()
        kube.wait_for(
            lambda: len(kube.get("clusterkopfpeerings", None, "lepton-operator").get("status") or {}) == 2,
            what="both replicas in the peering object",
        )
        settle(1.0)

        kube.create(job_manifest("second", workers=1), "ml")
        wait_released(kube, "ml", "second", 1)
        assert _reporters(kube, "ml") == {"active"}, "only the highest-priority replica acts"
        # kopf paused the standby's job daemons, so its pod cache never started: no pod list or watch.
        assert not [r for r in requests_by(emulator, "standby") if r[1] == "/api/v1/pods"]
        assert [r for r in requests_by(emulator, "active") if r[1] == "/api/v1/pods" and r[2].get("watch")]

        active.kill()  # no goodbye: the standby waits out the peering lifetime, then resumes
        kube.create(job_manifest("third", workers=1), "ml")
        (name,) = wait_released(kube, "ml", "third", 1, timeout_seconds=30)
        assert _reporters(kube, "ml", "third") == {"standby"}
        kubelet.run_all("ml", [name], ["gpu-0"])
        wait_phase(kube, "ml", "third", "Running")
        # Resumed, it listed the pods afresh before planning, then followed them with a watch.
        pods = [r for r in requests_by(emulator, "standby") if r[1] == "/api/v1/pods"]
        assert pods and not pods[0][2].get("watch") and any(r[2].get("watch") for r in pods)
    finally:
        active.stop()
        standby.stop()


def _reporters(kube: KubeClient, namespace: str, job: str | None = None) -> set[str]:
    return {e.get("reportingInstance", "") for e in kube.events(namespace, job)}
