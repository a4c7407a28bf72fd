"""A small asyncio Kubernetes API client (aiohttp) for the operator's own writes.

kopf watches and patches LeptonJobs with its own client; this one creates the workers, patches their
gates, writes the lifecycle status, posts events and serves live cost accounting. It authenticates with
the same ``kopf.ConnectionInfo`` kopf got from ``lepton_operator.credentials`` (token, client certificate
or basic auth; CA bundle or insecure), bounds concurrent requests (``max_concurrency``) so a burst of
1,000 jobs cannot open 4,000 sockets, and classifies failures:

* temporary (``KubeError.temporary``): 429, 5xx, 409 Conflict on a stale resourceVersion, connection
  errors and timeouts — retried here a few times with jittered exponential backoff (``Retry-After``
  honoured), then raised for the caller to retry later;
* permanent: 400, 403, 404, 422 and other 4xx — raised at once (``NotFound``, ``AlreadyExists``,
  ``Conflict``, ``Invalid`` are subclasses for the cases callers handle).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = dict(body or {})

    @property
    def temporary(self) -> bool:
        return self.status in (0, 408, 429) or self.status >= 500 or (self.status == 409 and self.reason == "Conflict")


class NotFound(KubeError):
    pass


class AlreadyExists(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    pass


def _error(status: int, body: Any) -> KubeError:
    data = body if isinstance(body, Mapping) else {"message": str(body)[:500]}
    reason = str(data.get("reason") or "")
    message = str(data.get("message") or "")
    if status == 404:
        return NotFound(status, reason or "NotFound", message, data)
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(status, reason, message, data)
    if status == 409:
        return Conflict(status, reason or "Conflict", message, data)
    if status == 422:
        return Invalid(status, reason or "Invalid", message, data)
    return KubeError(status, reason or "Error", message, data)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect: built from kopf's ``ConnectionInfo`` (see ``from_connection_info``)."""

    server: str
    headers: Mapping[str, str]
    ssl_context: ssl.SSLContext | bool | None

    @classmethod
    def from_connection_info(cls, info: Any) -> Endpoint:
        headers: dict[str, str] = {}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username and info.password:
            raw = f"{info.username}:{info.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        context: ssl.SSLContext | bool | None = None
        if str(info.server).startswith("https"):
            if info.insecure:
                context = False
            else:
                context = ssl.create_default_context()
                if info.ca_path:
                    context.load_verify_locations(cafile=os.fspath(info.ca_path))
                elif info.ca_data:
                    pem = _pem(info.ca_data)
                    context.load_verify_locations(cadata=pem.decode())
            cert_data, key_data = info.certificate_data, info.private_key_data
            cert = info.certificate_path or (_temp_file(_pem(cert_data)) if cert_data else None)
            key = info.private_key_path or (_temp_file(_pem(key_data)) if key_data else None)
            if cert:
                if context is False:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                assert isinstance(context, ssl.SSLContext)
                context.load_cert_chain(os.fspath(cert), os.fspath(key) if key else None)
        return cls(str(info.server).rstrip("/"), headers, context)


def _pem(data: str | bytes) -> bytes:
    """kubeconfig ``*-data`` fields are base64 of PEM; accept raw PEM too."""
    raw = data.encode() if isinstance(data, str) else data
    return raw if raw.lstrip().startswith(b"-----") else base64.b64decode(raw)


def _temp_file(data: bytes) -> str:
    # ssl.load_cert_chain reads files only; the file lives as long as the process (like kubectl's).
    handle = tempfile.NamedTemporaryFile(prefix="lepton-kube-", suffix=".pem", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return handle.name


class KubeClient:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_concurrency: int = 64,
        request_timeout_seconds: float = 30.0,
        retry_delays_seconds: tuple[float, ...] = (0.2, 0.8, 2.0),
        on_unauthorized: Callable[[], Endpoint | None] | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._endpoint = endpoint
        # Names the replica in the API server's audit log (and lets tests tell replicas' requests apart).
        self._user_agent = user_agent
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_seconds)
        self._retry_delays = retry_delays_seconds
        self._on_unauthorized = on_unauthorized
        self._session: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.requests_sent = 0
        """Requests sent (for benchmarks: API writes per reconcile)."""

    def set_endpoint(self, endpoint: Endpoint) -> None:
        """Switch credentials (kopf re-logged in); the next request uses them. Call from the event loop."""
        if (endpoint.server, dict(endpoint.headers)) == (self._endpoint.server, dict(self._endpoint.headers)):
            return
        self._endpoint = endpoint
        old, self._session = self._session, None
        if old is not None and not old.closed:
            self._closing.add(task := asyncio.get_running_loop().create_task(old.close()))
            task.add_done_callback(self._closing.discard)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0, ssl=self._endpoint.ssl_context if self._endpoint.ssl_context is not None else True
            )
            headers = dict(self._endpoint.headers)
            if self._user_agent:
                headers["User-Agent"] = self._user_agent
            self._session = aiohttp.ClientSession(
                base_url=None, connector=connector, timeout=self._timeout, headers=headers
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        refreshed = False
        for attempt in range(len(self._retry_delays) + 1):
            try:
                return await self._send(method, path, body, params, content_type)
            except KubeError as exc:
                if exc.status == 401 and not refreshed and self._on_unauthorized is not None:
                    endpoint = self._on_unauthorized()
                    if endpoint is not None:
                        self.set_endpoint(endpoint)
                        refreshed = True
                        continue
                retryable = exc.status in (0, 408, 429) or exc.status >= 500
                if not retryable or attempt >= len(self._retry_delays):
                    raise
                delay = self._retry_delays[attempt]
                retry_after = exc.body.get("retryAfterSeconds") if exc.status == 429 else None
                if isinstance(retry_after, int | float):
                    delay = max(delay, float(retry_after))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, path: str, body: Any, params: Mapping[str, str] | None, content_type: str
    ) -> Any:
        session = self._ensure_session()
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._semaphore:
            self.requests_sent += 1
            try:
                async with session.request(
                    method, self._endpoint.server + path, data=data, params=params, headers=headers
                ) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise KubeError(0, "ConnectionError", f"{method} {path}: {exc!r}") from exc
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = raw.decode(errors="replace")
        if status >= 400:
            error = _error(status, parsed)
            if retry_after and retry_after.isdigit():
                error.body.setdefault("retryAfterSeconds", int(retry_after))
            raise error
        return parsed

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request, until the server ends it (outside the concurrency bound)."""
        session = self._ensure_session()
        read_timeout = float(params.get("timeoutSeconds", "300")) + 60.0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30.0, sock_read=read_timeout)
        self.requests_sent += 1
        try:
            async with session.get(self._endpoint.server + path, params=dict(params), timeout=timeout) as response:
                if response.status >= 400:
                    raw = await response.read()
                    try:
                        body: Any = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        body = raw.decode(errors="replace")
                    raise _error(response.status, body)
                buffer = b""
                # Split on newlines ourselves: one event can exceed aiohttp's line-length limit.
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield orjson.loads(line)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise KubeError(0, "ConnectionError", f"watch {path}: {exc!r}") from exc

    # --- verbs ---------------------------------------------------------------------------------------
    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> Any:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, *, propagation: str = "Background", uid: str | None = None) -> Any:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid:
            options["preconditions"] = {"uid": uid}
        return await self.request("DELETE", path, body=options)


def core_path(
    plural: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    return _path("/api/v1", plural, namespace=namespace, name=name, subresource=subresource)


def group_path(  # noqa: PLR0917 - positional like a URL
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/apis/<group>/<version>/[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]``; positional like a URL."""
    return _path(f"/apis/{group}/{version}", plural, namespace=namespace, name=name, subresource=subresource)


def _path(root: str, plural: str, *, namespace: str | None, name: str | None, subresource: str | None) -> str:
    parts = [root]
    if namespace:
        parts += ["namespaces", namespace]
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)
