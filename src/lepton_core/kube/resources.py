"""CPU, memory and GPUs of Kubernetes objects: a pod's effective requests and a node's allocatable.

One rule for the whole system, so that the operator's accounting charges a pod for exactly what the
scheduler extender placed it by. A pod's effective requests are what kube-scheduler's NodeResourcesFit
counts: max(Σ containers + sidecars, each init container + the sidecars started before it) + overhead,
where a sidecar is an init container with ``restartPolicy: Always``, and a container's missing request
defaults to its limit (the API server does that; objects read from files may not be defaulted). GPUs
are the extended resources in ``GPU_RESOURCES``, summed.

Neighbours: ``fields`` reads the values; ``objects`` (the extender's Pod and Node facts) and
``lepton_operator.accounting.inventory`` (what a job's pods are charged for) call ``pod_requests`` and
``node_allocatable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lepton_core.kube.fields import array, get, mapping, non_negative_quantity

GPU_RESOURCES: tuple[str, ...] = ("nvidia.com/gpu", "amd.com/gpu")
"""Extended resources counted as GPUs."""


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


def read_resources(value: Any, where: str, field: str = "") -> Resources:
    """A resource list (``{"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": 1}``) at ``where.field``;
    other resources are ignored."""
    m = mapping(value, where, field)
    cpu = mem = gpu = 0.0
    for name, q in m.items():
        if name == "cpu":
            cpu = non_negative_quantity(q, where, field, "cpu")
        elif name == "memory":
            mem = non_negative_quantity(q, where, field, "memory")
        elif name in GPU_RESOURCES:
            gpu += non_negative_quantity(q, where, field, name)
    return Resources(cpu, mem, gpu)


def container_requests(container: Any, where: str) -> Resources:
    """One container's requests, a missing request defaulting to the container's limit. (Read on the
    extender's hot path: exact keys and types first, inline, as in ``objects.read_pod``.)"""
    c = container if type(container) is dict else mapping(container, where)
    raw = c["resources"] if "resources" in c else get(c, "resources")
    res = raw if type(raw) is dict else mapping(raw, where, "resources")
    raw = res["requests"] if "requests" in res else get(res, "requests")
    requests = raw if type(raw) is dict else mapping(raw, where, "resources.requests")
    raw = res["limits"] if "limits" in res else get(res, "limits")
    limits = raw if type(raw) is dict else mapping(raw, where, "resources.limits")
    # The API server defaults a missing request to its limit; objects read from files may not be defaulted.
    merged = {**limits, **requests} if limits else requests
    return read_resources(merged, where, "resources.requests")


def pod_requests(spec: Mapping[str, Any], where: str) -> Resources:
    """A pod's effective requests from its ``spec`` (``where`` names the spec, e.g. ``Pod.spec``)."""
    raw = spec["containers"] if "containers" in spec else get(spec, "containers")
    containers = raw if type(raw) is list else array(raw, where, "containers")
    if len(containers) == 1:  # the common case: no sum to make
        total = container_requests(containers[0], f"{where}.containers[0]")
    else:
        total = Resources()
        for i, c in enumerate(containers):
            total = total + container_requests(c, f"{where}.containers[{i}]")
    raw = spec["initContainers"] if "initContainers" in spec else get(spec, "initContainers")
    inits = raw if type(raw) is list else array(raw, where, "initContainers")
    if inits:  # without init containers max(total, nothing) is total: skip the arithmetic
        sidecars = Resources()
        init_peak = Resources()
        for i, c in enumerate(inits):
            at = f"{where}.initContainers[{i}]"
            req = container_requests(c, at)
            if get(mapping(c, at), "restartPolicy") == "Always":  # a sidecar: runs alongside everything after it
                sidecars = sidecars + req
                init_peak = init_peak.max(sidecars)
            else:
                init_peak = init_peak.max(req + sidecars)
        total = (total + sidecars).max(init_peak)
    overhead = spec["overhead"] if "overhead" in spec else get(spec, "overhead")
    if overhead is not None:
        total = total + read_resources(overhead, where, "overhead")
    return total


def node_allocatable(status: Mapping[str, Any], where: str) -> Resources:
    """A node's allocatable from its ``status`` (its capacity where allocatable is absent)."""
    raw = get(status, "allocatable")
    if raw is None:
        raw = get(status, "capacity")
    return read_resources(raw, where, "allocatable")
