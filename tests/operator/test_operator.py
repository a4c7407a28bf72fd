"""The operator for real: ``python -m lepton_operator`` (what ``lepton operator`` runs) against the
emulated API server over HTTP. One operator serves the whole module; each test has its own namespace."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube_emulator.client import KubeApiError
from tests.operator.conftest import (
    Cluster,
    event_reasons,
    job_manifest,
    settle,
    wait_phase,
    wait_released,
    worker_pods,
)


def _pod_history(cluster: Cluster, ns: str) -> list[tuple[int, str, str, bool]]:
    """(resourceVersion, event type, pod, gated) for every pod event in ``ns``, from the server's log."""

    def read(emulator: Any) -> list[tuple[int, str, str, bool]]:
        history = emulator.store._history[("", "v1", "pods")].events
        return [
            (rv, kind, obj["metadata"]["name"], bool((obj.get("spec") or {}).get("schedulingGates")))
            for rv, kind, obj, _, _ in history
            if obj["metadata"].get("namespace") == ns
        ]

    return cluster.emulator.call(read)


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def test_create_makes_worker_pods_with_scheduler_env_and_owner_and_starts_them_together(
    cluster: Cluster, ns: str
) -> None:
    kube = cluster.kube
    job = kube.create(job_manifest("train", workers=3, gpus=8), ns)
    names = wait_released(kube, ns, "train", 3)
    assert names == [f"train-worker-{i}-r0a0" for i in range(3)]
    for index, name in enumerate(names):
        pod = kube.get("pods", ns, name)
        assert pod["spec"]["schedulerName"] == "lepton-scheduler"
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "LeptonJob",
            "train",
            job["metadata"]["uid"],
            True,
        )
        env = _env(pod)
        assert env["LEPTON_JOB_NAME"] == "train" and env["LEPTON_JOB_WORKER_INDEX"] == str(index)
        assert env["LEPTON_JOB_TOTAL_WORKERS"] == env["WORLD_SIZE"] == "3" and env["RANK"] == str(index)
        assert env["MASTER_ADDR"] == f"train-worker-0.train.{ns}.svc" and env["MASTER_PORT"] == "29500"
        assert pod["metadata"]["labels"]["team"] == "ml"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    service = kube.get("services", ns, "train")
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]

    # All-or-nothing, as the API server saw it: every pod was created gated, and no gate came off
    # before the last worker existed.
    history = _pod_history(cluster, ns)
    created = [rv for rv, kind, _, gated in history if kind == "ADDED" and gated]
    released = [rv for rv, kind, _, gated in history if kind == "MODIFIED" and not gated]
    assert len(created) == 3 and not [h for h in history if h[1] == "ADDED" and not h[3]]
    assert min(released) > max(created)
    status = wait_phase(kube, ns, "train", "Starting")["status"]
    assert status["workers"]["summary"] == "0/3" and status["startTime"]
    assert event_reasons(kube, ns, "train")[:2] == ["Queued", "Started"]


def test_workers_succeeding_make_the_job_succeed(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    kube.create(job_manifest("train", workers=2), ns)
    names = wait_released(kube, ns, "train", 2)
    kubelet.run_all(ns, names, ["gpu-0", "gpu-1"])
    running = wait_phase(kube, ns, "train", "Running")["status"]
    assert running["nodes"] == ["gpu-0", "gpu-1"] and running["workers"]["summary"] == "2/2"
    for name in names:
        kubelet.report(ns, name, "Succeeded")
    done = wait_phase(kube, ns, "train", "Succeeded")["status"]
    assert done["completionTime"] and done["workers"]["succeeded"] == 2
    conditions = {c["type"]: c["status"] for c in done["conditions"]}
    assert conditions["Succeeded"] == "True" and conditions["Running"] == "False"
    assert event_reasons(kube, ns, "train") == ["Queued", "Started", "Running", "Succeeded"]


def test_a_failing_worker_is_retried_then_the_gang_restarts_then_the_job_fails(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    kube.create(job_manifest("train", workers=2, maxFailureRetry=1, maxJobFailureRetry=1), ns)
    names = wait_released(kube, ns, "train", 2)
    kubelet.run_all(ns, names, ["gpu-0", "gpu-1"])
    wait_phase(kube, ns, "train", "Running")

    kubelet.report(ns, "train-worker-1-r0a0", "Failed", exit_code=1)
    assert wait_released(kube, ns, "train", 2) == ["train-worker-0-r0a0", "train-worker-1-r0a1"]
    kubelet.run_all(ns, ["train-worker-1-r0a1"], ["gpu-1"])
    assert wait_phase(kube, ns, "train", "Running")["status"]["retries"] == 1

    kubelet.report(ns, "train-worker-1-r0a1", "Failed", exit_code=1)  # out of per-worker retries: new run
    assert wait_released(kube, ns, "train", 2) == ["train-worker-0-r1a0", "train-worker-1-r1a0"]
    assert kube.find("pods", ns, "train-worker-0-r0a0") is None  # the rest of the broken gang is gone
    kubelet.run_all(ns, ["train-worker-0-r1a0", "train-worker-1-r1a0"], ["gpu-0", "gpu-1"])
    status = wait_phase(kube, ns, "train", "Running")["status"]
    assert (status["run"], status["jobRestarts"]) == (1, 1)

    kubelet.report(ns, "train-worker-0-r1a0", "Failed", exit_code=2)
    kubelet.run_all(ns, wait_released(kube, ns, "train", 2)[:1], ["gpu-0"])
    kubelet.report(ns, "train-worker-0-r1a1", "Failed", exit_code=2, reason="Error")
    failed = wait_phase(kube, ns, "train", "Failed")["status"]
    condition = next(c for c in failed["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "BackoffLimitExceeded" and "worker 0" in condition["message"]
    active = [p for p in worker_pods(kube, ns, "train") if p["status"]["phase"] in ("Pending", "Running")]
    assert active == []
    reasons = event_reasons(kube, ns, "train")
    assert reasons.count("WorkerFailed") == 2 and "JobRestarted" in reasons and reasons[-1] == "BackoffLimitExceeded"


def test_suspend_removes_the_workers_and_resume_recreates_them(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    kube.create(job_manifest("train", workers=2), ns)
    kubelet.run_all(ns, wait_released(kube, ns, "train", 2), ["gpu-0", "gpu-1"])
    wait_phase(kube, ns, "train", "Running")
    kube.patch("lj", ns, "train", {"spec": {"suspend": True}})
    suspended = wait_phase(kube, ns, "train", "Suspended")["status"]
    assert worker_pods(kube, ns, "train") == [] and "startTime" not in suspended
    kube.patch("lj", ns, "train", {"spec": {"suspend": False}})
    assert wait_released(kube, ns, "train", 2) == ["train-worker-0-r1a0", "train-worker-1-r1a0"]
    resumed = wait_phase(kube, ns, "train", "Starting")["status"]
    assert next(c for c in resumed["conditions"] if c["type"] == "Suspended")["reason"] == "Resumed"
    assert {"Suspended", "Resumed"} <= set(event_reasons(kube, ns, "train"))


def test_deleting_the_job_removes_its_pods_and_service(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    kube.create(job_manifest("train", workers=2), ns)
    wait_released(kube, ns, "train", 2)
    assert kube.get("lj", ns, "train")["metadata"]["finalizers"] == ["lepton.ai/operator"]
    kube.delete("lj", ns, "train")
    kube.wait_for(lambda: kube.find("lj", ns, "train") is None, what="the job to be gone")
    assert worker_pods(kube, ns, "train") == [] and kube.find("services", ns, "train") is None


def test_invalid_specs_are_rejected_naming_the_field(cluster: Cluster, ns: str) -> None:
    cases = [
        ({"workers": 0}, "spec.workers"),
        ({"priority": 10}, "spec.priority"),
        ({"budget": {"action": "stop"}}, "spec.budget"),
    ]
    for change, field in cases:
        with pytest.raises(KubeApiError) as info:
            cluster.kube.create({**job_manifest("bad"), "spec": {**job_manifest("bad")["spec"], **change}}, ns)
        assert info.value.code == 422 and field in info.value.message
        assert [c["field"] for c in info.value.body["details"]["causes"]] == [field]


def test_a_pod_the_api_server_rejects_fails_the_job_with_the_reason(cluster: Cluster, ns: str) -> None:
    cluster.emulator.call(lambda e: e.inject_fault("POST", "pods", 422, 1, namespace=ns, reason="Invalid"))
    cluster.kube.create(job_manifest("train", workers=1), ns)
    failed = wait_phase(cluster.kube, ns, "train", "Failed")["status"]
    assert next(c for c in failed["conditions"] if c["type"] == "Failed")["reason"] == "PodTemplateRejected"


def test_temporary_api_errors_and_expired_watches_are_survived(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    # More failures than the client retries by itself: the job's daemon backs off and tries again.
    cluster.emulator.call(lambda e: e.inject_fault("POST", "pods", 503, 6, namespace=ns, reason="ServiceUnavailable"))
    cluster.emulator.call(
        lambda e: e.inject_fault("PATCH", "leptonjobs", 409, 1, namespace=ns, subresource="status", reason="Conflict")
    )
    kube.create(job_manifest("train", workers=2), ns)
    names = wait_released(kube, ns, "train", 2, timeout_seconds=30)
    cluster.emulator.call(lambda e: e.expire_watches())  # the operator must re-list and carry on
    kubelet.run_all(ns, names, ["gpu-0", "gpu-1"])
    wait_phase(kube, ns, "train", "Running", timeout_seconds=30)
    assert len(worker_pods(kube, ns, "train")) == 2


def test_active_deadline_fails_the_job_and_removes_running_workers(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    kube.create(job_manifest("train", workers=2, activeDeadlineSeconds=3), ns)
    kubelet.run_all(ns, wait_released(kube, ns, "train", 2), ["gpu-0", "gpu-1"])
    assert wait_phase(kube, ns, "train", "Running")["status"]["startTime"]
    failed = wait_phase(kube, ns, "train", "Failed", timeout_seconds=15)["status"]
    assert next(c for c in failed["conditions"] if c["type"] == "Failed")["reason"] == "DeadlineExceeded"
    kube.wait_for(lambda: worker_pods(kube, ns, "train") == [], what="running workers removed")


def test_ttl_after_finished_deletes_the_job(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    kube.create(job_manifest("train", workers=1, ttlSecondsAfterFinished=1), ns)
    (name,) = wait_released(kube, ns, "train", 1)
    kubelet.run_all(ns, [name], ["gpu-0"])
    kubelet.report(ns, name, "Succeeded")
    kube.wait_for(lambda: kube.find("lj", ns, "train") is None, timeout_seconds=15, what="TTL deletion")
    assert worker_pods(kube, ns, "train") == []


def test_priority_maps_to_an_existing_priority_class(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    if kube.find("priorityclasses", None, "lepton-priority-8") is None:
        kube.create(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "lepton-priority-8"},
                "value": 800000,
            }
        )
    kube.create(job_manifest("urgent", workers=1, priority=8), ns)
    kube.create(job_manifest("casual", workers=1, priority=2), ns)
    (urgent,) = wait_released(kube, ns, "urgent", 1)
    (casual,) = wait_released(kube, ns, "casual", 1)
    assert kube.get("pods", ns, urgent)["spec"]["priorityClassName"] == "lepton-priority-8"
    assert "priorityClassName" not in kube.get("pods", ns, casual)["spec"]
    assert "PriorityClassNotFound" in event_reasons(kube, ns, "casual")


def test_the_stop_annotation_stops_the_job(cluster: Cluster, ns: str) -> None:
    kube, kubelet = cluster.kube, cluster.kubelet
    kube.create(job_manifest("train", workers=2), ns)
    kubelet.run_all(ns, wait_released(kube, ns, "train", 2), ["gpu-0", "gpu-1"])
    wait_phase(kube, ns, "train", "Running")
    kube.patch(
        "lj",
        ns,
        "train",
        {
            "metadata": {
                "annotations": {"lepton.ai/stop": "BudgetExceeded", "lepton.ai/stop-message": "cost passed 10 USD"}
            }
        },
    )
    stopped = wait_phase(kube, ns, "train", "Stopped")["status"]
    condition = next(c for c in stopped["conditions"] if c["type"] == "Stopped")
    assert (condition["reason"], condition["message"]) == ("BudgetExceeded", "cost passed 10 USD")
    kube.wait_for(lambda: worker_pods(kube, ns, "train") == [], what="workers removed")
    settle(0.5)
    assert wait_phase(kube, ns, "train", "Stopped")  # a finished job stays finished
