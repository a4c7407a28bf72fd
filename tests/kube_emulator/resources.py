"""What the emulated API server serves: built-in resource kinds, and custom ones from CRDs.

``ResourceInfo`` carries what discovery reports (kind, scope, verbs, short names, subresources) plus what
the store needs (field selectors it supports, the openAPIV3Schema of a custom resource). Built-ins are
the ones kopf and the Lepton operator touch: namespaces, pods (with ``status`` and ``binding``),
services, events, nodes, priorityclasses, leases and customresourcedefinitions. Creating a CRD object
serves its kind (``crd_resources``), as on a real cluster.

``KOPF_PEERING_CRDS`` are kopf's peering CRDs, for tests of high availability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    field_selectors: frozenset[str] = _COMMON_FIELDS
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """openAPIV3Schema of a custom resource (validation, defaulting, pruning); None for built-ins."""
    custom: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def verbs(self) -> tuple[str, ...]:
        return _ALL_VERBS

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


def _core(
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    sub: frozenset[str] = frozenset(),
    fields: frozenset[str] = frozenset(),
) -> ResourceInfo:
    return ResourceInfo("", "v1", plural, kind, namespaced, kind.lower(), short, (), sub, _COMMON_FIELDS | fields)


BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    _core(
        "namespaces",
        "Namespace",
        namespaced=False,
        short=("ns",),
        sub=frozenset({"status"}),
        fields=frozenset({"status.phase"}),
    ),
    _core(
        "pods",
        "Pod",
        short=("po",),
        sub=frozenset({"status", "binding"}),
        fields=frozenset(
            {
                "spec.nodeName",
                "spec.schedulerName",
                "spec.restartPolicy",
                "spec.serviceAccountName",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            }
        ),
    ),
    _core("services", "Service", short=("svc",), sub=frozenset({"status"})),
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core(
        "events",
        "Event",
        short=("ev",),
        fields=frozenset(
            {
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            }
        ),
    ),
    _core(
        "nodes",
        "Node",
        namespaced=False,
        short=("no",),
        sub=frozenset({"status"}),
        fields=frozenset({"spec.unschedulable"}),
    ),
    ResourceInfo("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, "priorityclass", ("pc",)),
    ResourceInfo("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    ResourceInfo(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        "customresourcedefinition",
        ("crd", "crds"),
        (),
        frozenset({"status"}),
    ),
)


def crd_resources(crd: dict[str, Any]) -> list[ResourceInfo]:
    """The served versions of a CustomResourceDefinition object, as resources."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    result = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = frozenset((version.get("subresources") or {}).keys())
        result.append(
            ResourceInfo(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                subresources=subresources,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                custom=True,
            )
        )
    return result


def _peering_crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                        }
                    },
                }
            ],
        },
    }


KOPF_PEERING_CRDS: tuple[dict[str, Any], ...] = (
    _peering_crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
    _peering_crd("KopfPeering", "kopfpeerings", "Namespaced"),
)
