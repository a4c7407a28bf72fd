"""Kubernetes Pod and Node objects (plain JSON dicts) read into the few typed facts the extender uses.

Neighbours: ``lepton_extender.wire`` hands the request's Pod (and, without ``nodeCacheCapable``, its
Nodes) here; ``lepton_extender.inventory`` and ``lepton_extender.sources`` hand listed and watched objects
here; ``lepton_extender.snapshot`` stores the results. Fields are read through ``fields`` (case-insensitive
keys like Go's encoding/json; ``ObjectError`` naming the field by path,
``spec.containers[0].resources.requests.cpu``); requests and allocatable follow ``resources``, the rule
the operator's accounting charges by too.

``PodInfo.demand`` is the scoring input (``lepton_core.scoring.PodDemand``), so importing this module
loads the scoring package (numba included); the rest of ``lepton_core.kube`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lepton_core.kube.fields import ObjectError, array, get, mapping, string, string_map
from lepton_core.kube.resources import GPU_RESOURCES, Resources, node_allocatable, pod_requests
from lepton_core.scoring import PodDemand

__all__ = [
    "AUTOSCALED_LABEL",
    "CPU_BUSY_ANNOTATION",
    "GPU_BUSY_ANNOTATION",
    "GPU_RESOURCES",
    "POWER_CAP_ANNOTATION",
    "NodeInfo",
    "ObjectError",
    "PodInfo",
    "Resources",
    "get",
    "read_node",
    "read_pod",
]

AUTOSCALED_LABEL = "lepton.ai/autoscaled"
"""``"true"`` marks a node of an autoscaled pool (nodes with a Karpenter nodepool label count too)."""
_KARPENTER_LABELS = ("karpenter.sh/nodepool", "karpenter.sh/provisioner-name")
_SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
POWER_CAP_ANNOTATION = "lepton.ai/power-cap-watts"
"""Node annotation: the node's IT power cap in watts."""
CPU_BUSY_ANNOTATION = "lepton.ai/expected-cpu-utilization"
GPU_BUSY_ANNOTATION = "lepton.ai/expected-gpu-utilization"
"""Pod annotations: expected busy fraction of what the pod requests, [0, 1] (default 1)."""


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    """UID, or ``namespace/name`` when the object has none (files, tests)."""
    node_name: str | None
    phase: str
    requests: Resources
    """Effective requests: max(Σ containers + sidecars, each init container + sidecars before it) + overhead."""
    demand: PodDemand
    daemon: bool
    """Owned by a DaemonSet, or a static (mirror) pod: does not make a node non-empty."""

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _fraction_annotation(annotations: Mapping[str, str], key: str) -> float:
    raw = annotations.get(key)
    if raw is None:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ObjectError(f"metadata.annotations.{key}: expected a fraction in [0, 1], got {raw!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ObjectError(f"metadata.annotations.{key}: expected a fraction in [0, 1], got {raw!r}")
    return value


def read_pod(obj: Any, where: str = "Pod") -> PodInfo:
    """Read a v1.Pod; raise ``ObjectError`` naming the field on bad input.

    kube-scheduler sends a Pod with every request, so this runs on the extender's hot path: each field
    is read as ``d[key] if key in d else get(d, key)`` (the exact key first, as ``get`` does, without a
    call) and checked by type inline, falling back to the ``fields`` readers, which also word the
    errors, for everything else. Same answers as reading every field through them (tested).
    """
    pod = obj if type(obj) is dict else mapping(obj, where)
    if not pod:
        raise ObjectError(f"{where}: missing or empty")
    raw = pod["metadata"] if "metadata" in pod else get(pod, "metadata")
    meta = raw if type(raw) is dict else mapping(raw, where, "metadata")
    raw = pod["spec"] if "spec" in pod else get(pod, "spec")
    spec = raw if type(raw) is dict else mapping(raw, where, "spec")
    raw = pod["status"] if "status" in pod else get(pod, "status")
    status = raw if type(raw) is dict else mapping(raw, where, "status")
    raw = meta["namespace"] if "namespace" in meta else get(meta, "namespace")
    namespace = raw if type(raw) is str else string(raw, where, "default", "metadata.namespace")
    raw = meta["name"] if "name" in meta else get(meta, "name")
    name = raw if type(raw) is str else string(raw, where, field="metadata.name")
    if not name:
        name = string(get(meta, "generateName"), where, field="metadata.generateName")
    raw = meta["uid"] if "uid" in meta else get(meta, "uid")
    uid = (raw if type(raw) is str else string(raw, where, field="metadata.uid")) or f"{namespace}/{name}"
    raw = meta["annotations"] if "annotations" in meta else get(meta, "annotations")
    annotations = string_map(raw, where, "metadata.annotations") if raw is not None else {}
    effective = pod_requests(spec, f"{where}.spec")
    raw = meta["ownerReferences"] if "ownerReferences" in meta else get(meta, "ownerReferences")
    owners = raw if type(raw) is list else array(raw, where, "metadata.ownerReferences")
    daemon = any(isinstance(o, dict) and get(o, "kind") == "DaemonSet" for o in owners) or (
        "kubernetes.io/config.mirror" in annotations
    )
    demand = PodDemand(
        cpu_cores=effective.cpu_cores,
        memory_bytes=effective.memory_bytes,
        gpus=effective.gpus,
        cpu_busy_fraction=_fraction_annotation(annotations, CPU_BUSY_ANNOTATION) if annotations else 1.0,
        gpu_busy_fraction=_fraction_annotation(annotations, GPU_BUSY_ANNOTATION) if annotations else 1.0,
    )
    raw = spec["nodeName"] if "nodeName" in spec else get(spec, "nodeName")
    node_name = raw if type(raw) is str else string(raw, where, field="spec.nodeName")
    raw = status["phase"] if "phase" in status else get(status, "phase")
    return PodInfo(
        namespace=namespace,
        name=name,
        uid=uid,
        node_name=node_name or None,
        phase=raw if type(raw) is str else string(raw, where, field="status.phase"),
        requests=effective,
        demand=demand,
        daemon=daemon,
    )


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    allocatable: Resources
    autoscaled: bool
    power_cap_watts: float | None
    addresses: tuple[str, ...] = ()
    """``status.addresses`` (InternalIP, Hostname, …): how exporters may name the node."""


def read_node(obj: Any, where: str = "Node") -> NodeInfo:
    """Read a v1.Node; raise ``ObjectError`` naming the field on bad input."""
    node = mapping(obj, where)
    meta = mapping(get(node, "metadata"), f"{where}.metadata")
    name = string(get(meta, "name"), f"{where}.metadata.name")
    if not name:
        raise ObjectError(f"{where}.metadata.name: missing")
    labels = string_map(get(meta, "labels"), f"{where}.metadata.labels")
    annotations = string_map(get(meta, "annotations"), f"{where}.metadata.annotations")
    status = mapping(get(node, "status"), f"{where}.status")
    allocatable = node_allocatable(status, f"{where}.status")
    autoscaled = labels.get(AUTOSCALED_LABEL, "").lower() == "true" or any(k in labels for k in _KARPENTER_LABELS)
    if annotations.get(_SCALE_DOWN_DISABLED, "").lower() == "true":
        autoscaled = False
    cap: float | None = None
    if POWER_CAP_ANNOTATION in annotations:
        raw = annotations[POWER_CAP_ANNOTATION]
        try:
            cap = float(raw)
        except ValueError:
            cap = math.nan
        if not (math.isfinite(cap) and cap > 0.0):
            raise ObjectError(f"{where}.metadata.annotations.{POWER_CAP_ANNOTATION}: expected watts > 0, got {raw!r}")
    addresses = tuple(
        a["address"]
        for a in array(get(status, "addresses"), f"{where}.status.addresses")
        if isinstance(a, dict) and isinstance(a.get("address"), str)
    )
    return NodeInfo(
        name=name,
        labels=labels,
        allocatable=allocatable,
        autoscaled=autoscaled,
        power_cap_watts=cap,
        addresses=addresses,
    )
