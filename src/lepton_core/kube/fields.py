"""Reading fields of Kubernetes objects (plain JSON dicts): typed values or an error naming the field.

Keys are the ordinary camelCase Kubernetes keys. Go's ``encoding/json``, which kube-scheduler and the
API server use, matches keys case-insensitively, so ``get`` does too (exact key first, then any casing).
Every reader takes ``where``, the field's path (``Pod.spec.containers[0].resources.requests.cpu``), and
raises ``ObjectError`` starting with it; an absent (null) object, array or string reads as empty.

Neighbours: ``resources`` (resource lists, effective pod requests) and ``objects`` (Pods and Nodes for
the extender) read through these; ``quantity`` parses the quantities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lepton_core.kube.quantity import QuantityError, parse_quantity


class ObjectError(ValueError):
    """A Kubernetes object that cannot be read; the message names the field."""


# Field names of the objects the readers walk (ObjectMeta, Pod, PodSpec, Container, ResourceRequirements,
# PodStatus, Node, NodeSpec, NodeStatus, the extender envelope), spelled as Kubernetes writes them. No two
# differ only by case (tested), so when every key of an object is one of these and the key asked for is
# too, a key that is not there exactly is not there in any casing: ``get`` answers None without lowering
# and comparing every key of the object (optional fields are often absent: 4 per Pod kube-scheduler sends).
KNOWN_FIELDS = frozenset(
    (
        # objects and lists; the extender envelope
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
        "items",
        "Pod",
        "Nodes",
        "NodeNames",
        # ObjectMeta
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
        # PodSpec
        "volumes",
        "initContainers",
        "containers",
        "ephemeralContainers",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "dnsPolicy",
        "nodeSelector",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "nodeName",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "securityContext",
        "imagePullSecrets",
        "hostname",
        "subdomain",
        "affinity",
        "schedulerName",
        "tolerations",
        "hostAliases",
        "priorityClassName",
        "priority",
        "dnsConfig",
        "readinessGates",
        "runtimeClassName",
        "enableServiceLinks",
        "preemptionPolicy",
        "overhead",
        "topologySpreadConstraints",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        "schedulingGates",
        "resourceClaims",
        "resources",
        # Container, ResourceRequirements
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resizePolicy",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "stdin",
        "stdinOnce",
        "tty",
        "limits",
        "requests",
        "claims",
        # PodStatus
        "phase",
        "conditions",
        "message",
        "reason",
        "nominatedNodeName",
        "hostIP",
        "hostIPs",
        "podIP",
        "podIPs",
        "startTime",
        "initContainerStatuses",
        "containerStatuses",
        "qosClass",
        "ephemeralContainerStatuses",
        "resize",
        "resourceClaimStatuses",
        # NodeSpec, NodeStatus
        "podCIDR",
        "podCIDRs",
        "providerID",
        "unschedulable",
        "taints",
        "capacity",
        "allocatable",
        "addresses",
        "daemonEndpoints",
        "nodeInfo",
        "images",
        "volumesInUse",
        "volumesAttached",
        "config",
        "runtimeHandlers",
    )
)


def get(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]`` matched like Go's encoding/json: exact key first, then case-insensitively."""
    if key in obj:
        return obj[key]
    if key in KNOWN_FIELDS and obj.keys() <= KNOWN_FIELDS:
        return None  # every key is a known field as Kubernetes spells it: no other casing of ``key``
    lowered = key.lower()
    for k in obj:
        if k.lower() == lowered:  # JSON object keys are strings
            return obj[k]
    return None


def json_kind(value: Any) -> str:
    """What kind of JSON value this is, for messages: ``an object``, ``an array``, ``a string``, …"""
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def path(where: str, field: str = "") -> str:
    """``where.field`` (just ``where`` without a field). Readers build paths only for their errors: a
    request's Pod is read on kube-scheduler's hot path, and formatting every path cost more than reading."""
    return f"{where}.{field}" if field else where


def mapping(value: Any, where: str, field: str = "") -> Mapping[str, Any]:
    """A JSON object (null reads as empty); errors name ``where.field``."""
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ObjectError(f"{path(where, field)}: expected an object, got {json_kind(value)}")
    return value


def array(value: Any, where: str, field: str = "") -> list[Any]:
    """A JSON array (null reads as empty); errors name ``where.field``."""
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise ObjectError(f"{path(where, field)}: expected an array, got {json_kind(value)}")
    return value


def string(value: Any, where: str, default: str = "", field: str = "") -> str:
    """A JSON string (null reads as ``default``); errors name ``where.field``."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise ObjectError(f"{path(where, field)}: expected a string, got {json_kind(value)}")
    return value


def string_map(value: Any, where: str, field: str = "") -> dict[str, str]:
    """An object of strings: labels, annotations; errors name ``where.field``."""
    m = mapping(value, where, field)
    out: dict[str, str] = {}
    for k, v in m.items():
        if not isinstance(v, str):
            raise ObjectError(f"{path(where, field)}.{k}: expected a string, got {json_kind(v)}")
        out[k] = v
    return out


def non_negative_quantity(value: Any, where: str, field: str = "", key: str = "") -> float:
    """A non-negative Kubernetes quantity in base units (cores, bytes, devices); errors name
    ``where.field.key`` (``key``: an entry of a resource list, e.g. ``cpu``)."""
    try:
        q = parse_quantity(value)
    except QuantityError as exc:
        raise ObjectError(f"{path(path(where, field), key)}: {exc}") from None
    if q < 0.0:
        raise ObjectError(f"{path(path(where, field), key)}: must not be negative")
    return q
