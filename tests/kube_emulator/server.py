"""The HTTP face of the emulated API server, built on kmock's ``KubernetesScaffold``.

kmock provides the HTTP server, request parsing, error rendering and its request DSL; this module routes
every resource URL (``/api/v1/...``, ``/apis/<group>/<version>/...``) to ``store.Store`` and answers
discovery from the resources the store serves (including those of CRDs created at runtime), so kopf's
scanning finds them.

Because the emulated API is registered as kmock's *fallback*, reactions a test adds with kmock's DSL win
over it, which is how tests inject faults::

    emulator.kmock["post", kmock.resource("", "v1", "pods")][:2] << 503   # the next two pod creations fail

(``EmulatorThread.call`` runs such code on the emulator's loop.) Neighbours: ``store`` (state and
semantics), ``cluster`` (scheduler and kubelet stand-ins), ``runner`` (thread, kubeconfig, fixtures).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
import orjson
from kmock._internal import parsing as kmock_parsing

from tests.kube_emulator.errors import ApiError
from tests.kube_emulator.resources import ResourceInfo
from tests.kube_emulator.store import Store, Watch


@dataclass(frozen=True, slots=True)
class ParsedPath:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_resource_path(path: str) -> ParsedPath | None:
    """Split a resource URL; None for discovery and non-API paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return ParsedPath(group, version, plural, namespace, name, subresource)


class _Direct(Exception):
    """Carries a resource request out of kmock's renderer to ``KubeEmulator._handle``."""

    def __init__(self, request: kmock.Request) -> None:
        super().__init__("resource request")
        self.request = request


@dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``status`` instead of serving them."""

    method: str
    plural: str
    status: int
    count: int
    namespace: str | None = None
    subresource: str | None = None
    reason: str = "InternalError"

    def matches(self, method: str, parsed: ParsedPath) -> bool:
        return (
            self.count > 0
            and method == self.method.upper()
            and parsed.plural == self.plural
            and self.namespace in (None, parsed.namespace)
            and self.subresource == parsed.subresource
        )


@dataclass(frozen=True, slots=True)
class _Stream:
    watch: Watch
    timeout_seconds: float | None


def _json(body: Any, status: int) -> aiohttp.web.Response:
    return aiohttp.web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _header(headers: Any, name: str) -> str:
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return str(value)
    return ""


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesScaffold):
    """kmock's Kubernetes scaffold with a stateful, Kubernetes-faithful resource API behind it."""

    store: Store = attrs.field(factory=Store)
    bookmark_interval_seconds: float = 1.0
    """How often watches that allow bookmarks get one (Kubernetes: about a minute)."""
    max_watch_seconds: float | None = None
    """Server-side limit on every watch, on top of ``timeoutSeconds`` (forces reconnects in tests)."""
    record_requests: bool = True
    """Keep kmock's request log (``emulator.requests``); turn off for load tests to bound memory."""
    faults: list[Fault] = attrs.field(factory=list)
    """Pending injected failures (``inject_fault``), checked before the emulated API."""

    _builtin_reactions: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback[self._is_resource_request] << self._serve
        self._builtin_reactions = len(self._payloads)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        try:
            kmock_parsing.parse_path(raw_request.path)
        except ValueError:
            # kmock 0.8's own path parser fails on /api/v1/namespaces (the namespace list): parse it here.
            return await self._handle(await self._parse_plainly(raw_request))
        return await super().__call__(raw_request)

    async def _parse_plainly(self, raw_request: aiohttp.web.BaseRequest) -> kmock.Request:
        body = await raw_request.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        request = kmock.Request(
            id=len(self._requests),
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            text=body.decode(errors="replace"),
            data=data,
            raw_request=raw_request,
        )
        if self.record_requests:
            self._requests.append(request)
        return request

    @staticmethod
    def _is_resource_request(request: kmock.Request) -> bool:
        return parse_resource_path(request.url.path) is not None

    # --- routing -------------------------------------------------------------------------------------
    async def _serve(self, request: kmock.Request) -> kmock.Payload:
        # Answer outside kmock's renderer: a reaction's status code sticks to the reaction in kmock 0.8,
        # so every answer would inherit the previous one's code. _handle() catches this and responds.
        raise _Direct(request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # kmock matches a request against each reaction by scanning its whole request log (O(requests));
        # with no reaction of the test's own, resource requests skip that and go straight to the store.
        if len(self._payloads) == self._builtin_reactions and self._is_resource_request(request):
            return await self._respond(request)
        try:
            return await super()._handle(request)
        except _Direct as direct:
            return await self._respond(direct.request)

    async def _respond(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if not self.record_requests:
            self._requests.clear()
        parsed = parse_resource_path(request.url.path)
        assert parsed is not None  # guaranteed by the criterion
        for fault in self.faults:
            if fault.matches(request.method.value, parsed):
                fault.count -= 1
                error = ApiError(fault.status, fault.reason, f"injected fault: {fault.method} {parsed.plural}")
                return _json(error.status(), fault.status)
        try:
            result = self._route(request, parsed)
        except ApiError as exc:
            return _json(exc.status(), exc.code)
        if isinstance(result, _Stream):
            return await self._stream_response(request, result)
        status, body = result if isinstance(result, tuple) else (200, result)
        return _json(body, status)

    def _route(self, request: kmock.Request, parsed: ParsedPath) -> Any:
        store = self.store
        info = store.resource(parsed.group, parsed.version, parsed.plural)
        if info.namespaced is False and parsed.namespace is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = parsed.namespace if info.namespaced else None
        params = dict(request.params.items())
        method = request.method.value
        name, sub = parsed.name, parsed.subresource
        if sub is not None and sub not in info.subresources:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({info.plural}/{sub})")
        if method == "GET":
            if params.get("watch") in ("true", "1"):
                if name is not None:
                    selector = f"metadata.name={name}"
                    params["fieldSelector"] = ",".join(filter(None, [params.get("fieldSelector"), selector]))
                return self._watch_response(info, namespace, params)
            if name is None:
                return store.list(info, namespace, params)
            return store.get(info, namespace, name)
        if method == "POST":
            if name is None:
                return 201, store.create(info, namespace, request.data)
            if sub == "binding" and namespace is not None:
                return 201, store.bind(namespace, name, request.data)
            raise ApiError.method_not_allowed(f"POST is not allowed on {request.url.path}")
        if name is None:
            if method == "DELETE":
                return store.delete_collection(info, namespace, params, request.data)
            raise ApiError.method_not_allowed(f"{method} is not allowed on a collection")
        if method == "PUT":
            return store.replace(info, namespace, name, request.data, sub)
        if method == "PATCH":
            content_type = _header(request.headers, "Content-Type")
            return store.patch(info, namespace, name, request.data, content_type=content_type, subresource=sub)
        if method == "DELETE":
            return store.delete(info, namespace, name, request.data)
        raise ApiError.method_not_allowed(f"{method} is not supported")

    def _watch_response(self, info: ResourceInfo, namespace: str | None, params: dict[str, str]) -> _Stream:
        watch = self.store.open_watch(info, namespace, params)
        timeouts = [t for t in (self.max_watch_seconds,) if t is not None]
        if params.get("timeoutSeconds", "").isdigit():
            timeouts.append(float(params["timeoutSeconds"]))
        return _Stream(watch, min(timeouts) if timeouts else None)

    async def _stream_response(self, request: kmock.Request, stream: _Stream) -> aiohttp.web.StreamResponse:
        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request._raw_request)
        try:
            async for chunk in self._stream(stream.watch, stream.timeout_seconds):
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away; _stream's cleanup has closed the watch
        return response

    async def _stream(self, watch: Watch, timeout_seconds: float | None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        wakeup = asyncio.Event()
        watch.wakeup = wakeup.set
        deadline = loop.time() + timeout_seconds if timeout_seconds is not None else None
        try:
            while True:
                if watch.queue:
                    chunk = b"".join(watch.queue)
                    watch.queue.clear()
                    yield chunk
                    continue
                if watch.closed:
                    return
                wakeup.clear()
                waits = [self.bookmark_interval_seconds] if watch.bookmarks else []
                if deadline is not None:
                    waits.append(max(0.0, deadline - loop.time()))
                try:
                    await asyncio.wait_for(wakeup.wait(), min(waits) if waits else None)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    if watch.bookmarks:
                        yield self.store.bookmark_line(watch.info)
        finally:
            self.store.close_watch(watch)

    # --- fault injection helpers ---------------------------------------------------------------------
    def inject_fault(
        self,
        method: str,
        plural: str,
        status: int,
        count: int = 1,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        reason: str = "InternalError",
    ) -> Fault:
        """Fail the next ``count`` requests like ``POST pods`` (in ``namespace``) with ``status``.

        Counted from now, unlike kmock's ``[:n]`` slices, which count every matching request so far.
        """
        fault = Fault(method, plural, status, count, namespace, subresource, reason)
        self.faults.append(fault)
        return fault

    def expire_watches(self) -> None:
        """End every open watch and forget history: clients must re-list (their resume gets 410 Gone)."""
        self.store.compact()
        for key in list(self.store._watches):
            for watch in list(self.store._watches[key]):
                self.store.close_watch(watch)

    # --- discovery (kmock's scaffold calls these; answered from the store) ---------------------------
    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for info in self.store.resources():
            if info.group and info.version not in groups.setdefault(info.group, []):
                groups[info.group].append(info.version)
        return groups

    @staticmethod
    def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
        return {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
        }

    async def _serve_api(self, _request: kmock.Request) -> kmock.Payload:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }

    async def _serve_apis(self, _request: kmock.Request) -> kmock.Payload:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_entry(g, v) for g, v in sorted(self._groups().items())],
        }

    async def _serve_group(self, request: kmock.Request) -> kmock.Payload:
        group = request.url.path.strip("/").split("/")[1]
        versions = self._groups().get(group)
        if not versions:
            raise kmock.KubernetesResourceNotFoundError()
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, versions)}

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        parts = request.url.path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        infos = [i for i in self.store.resources() if i.group == group and i.version == version]
        if not infos:
            raise kmock.KubernetesResourceNotFoundError()
        resources: list[dict[str, Any]] = []
        for info in sorted(infos, key=lambda i: i.plural):
            entry = {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": list(info.verbs),
            }
            if info.short_names:
                entry["shortNames"] = list(info.short_names)
            if info.categories:
                entry["categories"] = list(info.categories)
            resources.append(entry)
            for sub in sorted(info.subresources):
                resources.append(
                    {
                        "name": f"{info.plural}/{sub}",
                        "singularName": "",
                        "namespaced": info.namespaced,
                        "kind": "Binding" if sub == "binding" else info.kind,
                        "verbs": ["create"] if sub == "binding" else ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def dump(self) -> str:
        """Every stored object as JSON lines (for debugging a failed test)."""
        return "\n".join(json.dumps(obj, sort_keys=True) for _, obj in self.store.all_objects())
