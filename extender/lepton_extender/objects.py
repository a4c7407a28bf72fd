"""Kubernetes Pod and Node objects (plain JSON dicts) read into the few typed facts the extender uses.

Neighbours: ``wire`` hands the request's Pod (and, without ``nodeCacheCapable``, its Nodes) here;
``inventory`` and ``sources`` hand listed and watched objects here; ``snapshot`` stores the results.

Keys are the ordinary camelCase Kubernetes keys. Go's ``encoding/json``, which kube-scheduler and the
API server use, matches keys case-insensitively, so we do too (exact key first, then any casing).
Errors are ``ObjectError`` naming the field by path (``spec.containers[0].resources.requests.cpu``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lepton_core.scoring import PodDemand
from lepton_extender.quantity import QuantityError, parse_quantity

GPU_RESOURCES: tuple[str, ...] = ("nvidia.com/gpu", "amd.com/gpu")
"""Extended resources counted as GPUs."""
AUTOSCALED_LABEL = "lepton.ai/autoscaled"
"""``"true"`` marks a node of an autoscaled pool (nodes with a Karpenter nodepool label count too)."""
_KARPENTER_LABELS = ("karpenter.sh/nodepool", "karpenter.sh/provisioner-name")
_SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
POWER_CAP_ANNOTATION = "lepton.ai/power-cap-watts"
"""Node annotation: the node's IT power cap in watts."""
CPU_BUSY_ANNOTATION = "lepton.ai/expected-cpu-utilization"
GPU_BUSY_ANNOTATION = "lepton.ai/expected-gpu-utilization"
"""Pod annotations: expected busy fraction of what the pod requests, [0, 1] (default 1)."""


class ObjectError(ValueError):
    """A Kubernetes object that cannot be read; the message names the field."""


def get(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]`` matched like Go's encoding/json: exact key first, then case-insensitively."""
    if key in obj:
        return obj[key]
    lowered = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ObjectError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ObjectError(f"{where}: expected an array, got {_kind(value)}")
    return value


def _string(value: Any, where: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ObjectError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _labels(value: Any, where: str) -> dict[str, str]:
    m = _mapping(value, where)
    out: dict[str, str] = {}
    for k, v in m.items():
        if not isinstance(v, str):
            raise ObjectError(f"{where}.{k}: expected a string, got {_kind(v)}")
        out[k] = v
    return out


def _quantity(value: Any, where: str) -> float:
    try:
        q = parse_quantity(value)
    except QuantityError as exc:
        raise ObjectError(f"{where}: {exc}") from None
    if q < 0.0:
        raise ObjectError(f"{where}: must not be negative")
    return q


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_cores: float = 0.0
    memory_bytes: float = 0.0
    gpus: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_cores + other.cpu_cores, self.memory_bytes + other.memory_bytes, self.gpus + other.gpus
        )

    def max(self, other: Resources) -> Resources:
        return Resources(
            max(self.cpu_cores, other.cpu_cores), max(self.memory_bytes, other.memory_bytes), max(self.gpus, other.gpus)
        )


def _resource_list(value: Any, where: str) -> Resources:
    m = _mapping(value, where)
    cpu = mem = gpu = 0.0
    for name, q in m.items():
        if name == "cpu":
            cpu = _quantity(q, f"{where}.cpu")
        elif name == "memory":
            mem = _quantity(q, f"{where}.memory")
        elif name in GPU_RESOURCES:
            gpu += _quantity(q, f"{where}.{name}")
    return Resources(cpu, mem, gpu)


def _container_requests(container: Any, where: str) -> Resources:
    c = _mapping(container, where)
    res = _mapping(get(c, "resources"), f"{where}.resources")
    requests = _mapping(get(res, "requests"), f"{where}.resources.requests")
    limits = _mapping(get(res, "limits"), f"{where}.resources.limits")
    # The API server defaults a missing request to its limit; objects read from files may not be defaulted.
    merged = {**limits, **requests}
    return _resource_list(merged, f"{where}.resources.requests")


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
    """Read a v1.Pod; raise ``ObjectError`` naming the field on bad input."""
    pod = _mapping(obj, where)
    if not pod:
        raise ObjectError(f"{where}: missing or empty")
    meta = _mapping(get(pod, "metadata"), f"{where}.metadata")
    spec = _mapping(get(pod, "spec"), f"{where}.spec")
    status = _mapping(get(pod, "status"), f"{where}.status")
    namespace = _string(get(meta, "namespace"), f"{where}.metadata.namespace", "default")
    name = _string(get(meta, "name"), f"{where}.metadata.name") or _string(
        get(meta, "generateName"), f"{where}.metadata.generateName"
    )
    uid = _string(get(meta, "uid"), f"{where}.metadata.uid") or f"{namespace}/{name}"
    annotations = _labels(get(meta, "annotations"), f"{where}.metadata.annotations")
    total = Resources()
    for i, c in enumerate(_list(get(spec, "containers"), f"{where}.spec.containers")):
        total = total + _container_requests(c, f"{where}.spec.containers[{i}]")
    sidecars = Resources()
    init_peak = Resources()
    for i, c in enumerate(_list(get(spec, "initContainers"), f"{where}.spec.initContainers")):
        req = _container_requests(c, f"{where}.spec.initContainers[{i}]")
        policy = get(_mapping(c, f"{where}.spec.initContainers[{i}]"), "restartPolicy")
        if policy == "Always":  # a sidecar: runs alongside everything after it
            sidecars = sidecars + req
            init_peak = init_peak.max(sidecars)
        else:
            init_peak = init_peak.max(req + sidecars)
    effective = (total + sidecars).max(init_peak) + _resource_list(get(spec, "overhead"), f"{where}.spec.overhead")
    owners = _list(get(meta, "ownerReferences"), f"{where}.metadata.ownerReferences")
    daemon = any(isinstance(o, dict) and get(o, "kind") == "DaemonSet" for o in owners) or (
        "kubernetes.io/config.mirror" in annotations
    )
    demand = PodDemand(
        cpu_cores=effective.cpu_cores,
        memory_bytes=effective.memory_bytes,
        gpus=effective.gpus,
        cpu_busy_fraction=_fraction_annotation(annotations, CPU_BUSY_ANNOTATION),
        gpu_busy_fraction=_fraction_annotation(annotations, GPU_BUSY_ANNOTATION),
    )
    return PodInfo(
        namespace=namespace,
        name=name,
        uid=uid,
        node_name=_string(get(spec, "nodeName"), f"{where}.spec.nodeName") or None,
        phase=_string(get(status, "phase"), f"{where}.status.phase"),
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
    node = _mapping(obj, where)
    meta = _mapping(get(node, "metadata"), f"{where}.metadata")
    name = _string(get(meta, "name"), f"{where}.metadata.name")
    if not name:
        raise ObjectError(f"{where}.metadata.name: missing")
    labels = _labels(get(meta, "labels"), f"{where}.metadata.labels")
    annotations = _labels(get(meta, "annotations"), f"{where}.metadata.annotations")
    status = _mapping(get(node, "status"), f"{where}.status")
    alloc_raw = get(status, "allocatable")
    if alloc_raw is None:
        alloc_raw = get(status, "capacity")
    allocatable = _resource_list(alloc_raw, f"{where}.status.allocatable")
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
        for a in _list(get(status, "addresses"), f"{where}.status.addresses")
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
