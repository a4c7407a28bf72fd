"""What accounting asks of the Kubernetes API, on top of the operator's client (``lepton_operator.kube``).

The accounting loop is not a kopf handler (one loop per tick over all objects), so it uses the
operator's ``KubeClient`` directly — same credentials, same bounded concurrency and retries — through
this small adapter: paginated LIST, GET, merge PATCH (``/status`` or the object), POST, and a count of
the writes it sent (the rate limit and the benchmark read it). Errors stay the operator's:
``Conflict`` (409: re-read and retry), ``NotFound`` (the job is gone), ``KubeError`` (anything else).

Neighbours: ``loop`` (lists the inventory, writes status), ``lepton_operator.kube`` (the HTTP client).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lepton_operator.crd import GROUP, PLURAL, VERSION
from lepton_operator.kube import (
    MERGE_PATCH,
    Conflict,
    Endpoint,
    KubeClient,
    KubeError,
    NotFound,
)

Body = dict[str, Any]

__all__ = [
    "EVENTS",
    "LEPTONJOBS",
    "NODES",
    "PODS",
    "Conflict",
    "KubeApi",
    "KubeError",
    "NotFound",
    "ResourcePath",
]


@dataclass(frozen=True, slots=True)
class ResourcePath:
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def url(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        parts = [f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"]
        if namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


NODES = ResourcePath("", "v1", "nodes")
PODS = ResourcePath("", "v1", "pods")
EVENTS = ResourcePath("", "v1", "events")
LEPTONJOBS = ResourcePath(GROUP, VERSION, PLURAL)


class KubeApi:
    """Accounting's view of the API server. ``writes``/``reads`` count requests sent through it."""

    def __init__(self, client: KubeClient, page_size: int = 500) -> None:
        self.client = client
        self.page_size = page_size
        self.writes = 0
        self.reads = 0

    @classmethod
    def for_url(cls, server: str, token: str | None = None) -> KubeApi:
        """A client for a plain-HTTP API server (tests, the emulator, ``kubectl proxy``)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(KubeClient(Endpoint(server.rstrip("/"), headers, None)))

    async def close(self) -> None:
        await self.client.close()

    async def list(self, resource: ResourcePath, namespace: str | None = None) -> list[Body]:
        """All objects of a kind (paginated with ``limit``/``continue``)."""
        items: list[Body] = []
        params = {"limit": str(self.page_size)}
        while True:
            self.reads += 1
            doc = await self.client.get(resource.url(namespace), params=params)
            if not isinstance(doc, dict):
                raise KubeError(0, "BadResponse", f"LIST {resource.plural}: not a JSON object")
            items.extend(i for i in doc.get("items") or () if isinstance(i, dict))
            cont = (doc.get("metadata") or {}).get("continue")
            if not cont:
                return items
            params = {"limit": str(self.page_size), "continue": str(cont)}

    async def get(self, resource: ResourcePath, namespace: str | None, name: str) -> Body:
        self.reads += 1
        return _object(await self.client.get(resource.url(namespace, name)))

    async def merge_patch(
        self, resource: ResourcePath, namespace: str | None, name: str, patch: Any, subresource: str | None = None
    ) -> Body:
        self.writes += 1
        return _object(await self.client.patch(resource.url(namespace, name, subresource), patch, MERGE_PATCH))

    async def create(self, resource: ResourcePath, namespace: str | None, body: Any) -> Body:
        self.writes += 1
        return _object(await self.client.create(resource.url(namespace), body))


def _object(doc: Any) -> Body:
    if not isinstance(doc, dict):
        raise KubeError(0, "BadResponse", "the API server's answer is not a JSON object")
    return doc
