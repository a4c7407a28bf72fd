"""Driving the Kubernetes emulator as the rest of the cluster would: nodes, LeptonJobs and their pods.

The lifecycle operator is not running in the accounting tests; these helpers play it (and the
kubelet): they create worker pods owned by a LeptonJob, report them Running from an exact start time
and Succeeded at an exact finish time, all in simulated time.
"""

from __future__ import annotations

from typing import Any

from lepton_operator.accounting.inventory import format_time
from lepton_operator.crd import API_VERSION, build_crd
from lepton_operator.naming import LABEL_JOB
from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.cluster import node


def install(kube: KubeClient, namespace: str) -> None:
    kube.create(build_crd())
    kube.ensure_namespace(namespace)


def add_node(kube: KubeClient, name: str, *, cpu: int, gpus: int, node_class: str) -> str:
    """Create the node; returns its InternalIP (node_exporter's ``instance`` uses it)."""
    body = kube.create(node(name, cpu=cpu, memory_gib=256, gpus=gpus, labels={"lepton.ai/node-class": node_class}))
    address: str = body["status"]["addresses"][0]["address"]
    return address


def add_job(
    kube: KubeClient,
    namespace: str,
    name: str,
    *,
    budget: dict[str, Any] | None = None,
    expected_duration_seconds: int | None = None,
    cost_profile: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "workers": 1,
        "template": {"spec": {"containers": [{"name": "main", "image": "example.com/train:1"}]}},
    }
    if budget is not None:
        spec["budget"] = budget
    if cost_profile is not None:
        spec["costProfile"] = cost_profile
    if expected_duration_seconds is not None:
        spec["expectedDurationSeconds"] = expected_duration_seconds
    body: dict[str, Any] = kube.create(
        {
            "apiVersion": API_VERSION,
            "kind": "LeptonJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
        namespace,
    )
    return body


def start_pod(
    kube: KubeClient,
    job: dict[str, Any],
    name: str,
    *,
    node_name: str,
    cpu: float,
    gpus: float,
    started_at: float,
) -> None:
    ns, job_name = job["metadata"]["namespace"], job["metadata"]["name"]
    requests: dict[str, str] = {"cpu": f"{cpu:g}"}
    limits: dict[str, str] = {}
    if gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = f"{gpus:g}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {LABEL_JOB: job_name},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "LeptonJob",
                    "name": job_name,
                    "uid": job["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [
                {"name": "main", "image": "example.com/train:1", "resources": {"requests": requests, "limits": limits}}
            ],
        },
    }
    kube.create(pod, ns)
    stamp = format_time(started_at)
    status = {
        "phase": "Running",
        "startTime": stamp,
        "containerStatuses": [
            {"name": "main", "ready": True, "restartCount": 0, "image": "", "state": {"running": {"startedAt": stamp}}}
        ],
    }
    kube.patch("pods", ns, name, {"status": status}, subresource="status")


def finish_pod(kube: KubeClient, namespace: str, name: str, *, started_at: float, finished_at: float) -> None:
    status = {
        "phase": "Succeeded",
        "containerStatuses": [
            {
                "name": "main",
                "ready": False,
                "restartCount": 0,
                "image": "",
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": format_time(started_at),
                        "finishedAt": format_time(finished_at),
                    }
                },
            }
        ],
    }
    kube.patch("pods", namespace, name, {"status": status}, subresource="status")
