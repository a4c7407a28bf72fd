"""Kubernetes objects for the extender tests, written from the upstream types (k8s.io/api core/v1 and
k8s.io/kube-scheduler/extender/v1): camelCase object keys, Go field names on the envelopes."""

from __future__ import annotations

from typing import Any

GIB = 2**30


def node(
    name: str,
    *,
    cpu: str = "64",
    memory: str = "256Gi",
    gpus: int = 0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A v1.Node as the API server serializes it (what kube-scheduler forwards without nodeCacheCapable)."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
            "annotations": annotations or {},
        },
        "spec": {"podCIDR": "10.0.0.0/24"},
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.30.0", "architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def pod(
    name: str,
    *,
    cpu: str | None = "1",
    memory: str | None = "1Gi",
    gpus: int = 0,
    node_name: str | None = None,
    namespace: str = "default",
    daemon: bool = False,
    phase: str = "Pending",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    limits: dict[str, str] = {}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
        requests["nvidia.com/gpu"] = str(gpus)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "annotations": annotations or {},
    }
    if daemon:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "ds-uid"}]
    spec: dict[str, Any] = {
        "schedulerName": "lepton-scheduler",
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": requests, "limits": limits}}],
    }
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def node_list(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": list(nodes)}


def args_names(p: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """ExtenderArgs as kube-scheduler sends it with nodeCacheCapable: true."""
    return {"Pod": p, "Nodes": None, "NodeNames": names}


def args_nodes(p: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """ExtenderArgs as kube-scheduler sends it with nodeCacheCapable: false (a v1.NodeList, no kind)."""
    return {"Pod": p, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None}
