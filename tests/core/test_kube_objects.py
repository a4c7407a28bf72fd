"""``lepton_core.kube.objects.read_pod`` reads the fields kube-scheduler sends with exact keys and types
inline (it runs once per extender request); whatever the Pod holds, it must answer exactly what reading
every field through the ``fields`` readers answers: the same ``PodInfo``, or the same error naming the
same field. The reference below is that plain reading."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_core.kube.fields import ObjectError, array, get, mapping, string, string_map
from lepton_core.kube.objects import (
    CPU_BUSY_ANNOTATION,
    GPU_BUSY_ANNOTATION,
    PodInfo,
    _fraction_annotation,
    read_pod,
)
from lepton_core.kube.resources import Resources, read_resources
from lepton_core.scoring import PodDemand
from tests.extender import fixtures as fx
from tests.extender.strategies import json_values


def _container(container: Any, where: str) -> Resources:
    c = mapping(container, where)
    res = mapping(get(c, "resources"), where, "resources")
    requests = mapping(get(res, "requests"), where, "resources.requests")
    limits = mapping(get(res, "limits"), where, "resources.limits")
    return read_resources({**limits, **requests} if limits else requests, where, "resources.requests")


def _requests(spec: dict[str, Any], where: str) -> Resources:
    total = Resources()
    for i, c in enumerate(array(get(spec, "containers"), where, "containers")):
        total = total + _container(c, f"{where}.containers[{i}]")
    sidecars = Resources()
    peak = Resources()
    for i, c in enumerate(array(get(spec, "initContainers"), where, "initContainers")):
        at = f"{where}.initContainers[{i}]"
        req = _container(c, at)
        if get(mapping(c, at), "restartPolicy") == "Always":
            sidecars = sidecars + req
            peak = peak.max(sidecars)
        else:
            peak = peak.max(req + sidecars)
    total = (total + sidecars).max(peak)
    overhead = get(spec, "overhead")
    return total if overhead is None else total + read_resources(overhead, where, "overhead")


def _reference_read_pod(obj: Any, where: str = "Pod") -> PodInfo:
    """Every field through the ``fields`` readers, one after the other."""
    pod = mapping(obj, where)
    if not pod:
        raise ObjectError(f"{where}: missing or empty")
    meta = mapping(get(pod, "metadata"), where, "metadata")
    spec = mapping(get(pod, "spec"), where, "spec")
    status = mapping(get(pod, "status"), where, "status")
    namespace = string(get(meta, "namespace"), where, "default", "metadata.namespace")
    name = string(get(meta, "name"), where, field="metadata.name") or string(
        get(meta, "generateName"), where, field="metadata.generateName"
    )
    uid = string(get(meta, "uid"), where, field="metadata.uid") or f"{namespace}/{name}"
    annotations = string_map(get(meta, "annotations"), where, "metadata.annotations")
    effective = _requests(spec, f"{where}.spec")
    owners = array(get(meta, "ownerReferences"), where, "metadata.ownerReferences")
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
        node_name=string(get(spec, "nodeName"), where, field="spec.nodeName") or None,
        phase=string(get(status, "phase"), where, field="status.phase"),
        requests=effective,
        demand=demand,
        daemon=daemon,
    )


def _rich_pod() -> dict[str, Any]:
    """Sidecars, init containers, overhead, owners, annotations: every branch the reader has."""
    pod = fx.pod("rich", gpus=2, daemon=True, annotations={CPU_BUSY_ANNOTATION: "0.5"}, node_name="n0")
    spec = pod["spec"]
    spec["containers"].append({"name": "b", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}})
    spec["initContainers"] = [
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}},
        {"name": "init", "resources": {"requests": {"cpu": "8", "nvidia.com/gpu": "1"}}},
    ]
    spec["overhead"] = {"cpu": "100m", "memory": "64Mi"}
    return pod


BASES = [fx.pod("p", gpus=1), fx.pod("q", cpu=None, memory="2Gi"), _rich_pod()]


@st.composite
def pods(draw: st.DrawFn) -> Any:
    """A Pod with one subtree replaced by any JSON value, or one key spelled in another case."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    target: Any = doc
    for step in draw(st.lists(st.integers(0, 50), max_size=6)):
        if isinstance(target, dict) and target:
            key = sorted(target)[step % len(target)]
            if draw(st.booleans()) and not isinstance(target[key], dict | list):
                if draw(st.booleans()):
                    target[key.upper() if key != key.upper() else key.lower()] = target.pop(key)
                else:
                    target[key] = draw(json_values)
                return doc
            target = target[key]
        elif isinstance(target, list) and target:
            target = target[step % len(target)]
    if isinstance(target, dict) and target and draw(st.booleans()):
        target[sorted(target)[0]] = draw(json_values)
    return doc


def _outcome(reader: Any, doc: Any) -> tuple[str, Any]:
    try:
        return ("read", reader(doc))
    except ObjectError as exc:
        return ("error", str(exc))


@given(pods())
@settings(max_examples=400)
def test_read_pod_answers_what_reading_every_field_in_turn_answers(doc: Any) -> None:
    assert _outcome(read_pod, doc) == _outcome(_reference_read_pod, doc)


def test_the_mutations_reach_both_outcomes() -> None:
    """The property above is only as good as its inputs: the bases read, and a wrong type is an error."""
    assert all(_outcome(read_pod, b)[0] == "read" for b in BASES)
    broken = copy.deepcopy(BASES[2])
    broken["spec"]["initContainers"][1]["resources"]["requests"]["cpu"] = "eight"
    kind, message = _outcome(read_pod, broken)
    assert kind == "error" and message.startswith("Pod.spec.initContainers[1].resources.requests.cpu")
