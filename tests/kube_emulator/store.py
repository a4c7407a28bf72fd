"""The emulated API server's state: objects, resourceVersions, watches and garbage collection.

Kubernetes semantics kept here (and relied on by kopf and the Lepton operator):

* one cluster-wide ``resourceVersion`` counter, bumped by every write; no-op writes bump nothing and
  emit no event; ``uid``, ``creationTimestamp`` and ``generation`` are set on create, ``generation``
  grows when anything outside ``metadata``/``status`` changes;
* optimistic concurrency: a ``metadata.resourceVersion`` in an update or merge patch that is not the
  current one is a 409 Conflict; a failed JSON-patch ``test`` is a 422;
* the ``status`` subresource: writes to the main resource ignore ``status``, writes to ``/status``
  ignore everything else; pods get ``binding`` (refused while scheduling gates remain) and may only
  change the fields Kubernetes lets them change (gates can only be removed);
* custom resources are defaulted, pruned and validated against their CRD (schema + CEL, ``schema``);
* deletion honours finalizers (``deletionTimestamp`` first, removal when the last finalizer goes), the
  ``Background``/``Foreground``/``Orphan`` propagation policies through ``ownerReferences``, and
  namespace deletion;
* watches: ``resourceVersion`` resumes from history (410 Gone once compacted), absent/``0`` starts with
  synthetic ADDED events, ``sendInitialEvents`` ends them with the initial-events-end BOOKMARK,
  selectors filter (an object leaving a selector is DELETED for that watch, one entering is ADDED), and
  BOOKMARKs are sent when asked. Nothing is replayed twice.

Differences from a real API server (see docs/notes/kube-emulator.md): garbage collection and namespace
cleanup are synchronous, pods vanish at once when deleted (no kubelet grace period), list continuation
serves the current state rather than a snapshot, and only the patch strategies in ``patches`` exist.

Everything here is synchronous and runs on the emulator's event loop thread, so each call is atomic.
"""

from __future__ import annotations

import base64
import collections
import copy
import datetime
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.kube_emulator import patches, schema
from tests.kube_emulator.errors import ApiError
from tests.kube_emulator.resources import BUILTIN_RESOURCES, ResourceInfo, crd_resources
from tests.kube_emulator.selectors import (
    FieldRequirement,
    Requirement,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

ResourceKey = tuple[str, str, str]
ObjectKey = tuple[str, str]  # (namespace or "", name)
Body = dict[str, Any]
Listener = Callable[[str, ResourceInfo, Body, Body | None], None]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_POD_MUTABLE_SPEC = ("schedulingGates", "activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Body) -> Body:
    meta: Body = obj.setdefault("metadata", {})
    return meta


@dataclass(eq=False)
class Watch:
    """An open watch stream: the events that pass its filters, already encoded as JSON lines."""

    info: ResourceInfo
    namespace: str | None
    labels: tuple[Requirement, ...]
    fields: tuple[FieldRequirement, ...]
    bookmarks: bool
    queue: collections.deque[bytes] = field(default_factory=collections.deque)
    wakeup: Callable[[], None] | None = None
    closed: bool = False

    def matches(self, obj: Body | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def offer(self, event_type: str, obj: Body, old: Body | None, line: bytes) -> None:
        now_in, was_in = self.matches(obj), self.matches(old)
        if (event_type == "ADDED" and now_in) or (event_type == "DELETED" and (now_in or was_in)):
            self._push(line)
        elif event_type == "MODIFIED":
            if now_in and was_in:
                self._push(line)
            elif now_in:
                self._push(encode_event("ADDED", obj))
            elif was_in:
                self._push(encode_event("DELETED", obj))

    def _push(self, line: bytes) -> None:
        self.queue.append(line)
        if self.wakeup is not None:
            self.wakeup()


def encode_event(event_type: str, obj: Body) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


@dataclass
class _History:
    """Recent events of one resource, for watches that resume from a resourceVersion."""

    limit: int
    events: collections.deque[tuple[int, str, Body, Body | None, bytes]] = field(default_factory=collections.deque)
    compacted_rv: int = 0
    """Events at or below this resourceVersion are gone; resuming from older ones is 410 Gone."""

    def append(self, rv: int, event_type: str, obj: Body, old: Body | None, line: bytes) -> None:
        self.events.append((rv, event_type, obj, old, line))
        while len(self.events) > self.limit:
            self.compacted_rv = self.events.popleft()[0]


class Store:
    def __init__(self, *, history_limit: int = 100_000, cel: bool = True) -> None:
        self._rv = 0
        self._cel = cel
        self._history_limit = history_limit
        self._resources: dict[ResourceKey, ResourceInfo] = {}
        self._objects: dict[ResourceKey, dict[ObjectKey, Body]] = {}
        self._history: dict[ResourceKey, _History] = {}
        self._watches: dict[ResourceKey, set[Watch]] = collections.defaultdict(set)
        self._by_uid: dict[str, tuple[ResourceKey, ObjectKey]] = {}
        self._dependents: dict[str, set[tuple[ResourceKey, ObjectKey]]] = collections.defaultdict(set)
        self._listeners: list[Listener] = []
        self.writes = 0
        """Successful writes (create, update, patch, delete) served so far: the API write load."""
        for info in BUILTIN_RESOURCES:
            self.serve(info)
        for name in ("default", "kube-system"):
            self.create(self.resource("", "v1", "namespaces"), None, {"metadata": {"name": name}})

    # --- resources -----------------------------------------------------------------------------------
    def serve(self, info: ResourceInfo) -> None:
        self._resources[info.key] = info
        self._objects.setdefault(info.key, {})
        self._history.setdefault(info.key, _History(self._history_limit))

    def unserve(self, key: ResourceKey) -> None:
        for watch in list(self._watches.pop(key, ())):
            self.close_watch(watch)
        for obj in list(self._objects.get(key, {}).values()):
            self._forget(obj)
        self._resources.pop(key, None)
        self._objects.pop(key, None)
        self._history.pop(key, None)

    def resources(self) -> list[ResourceInfo]:
        return list(self._resources.values())

    def resource(self, group: str, version: str, plural: str) -> ResourceInfo:
        info = self._resources.get((group, version, plural))
        if info is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return info

    def find_resource(self, plural_or_kind: str) -> ResourceInfo:
        """A resource by plural, kind or short name (for tests and helpers)."""
        wanted = plural_or_kind.lower()
        for info in self._resources.values():
            if wanted in (info.plural, info.kind.lower(), info.singular, *info.short_names):
                return info
        raise KeyError(plural_or_kind)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(type, info, obj, old)`` after every change (used by the autopilot)."""
        self._listeners.append(listener)

    @property
    def resource_version(self) -> int:
        return self._rv

    # --- reads ---------------------------------------------------------------------------------------
    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Body:
        obj = self._objects[info.key].get(self._okey(info, namespace, name))
        if obj is None:
            raise ApiError.not_found(info.plural, name, info.group)
        return obj

    def try_get(self, info: ResourceInfo, namespace: str | None, name: str) -> Body | None:
        return self._objects[info.key].get(self._okey(info, namespace, name))

    def items(self, info: ResourceInfo, namespace: str | None = None) -> list[Body]:
        objs = self._objects[info.key]
        return [obj for (ns, _), obj in sorted(objs.items()) if namespace is None or ns == namespace]

    def list(self, info: ResourceInfo, namespace: str | None, params: dict[str, str]) -> Body:
        labels = parse_label_selector(params.get("labelSelector"))
        fields = parse_field_selector(params.get("fieldSelector"), info.field_selectors)
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 0
        start: list[str] | None = None
        if params.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(params["continue"].encode()))
                start, list_rv = token["start"], int(token["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError.bad_request(f"continue: invalid token ({exc})") from exc
            if list_rv < self._history[info.key].compacted_rv:
                raise ApiError.gone("The provided continue parameter is too old to display a consistent list result.")
        matching: list[Body] = []
        more = False
        for (ns, name), obj in sorted(self._objects[info.key].items()):
            if start is not None and [ns, name] <= start:
                continue
            if namespace is not None and ns != namespace:
                continue
            if not (labels_match(labels, obj) and fields_match(fields, obj)):
                continue
            if limit and len(matching) >= limit:
                more = True
                break
            matching.append(obj)
        metadata: Body = {"resourceVersion": str(self._rv)}
        if more:
            last = matching[-1]["metadata"]
            token = {"rv": self._rv, "start": [last.get("namespace", ""), last["name"]]}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            metadata["remainingItemCount"] = 0  # not computed; clients only test it for presence
        return {"kind": f"{info.kind}List", "apiVersion": info.api_version, "metadata": metadata, "items": matching}

    # --- watches -------------------------------------------------------------------------------------
    def open_watch(self, info: ResourceInfo, namespace: str | None, params: dict[str, str]) -> Watch:
        """Register a watch whose queue already holds what precedes live events (atomic).

        A resourceVersion older than the retained history yields a closed watch holding one ERROR event
        with a 410 Status, which is how the API server reports an expired watch.
        """
        labels = parse_label_selector(params.get("labelSelector"))
        fields = parse_field_selector(params.get("fieldSelector"), info.field_selectors)
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        watch = Watch(info, namespace, labels, fields, bookmarks)
        since = params.get("resourceVersion", "")
        initial_events = params.get("sendInitialEvents") in ("true", "1")
        if since in ("", "0") or initial_events:
            for obj in self._objects[info.key].values():
                if watch.matches(obj):
                    watch.queue.append(encode_event("ADDED", obj))
            if initial_events and bookmarks:
                watch.queue.append(self.bookmark_line(info, initial_events_end=True))
        else:
            if not since.isdigit():
                raise ApiError.bad_request(f"resourceVersion: invalid value {since!r}")
            history = self._history[info.key]
            if int(since) < history.compacted_rv:
                status = ApiError.gone(f"too old resource version: {since} ({history.compacted_rv + 1})").status()
                watch.queue.append(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                watch.closed = True
                return watch
            for rv, event_type, obj, old, line in history.events:
                if rv > int(since):
                    watch.offer(event_type, obj, old, line)
        self._watches[info.key].add(watch)
        return watch

    def close_watch(self, watch: Watch) -> None:
        watch.closed = True
        self._watches.get(watch.info.key, set()).discard(watch)
        if watch.wakeup is not None:
            watch.wakeup()

    def bookmark_line(self, info: ResourceInfo, *, initial_events_end: bool = False) -> bytes:
        metadata: Body = {"resourceVersion": str(self._rv)}
        if initial_events_end:
            metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
        return encode_event("BOOKMARK", {"kind": info.kind, "apiVersion": info.api_version, "metadata": metadata})

    def compact(self) -> None:
        """Forget all history (as etcd compaction does): resuming watches get 410 Gone."""
        for history in self._history.values():
            history.events.clear()
            history.compacted_rv = self._rv

    def _emit(self, event_type: str, info: ResourceInfo, obj: Body, old: Body | None) -> None:
        line = encode_event(event_type, obj)
        self._history[info.key].append(self._rv, event_type, obj, old, line)
        for watch in list(self._watches.get(info.key, ())):
            watch.offer(event_type, obj, old, line)
        for listener in list(self._listeners):
            listener(event_type, info, obj, old)

    # --- writes --------------------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @staticmethod
    def _okey(info: ResourceInfo, namespace: str | None, name: str) -> ObjectKey:
        return ((namespace or "") if info.namespaced else "", name)

    def create(self, info: ResourceInfo, namespace: str | None, body: Any) -> Body:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = _meta(obj)
        if obj.get("kind") not in (None, info.kind) or obj.get("apiVersion") not in (None, info.api_version):
            raise ApiError.bad_request(
                f"the body is a {obj.get('apiVersion')}/{obj.get('kind')}, but the URL is for {info.api_version}/"
                f"{info.kind}"
            )
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        if info.namespaced:
            if namespace and meta.get("namespace") not in (None, namespace):
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise ApiError.bad_request("metadata.namespace: a namespaced object needs a namespace")
            namespace_obj = self.try_get(self.resource("", "v1", "namespaces"), None, namespace)
            if namespace_obj is None:
                raise ApiError.not_found("namespaces", namespace)
            if namespace_obj["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403,
                    "Forbidden",
                    f"unable to create new content in namespace {namespace} because it is being terminated",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_GENERATE_ALPHABET, k=5))
        name = meta.get("name")
        if not name:
            raise ApiError.invalid(
                info.kind,
                "",
                [("metadata.name", "metadata.name: Required value: name or generateName is required")],
                info.group,
            )
        self._check_name(info, name)
        okey = self._okey(info, namespace, name)
        if okey in self._objects[info.key]:
            raise ApiError.already_exists(info.plural, name, info.group)
        for managed in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
            meta.pop(managed, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        obj = self._admit_create(info, obj)
        _meta(obj)["resourceVersion"] = self._next_rv()
        self._objects[info.key][okey] = obj
        self._index(info, obj)
        self.writes += 1
        self._emit("ADDED", info, obj, None)
        if info.key == ("apiextensions.k8s.io", "v1", "customresourcedefinitions"):
            for served in crd_resources(obj):
                self.serve(served)
        return obj

    def _check_name(self, info: ResourceInfo, name: str) -> None:
        pattern, what = _DNS_SUBDOMAIN, "a lowercase RFC 1123 subdomain"
        if info.plural in ("namespaces",):
            pattern, what = _DNS_LABEL, "a lowercase RFC 1123 label"
        if info.plural in ("services",):
            pattern, what = _DNS_1035, "a DNS-1035 label"
        if len(name) > 253 or not pattern.match(name) or (pattern is not _DNS_SUBDOMAIN and len(name) > 63):
            raise ApiError.invalid(
                info.kind,
                name,
                [("metadata.name", f'metadata.name: Invalid value: "{name}": must be {what}')],
                info.group,
            )

    def _admit_create(self, info: ResourceInfo, obj: Body) -> Body:
        """Resource-specific defaulting and validation on create."""
        name = obj["metadata"]["name"]
        if info.custom:
            if "status" in info.subresources:
                obj.pop("status", None)
            obj = self._admit_custom(info, obj, None)
        elif info.plural == "pods":
            spec = obj.get("spec") or {}
            containers = spec.get("containers")
            causes = []
            if not isinstance(containers, list) or not containers:
                causes.append(("spec.containers", "spec.containers: Required value"))
            else:
                for n, c in enumerate(containers):
                    for required in ("name", "image"):
                        if not (isinstance(c, dict) and c.get(required)):
                            causes.append(
                                (f"spec.containers[{n}].{required}", f"spec.containers[{n}].{required}: Required value")
                            )
            if causes:
                raise ApiError.invalid("Pod", name, causes)
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("restartPolicy", "Always")
            conditions = []
            if spec.get("schedulingGates"):
                conditions.append(
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "SchedulingGated",
                        "message": "Scheduling is blocked due to non-empty scheduling gates",
                        "lastTransitionTime": now_rfc3339(),
                    }
                )
            obj["status"] = {"phase": "Pending", "conditions": conditions, "qosClass": "BestEffort"}
        elif info.plural == "services":
            spec = obj.setdefault("spec", {})
            if spec.get("clusterIP") != "None":
                spec["clusterIP"] = f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
        elif info.plural == "namespaces":
            obj["status"] = {"phase": "Active"}
        elif info.plural == "customresourcedefinitions":
            self._admit_crd(obj)
        return obj

    def _admit_crd(self, obj: Body) -> None:
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        name = obj["metadata"]["name"]
        causes: list[tuple[str, str]] = []
        if name != f"{names.get('plural')}.{spec.get('group')}":
            causes.append(
                ("metadata.name", f'metadata.name: Invalid value: {name!r}: must be spec.names.plural+"."+spec.group')
            )
        for n, version in enumerate(spec.get("versions") or []):
            open_api = (version.get("schema") or {}).get("openAPIV3Schema")
            if open_api is None:
                causes.append(
                    (
                        f"spec.versions[{n}].schema.openAPIV3Schema",
                        f"spec.versions[{n}].schema.openAPIV3Schema: Required value",
                    )
                )
                continue
            for problem in schema.structural_problems(open_api):
                causes.append(
                    (
                        f"spec.versions[{n}].schema.openAPIV3Schema",
                        f"spec.versions[{n}].schema.openAPIV3Schema: {problem}",
                    )
                )
        if causes:
            raise ApiError.invalid("CustomResourceDefinition", name, causes, "apiextensions.k8s.io")
        obj["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "lastTransitionTime": now_rfc3339(),
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "lastTransitionTime": now_rfc3339(),
                },
            ],
        }

    def _admit_custom(self, info: ResourceInfo, obj: Body, old: Body | None) -> Body:
        if info.schema is None:
            return obj
        obj = schema.prune(info.schema, schema.apply_defaults(info.schema, obj))
        errors = schema.validate(info.schema, obj, old, cel=self._cel)
        if errors:
            raise ApiError.invalid(info.kind, obj["metadata"].get("name", ""), errors, info.group)
        return obj

    def replace(self, info: ResourceInfo, namespace: str | None, name: str, body: Any, subresource: str | None) -> Body:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        old = self.get(info, namespace, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if not rv and info.custom:
            raise ApiError.invalid(
                info.kind,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    )
                ],
                info.group,
            )
        self._check_precondition(info, old, rv)
        return self._commit(info, old, copy.deepcopy(body), subresource)

    def patch(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        content_type: str,
        subresource: str | None = None,
    ) -> Body:
        old = self.get(info, namespace, name)
        kind = content_type.split(";", maxsplit=1)[0].strip().lower()
        try:
            if kind == "application/merge-patch+json":
                new = patches.merge_patch(old, body)
            elif kind == "application/json-patch+json":
                new = patches.json_patch(old, body)
            elif kind == "application/strategic-merge-patch+json":
                if info.custom:
                    raise ApiError.unsupported_media_type(
                        "strategic merge patch is not supported for custom resources; use a merge or JSON patch"
                    )
                new = patches.strategic_merge_patch(old, body)
            elif kind == "application/apply-patch+yaml":
                raise ApiError.unsupported_media_type("server-side apply is not supported by the emulator")
            else:
                raise ApiError.unsupported_media_type(
                    f"the body of the request was in an unknown format - "
                    f"accepted media types include: application/json-patch+json, "
                    f"application/merge-patch+json, "
                    f"application/strategic-merge-patch+json (not {kind!r})"
                )
        except patches.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patch turned the object into a non-object")
        if kind != "application/json-patch+json" and isinstance(body, dict):
            self._check_precondition(info, old, (body.get("metadata") or {}).get("resourceVersion"))
        return self._commit(info, old, new, subresource)

    def _check_precondition(self, info: ResourceInfo, old: Body, rv: Any) -> None:
        if rv and str(rv) != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(
                info.plural,
                old["metadata"]["name"],
                "the object has been modified; please apply your changes to the latest version and try again",
                info.group,
            )

    def bind(self, namespace: str, name: str, binding: Any) -> Body:
        info = self.resource("", "v1", "pods")
        pod = self.get(info, namespace, name)
        target = ((binding or {}).get("target") or {}).get("name") if isinstance(binding, dict) else None
        if not target:
            raise ApiError.invalid("Binding", name, [("target.name", "target.name: Required value")])
        if pod.get("spec", {}).get("nodeName"):
            raise ApiError.conflict(
                "pods/binding", name, f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"'
            )
        if pod.get("spec", {}).get("schedulingGates"):
            raise ApiError.invalid(
                "Binding", name, [("spec.schedulingGates", f"pod {name} has non-empty .spec.schedulingGates")]
            )
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = target
        conditions = [c for c in new.setdefault("status", {}).get("conditions", []) if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()})
        new["status"]["conditions"] = conditions
        self._store_update(info, pod, new)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _commit(self, info: ResourceInfo, old: Body, new: Body, subresource: str | None) -> Body:
        """Apply the server-side rules of an update and store the result (or nothing, for a no-op)."""
        name = old["metadata"]["name"]
        if subresource not in (None, "status") or (subresource == "status" and "status" not in info.subresources):
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({info.plural}/{subresource})"
            )
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            new_meta = _meta(new)
            old_meta = old["metadata"]
            for immutable in (
                "uid",
                "name",
                "namespace",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if immutable in old_meta:
                    new_meta[immutable] = old_meta[immutable]
                else:
                    new_meta.pop(immutable, None)
            if "status" in info.subresources:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if old_meta.get("deletionTimestamp"):
                added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise ApiError.invalid(
                        info.kind,
                        name,
                        [
                            (
                                "metadata.finalizers",
                                "metadata.finalizers: Forbidden: "
                                "no new finalizers can be added if the object is being "
                                "deleted",
                            )
                        ],
                        info.group,
                    )
            if info.plural == "pods":
                self._check_pod_update(old, new)
        new["apiVersion"], new["kind"] = info.api_version, info.kind
        if info.custom:
            new = self._admit_custom(info, new, old)
        return self._store_update(info, old, new)

    @staticmethod
    def _check_pod_update(old: Body, new: Body) -> None:
        name = old["metadata"]["name"]
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        old_gates = [g.get("name") for g in old_spec.get("schedulingGates") or []]
        new_gates = [g.get("name") for g in new_spec.get("schedulingGates") or []]
        if any(g not in old_gates for g in new_gates):
            raise ApiError.invalid(
                "Pod",
                name,
                [
                    (
                        "spec.schedulingGates",
                        "spec.schedulingGates: Forbidden: only deletion is allowed, but found new scheduling gate",
                    )
                ],
            )

        def frozen(spec: Body) -> Body:
            result = {k: v for k, v in spec.items() if k not in _POD_MUTABLE_SPEC}
            for key in ("containers", "initContainers"):
                if isinstance(result.get(key), list):
                    result[key] = [{k: v for k, v in c.items() if k != "image"} for c in result[key]]
            return result

        if frozen(old_spec) != frozen(new_spec):
            raise ApiError.invalid(
                "Pod",
                name,
                [
                    (
                        "spec",
                        "spec: Forbidden: pod updates may not change fields other "
                        "than spec.containers[*].image, spec.initContainers[*].image, "
                        "spec.activeDeadlineSeconds, spec.tolerations (only additions), "
                        "spec.terminationGracePeriodSeconds or spec.schedulingGates "
                        "(only removals)",
                    )
                ],
            )

    def _store_update(self, info: ResourceInfo, old: Body, new: Body) -> Body:
        new_meta = _meta(new)
        new_meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return old  # a no-op write changes nothing: no resourceVersion, no event
        if {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
            k: v for k, v in old.items() if k not in ("metadata", "status")
        }:
            new_meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new_meta["resourceVersion"] = self._next_rv()
        okey = self._okey(info, new_meta.get("namespace"), new_meta["name"])
        self._objects[info.key][okey] = new
        self._unindex(old)
        self._index(info, new)
        self.writes += 1
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            self._remove(info, new)
        else:
            self._emit("MODIFIED", info, new, old)
            if new_meta.get("deletionTimestamp"):
                self._progress_deletion(info, new)
        return new

    # --- deletion and garbage collection -------------------------------------------------------------
    def delete(self, info: ResourceInfo, namespace: str | None, name: str, options: Any) -> Body:
        obj = self.get(info, namespace, name)
        options = options if isinstance(options, dict) else {}
        preconditions = options.get("preconditions") or {}
        meta = obj["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise ApiError.conflict(
                info.plural,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta['uid']}",
                info.group,
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta["resourceVersion"]:
            raise ApiError.conflict(info.plural, name, "Precondition failed: resourceVersion mismatch", info.group)
        if meta.get("deletionTimestamp"):
            return obj
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is True:
            policy = "Orphan"
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and self._dependents.get(meta["uid"]):
            finalizers.append("foregroundDeletion")
        elif policy == "Orphan" and self._dependents.get(meta["uid"]):
            finalizers.append("orphan")
        if info.plural == "namespaces":
            finalizers.append("kubernetes")
        if not finalizers:
            self.writes += 1
            return self._remove(info, obj)
        new = copy.deepcopy(obj)
        new["metadata"]["deletionTimestamp"] = now_rfc3339()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["metadata"]["finalizers"] = finalizers
        if info.plural == "namespaces":
            new["status"] = {"phase": "Terminating"}
        return self._store_update(info, obj, new)

    def delete_collection(
        self, info: ResourceInfo, namespace: str | None, params: dict[str, str], options: Any
    ) -> Body:
        listed = self.list(
            info, namespace, {k: v for k, v in params.items() if k in ("labelSelector", "fieldSelector")}
        )
        for obj in listed["items"]:
            meta = obj["metadata"]
            if self.try_get(info, meta.get("namespace"), meta["name"]) is not None:
                self.delete(info, meta.get("namespace"), meta["name"], options)
        return listed

    def _remove(self, info: ResourceInfo, obj: Body) -> Body:
        meta = obj["metadata"]
        okey = self._okey(info, meta.get("namespace"), meta["name"])
        if self._objects[info.key].get(okey) is not obj:
            return obj
        del self._objects[info.key][okey]
        self._forget(obj)
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", info, final, obj)
        if info.key == ("apiextensions.k8s.io", "v1", "customresourcedefinitions"):
            for served in crd_resources(obj):
                self.unserve(served.key)
        self._collect(meta["uid"])
        self._after_removal(info, obj)
        return final

    def _forget(self, obj: Body) -> None:
        self._unindex(obj)
        self._by_uid.pop(obj["metadata"]["uid"], None)

    def _index(self, info: ResourceInfo, obj: Body) -> None:
        meta = obj["metadata"]
        key = (info.key, self._okey(info, meta.get("namespace"), meta["name"]))
        self._by_uid[meta["uid"]] = key
        for ref in meta.get("ownerReferences") or []:
            if ref.get("uid"):
                self._dependents[ref["uid"]].add(key)

    def _unindex(self, obj: Body) -> None:
        meta = obj["metadata"]
        key = self._by_uid.get(meta["uid"])
        if key is None:
            return
        for ref in meta.get("ownerReferences") or []:
            owners = self._dependents.get(ref.get("uid", ""))
            if owners is not None:
                owners.discard(key)
                if not owners:
                    del self._dependents[ref["uid"]]

    def _lookup(self, key: tuple[ResourceKey, ObjectKey]) -> tuple[ResourceInfo, Body] | None:
        resource_key, okey = key
        info = self._resources.get(resource_key)
        if info is None:
            return None
        obj = self._objects[resource_key].get(okey)
        return (info, obj) if obj is not None else None

    def _collect(self, owner_uid: str) -> None:
        """Background garbage collection: dependents whose owners are all gone are deleted."""
        for key in list(self._dependents.get(owner_uid, ())):
            found = self._lookup(key)
            if found is None:
                continue
            info, dependent = found
            alive = [
                r
                for r in dependent["metadata"].get("ownerReferences") or []
                if r.get("uid") != owner_uid and r.get("uid") in self._by_uid
            ]
            if not alive and not dependent["metadata"].get("deletionTimestamp"):
                meta = dependent["metadata"]
                self.delete(info, meta.get("namespace"), meta["name"], {"propagationPolicy": "Background"})

    def _progress_deletion(self, info: ResourceInfo, obj: Body) -> None:
        """Foreground and orphan deletion, and namespace termination, driven by their finalizers."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        uid = meta["uid"]
        if "orphan" in finalizers:
            for key in list(self._dependents.get(uid, ())):
                found = self._lookup(key)
                if found is not None:
                    dep_info, dependent = found
                    new = copy.deepcopy(dependent)
                    new["metadata"]["ownerReferences"] = [
                        r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                    ]
                    self._store_update(dep_info, dependent, new)
            self._drop_finalizer(info, uid, "orphan")
        elif "foregroundDeletion" in finalizers:
            for key in list(self._dependents.get(uid, ())):
                found = self._lookup(key)
                if found is not None and not found[1]["metadata"].get("deletionTimestamp"):
                    dep_meta = found[1]["metadata"]
                    self.delete(
                        found[0], dep_meta.get("namespace"), dep_meta["name"], {"propagationPolicy": "Foreground"}
                    )
            self._maybe_finish_foreground(uid)
        elif info.plural == "namespaces" and "kubernetes" in finalizers:
            namespace = meta["name"]
            for resource_key, objs in list(self._objects.items()):
                ns_info = self._resources[resource_key]
                if not ns_info.namespaced:
                    continue
                for (ns, name), item in list(objs.items()):
                    if ns == namespace and not item["metadata"].get("deletionTimestamp"):
                        self.delete(ns_info, ns, name, {})
            self._maybe_finish_namespace(namespace)

    def _drop_finalizer(self, info: ResourceInfo, uid: str, finalizer: str) -> None:
        key = self._by_uid.get(uid)
        found = self._lookup(key) if key is not None else None
        if found is None:
            return
        obj = found[1]
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        self._store_update(info, obj, new)

    def _maybe_finish_foreground(self, uid: str) -> None:
        key = self._by_uid.get(uid)
        found = self._lookup(key) if key is not None else None
        if found is None:
            return
        info, obj = found
        if "foregroundDeletion" not in (obj["metadata"].get("finalizers") or []):
            return
        blocking = [
            k
            for k in self._dependents.get(uid, ())
            if (dep := self._lookup(k)) is not None
            and any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in dep[1]["metadata"].get("ownerReferences") or []
            )
        ]
        if not blocking:
            self._drop_finalizer(info, uid, "foregroundDeletion")

    def _maybe_finish_namespace(self, namespace: str) -> None:
        ns_info = self.resource("", "v1", "namespaces")
        ns_obj = self.try_get(ns_info, None, namespace)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for resource_key, objs in self._objects.items():
            if self._resources[resource_key].namespaced and any(ns == namespace for ns, _ in objs):
                return
        self._drop_finalizer(ns_info, ns_obj["metadata"]["uid"], "kubernetes")

    def _after_removal(self, info: ResourceInfo, obj: Body) -> None:
        meta = obj["metadata"]
        for ref in meta.get("ownerReferences") or []:
            if ref.get("uid") in self._by_uid:
                self._maybe_finish_foreground(ref["uid"])
        if info.namespaced and meta.get("namespace"):
            self._maybe_finish_namespace(meta["namespace"])

    # --- conveniences for tests ----------------------------------------------------------------------
    def all_objects(self) -> Iterator[tuple[ResourceInfo, Body]]:
        for key, objs in self._objects.items():
            info = self._resources[key]
            for obj in objs.values():
                yield info, obj

    def count(self, info: ResourceInfo, namespace: str | None = None) -> int:
        if namespace is None:
            return len(self._objects[info.key])
        return sum(1 for ns, _ in self._objects[info.key] if ns == namespace)

    def watch_count(self) -> int:
        return sum(len(w) for w in self._watches.values())


def names(objs: Iterable[Body]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]
