"""The emulator keeps the Kubernetes semantics kopf and the operator depend on, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kmock
import kubernetes
import pytest
import requests

from tests.kube_emulator.client import KubeApiError, KubeClient, Kubelet
from tests.kube_emulator.runner import EmulatorThread

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "deploy" / "base" / "crd-leptonjob.yaml"


def _pod(
    name: str, *, labels: dict[str, str] | None = None, gated: bool = False, owner: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": True,
            }
        ]
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if gated:
        spec["schedulingGates"] = [{"name": "lepton.ai/gang"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lepton.ai/v1alpha1",
        "kind": "LeptonJob",
        "metadata": {"name": name},
        "spec": {"workers": 2, "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}, **spec},
    }


def _watch(emulator: EmulatorThread, path: str, **params: str) -> list[dict[str, Any]]:
    """Every event of a watch that the server ends after one second."""
    response = requests.get(
        emulator.url + path, params={"watch": "true", "timeoutSeconds": "1", **params}, stream=True, timeout=10
    )
    return [json.loads(line) for line in response.iter_lines() if line]


def test_create_sets_identity_and_every_write_gets_a_new_resource_version(kube: KubeClient) -> None:
    kube.ensure_namespace("ns")
    first = kube.create(_pod("a"), "ns")
    second = kube.create(_pod("b"), "ns")
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert first["metadata"]["generation"] == 1 and first["metadata"]["creationTimestamp"]
    versions = [int(first["metadata"]["resourceVersion"]), int(second["metadata"]["resourceVersion"])]
    patched = kube.patch("pods", "ns", "a", {"metadata": {"labels": {"x": "1"}}})
    versions.append(int(patched["metadata"]["resourceVersion"]))
    assert versions == sorted(versions) and len(set(versions)) == 3
    again = kube.patch("pods", "ns", "a", {"metadata": {"labels": {"x": "1"}}})
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]  # no-op: no new version


def test_duplicate_create_is_409_already_exists_and_missing_namespace_is_404(kube: KubeClient) -> None:
    kube.ensure_namespace("ns")
    kube.create(_pod("a"), "ns")
    with pytest.raises(KubeApiError) as exists:
        kube.create(_pod("a"), "ns")
    assert exists.value.code == 409 and exists.value.reason == "AlreadyExists"
    with pytest.raises(KubeApiError) as missing:
        kube.create(_pod("a"), "nowhere")
    assert missing.value.code == 404 and "nowhere" in missing.value.message


def test_stale_resource_version_is_a_conflict(kube: KubeClient) -> None:
    kube.ensure_namespace("ns")
    pod = kube.create(_pod("a"), "ns")
    stale = pod["metadata"]["resourceVersion"]
    kube.patch("pods", "ns", "a", {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(KubeApiError) as info:
        kube.patch("pods", "ns", "a", {"metadata": {"resourceVersion": stale, "labels": {"x": "2"}}})
    assert info.value.code == 409 and info.value.reason == "Conflict"
    with pytest.raises(KubeApiError) as failed_test:
        kube.patch(
            "pods", "ns", "a", [{"op": "test", "path": "/metadata/resourceVersion", "value": stale}], kind="json"
        )
    assert failed_test.value.code == 422


def test_status_subresource_separates_spec_and_status_writes(kube: KubeClient) -> None:
    kube.apply_file(CRD)
    kube.ensure_namespace("ns")
    job = kube.create(_job("train"), "ns")
    assert "status" not in job
    spec_write = kube.patch("lj", "ns", "train", {"spec": {"suspend": True}, "status": {"phase": "Running"}})
    assert spec_write["spec"]["suspend"] is True and "status" not in spec_write
    assert spec_write["metadata"]["generation"] == 2
    status_write = kube.patch(
        "lj", "ns", "train", {"spec": {"suspend": False}, "status": {"phase": "Running"}}, subresource="status"
    )
    assert status_write["status"] == {"phase": "Running"} and status_write["spec"]["suspend"] is True
    assert status_write["metadata"]["generation"] == 2  # status writes never bump the generation


def test_custom_resources_are_defaulted_pruned_and_validated_naming_the_field(kube: KubeClient) -> None:
    kube.apply_file(CRD)
    kube.ensure_namespace("ns")
    created = kube.create({**_job("train"), "unknown": 1}, "ns")
    assert created["spec"]["schedulerName"] == "lepton-scheduler" and created["spec"]["maxFailureRetry"] == 3
    assert "unknown" not in created
    with pytest.raises(KubeApiError) as info:
        kube.create(_job("bad", priority=12), "ns")
    assert info.value.code == 422
    assert [c["field"] for c in info.value.body["details"]["causes"]] == ["spec.priority"]
    with pytest.raises(KubeApiError) as immutable:
        kube.patch("lj", "ns", "train", {"spec": {"workers": 3}})
    assert "spec.workers" in immutable.value.message and "immutable" in immutable.value.message


def test_label_and_field_selectors(kube: KubeClient) -> None:
    kube.ensure_namespace("ns")
    kube.create(_pod("a", labels={"lepton.ai/job-name": "j1"}), "ns")
    kube.create(_pod("b", labels={"lepton.ai/job-name": "j2"}), "ns")
    kube.create(_pod("c"), "ns")
    names = [p["metadata"]["name"] for p in kube.list("pods", "ns", labels="lepton.ai/job-name")]
    assert names == ["a", "b"]
    not_j1 = kube.list("pods", "ns", labels="lepton.ai/job-name notin (j1)")
    assert [p["metadata"]["name"] for p in not_j1] == ["b", "c"]
    assert [p["metadata"]["name"] for p in kube.list("pods", "ns", fields="metadata.name=c")] == ["c"]
    with pytest.raises(KubeApiError) as info:
        kube.list("pods", "ns", fields="spec.secret=x")
    assert info.value.code == 400 and "spec.secret" in info.value.message


def test_watch_resumes_after_a_version_without_replaying_and_old_versions_are_gone(
    kube: KubeClient, kube_emulator: EmulatorThread
) -> None:
    kube.ensure_namespace("ns")
    first = kube.create(_pod("a"), "ns")
    kube.create(_pod("b"), "ns")
    events = _watch(kube_emulator, "/api/v1/namespaces/ns/pods", resourceVersion=first["metadata"]["resourceVersion"])
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]
    kube_emulator.call(lambda e: e.store.compact())
    gone = _watch(kube_emulator, "/api/v1/namespaces/ns/pods", resourceVersion=first["metadata"]["resourceVersion"])
    assert gone[0]["type"] == "ERROR" and gone[0]["object"]["code"] == 410


def test_watch_selector_transitions_and_bookmarks(kube: KubeClient, kube_emulator: EmulatorThread) -> None:
    kube.ensure_namespace("ns")
    pod = kube.create(_pod("a", labels={"role": "worker"}), "ns")
    kube.patch("pods", "ns", "a", {"metadata": {"labels": {"role": "idle"}}})
    events = _watch(
        kube_emulator,
        "/api/v1/namespaces/ns/pods",
        labelSelector="role=worker",
        resourceVersion=pod["metadata"]["resourceVersion"],
        allowWatchBookmarks="true",
    )
    types = [e["type"] for e in events]
    assert types[0] == "DELETED"  # the pod left the selector
    initial = _watch(
        kube_emulator,
        "/api/v1/namespaces/ns/pods",
        sendInitialEvents="true",
        allowWatchBookmarks="true",
        resourceVersionMatch="NotOlderThan",
    )
    assert initial[0]["type"] == "ADDED"
    assert initial[1]["type"] == "BOOKMARK"
    assert initial[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_finalizers_delay_deletion_and_garbage_collection_follows_owner_references(kube: KubeClient) -> None:
    kube.ensure_namespace("ns")
    owner = kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "finalizers": ["lepton.ai/operator"]}},
        "ns",
    )
    kube.create(_pod("dependent", owner=owner), "ns")
    kube.create(_pod("orphan-to-be", owner=owner), "ns")
    deleting = kube.delete("configmaps", "ns", "owner")
    assert deleting["metadata"]["deletionTimestamp"]
    with pytest.raises(KubeApiError):
        kube.patch("configmaps", "ns", "owner", {"metadata": {"finalizers": ["lepton.ai/operator", "new"]}})
    assert kube.find("pods", "ns", "dependent") is not None  # owner still exists
    kube.patch("configmaps", "ns", "owner", {"metadata": {"finalizers": None}})
    assert kube.find("configmaps", "ns", "owner") is None
    assert kube.list("pods", "ns") == []  # background garbage collection

    second = kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}}, "ns")
    kube.create(_pod("kept", owner=second), "ns")
    kube.delete("configmaps", "ns", "second", propagation="Orphan")
    kept = kube.get("pods", "ns", "kept")
    assert not kept["metadata"].get("ownerReferences")


def test_pods_keep_their_rules_gates_only_removed_and_binding_refused_while_gated(kube: KubeClient) -> None:
    kube.ensure_namespace("ns")
    kube.create(_pod("w", gated=True), "ns")
    kubelet = Kubelet(kube)
    with pytest.raises(KubeApiError) as gated:
        kubelet.bind("ns", "w", "node-1")
    assert "schedulingGates" in gated.value.message
    with pytest.raises(KubeApiError) as added:
        kube.patch(
            "pods",
            "ns",
            "w",
            {"spec": {"schedulingGates": [{"name": "lepton.ai/gang"}, {"name": "x"}]}},
            kind="strategic",
        )
    assert added.value.code == 422
    with pytest.raises(KubeApiError) as immutable:
        kube.patch("pods", "ns", "w", {"spec": {"restartPolicy": "Never"}})
    assert immutable.value.code == 422
    kube.patch(
        "pods",
        "ns",
        "w",
        {"spec": {"schedulingGates": [{"name": "lepton.ai/gang", "$patch": "delete"}]}},
        kind="strategic",
    )
    kubelet.bind("ns", "w", "node-1")
    kubelet.report("ns", "w", "Failed", exit_code=137, reason="OOMKilled")
    pod = kube.get("pods", "ns", "w")
    assert pod["spec"]["nodeName"] == "node-1" and pod["status"]["phase"] == "Failed"
    with pytest.raises(KubeApiError) as bound:
        kubelet.bind("ns", "w", "node-2")
    assert bound.value.code == 409


def test_namespace_deletion_removes_its_objects(kube: KubeClient) -> None:
    kube.ensure_namespace("doomed")
    kube.create(_pod("a"), "doomed")
    kube.delete("namespaces", None, "doomed")
    assert kube.find("namespaces", None, "doomed") is None
    assert kube.find("pods", "doomed", "a") is None


def test_the_official_kubernetes_client_works_against_it(kube: KubeClient, kube_emulator: EmulatorThread) -> None:
    kube.ensure_namespace("ns")
    kube.create(_pod("a", labels={"app": "x"}), "ns")
    configuration = kubernetes.client.Configuration(host=kube_emulator.url)
    with kubernetes.client.ApiClient(configuration) as api_client:
        core = kubernetes.client.CoreV1Api(api_client)
        pods = core.list_namespaced_pod("ns", label_selector="app=x")
        assert [p.metadata.name for p in pods.items] == ["a"]
        stream = kubernetes.watch.Watch().stream(
            core.list_namespaced_pod, "ns", timeout_seconds=1, resource_version=pods.metadata.resource_version
        )
        kube.create(_pod("b"), "ns")
        names = [event["object"].metadata.name for event in stream]
        assert names == ["b"]


def test_faults_injected_with_kmock_take_precedence(kube: KubeClient, kube_emulator: EmulatorThread) -> None:
    kube.ensure_namespace("ns")
    kube_emulator.call(lambda e: e["post", kmock.resource("", "v1", "pods")][:1] << 503)
    with pytest.raises(KubeApiError) as info:
        kube.create(_pod("a"), "ns")
    assert info.value.code == 503
    assert kube.create(_pod("a"), "ns")["metadata"]["name"] == "a"  # the fault was used up
