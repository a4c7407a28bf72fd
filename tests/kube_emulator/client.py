"""A small synchronous Kubernetes client for tests: kubectl-like calls over real HTTP.

``KubeClient`` resolves resources through discovery (as kubectl does), so ``kube.get("lj", "ns", "x")``
works once the LeptonJob CRD is installed. Errors raise ``KubeApiError`` with the Status ``code``,
``reason`` and ``message``. ``wait_for`` polls until a predicate holds (tests never sleep blindly).
``Kubelet`` plays the node agent over the API: bind pods to nodes and report their phases.

It talks to any API server, not only the emulator (``requests`` comes with the ``kubernetes`` package).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

from tests.kube_emulator.cluster import pod_status

T = TypeVar("T")
Body = dict[str, Any]


class KubeApiError(Exception):
    def __init__(self, code: int, body: Any) -> None:
        self.code = code
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.reason = self.body.get("reason", "")
        self.message = self.body.get("message", "")
        super().__init__(f"{code} {self.reason}: {self.message}")


class KubeClient:
    def __init__(self, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.session = requests.Session()
        self._resources: dict[str, tuple[str, str, str, bool]] = {}

    # --- discovery -----------------------------------------------------------------------------------
    def _discover(self) -> None:
        self._resources.clear()
        versions: list[tuple[str, str]] = [("", "v1")]
        for group in self._request("GET", "/apis").get("groups", []):
            versions += [(group["name"], v["version"]) for v in group["versions"]]
        for group, version in versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            for r in self._request("GET", path).get("resources", []):
                if "/" in r["name"]:
                    continue
                entry = (group, version, r["name"], bool(r["namespaced"]))
                aliases = [r["name"], r["kind"].lower(), r.get("singularName") or "", *r.get("shortNames", [])]
                for alias in filter(None, aliases):
                    self._resources.setdefault(alias, entry)
                    self._resources.setdefault(f"{alias}.{group}" if group else alias, entry)

    def resolve(self, resource: str) -> tuple[str, str, str, bool]:
        key = resource.lower()
        if key not in self._resources:
            self._discover()
        if key not in self._resources:
            raise KeyError(f"the server doesn't have a resource type {resource!r}")
        return self._resources[key]

    def path(
        self, resource: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        group, version, plural, namespaced = self.resolve(resource)
        root = f"/apis/{group}/{version}" if group else f"/api/{version}"
        parts = [root]
        if namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    # --- verbs ---------------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Content-Type": content_type} if content_type else None
        response = self.session.request(
            method, self.base_url + path, json=json, params=params, headers=headers, timeout=self.timeout_seconds
        )
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise KubeApiError(response.status_code, body)
        return body

    def get(self, resource: str, namespace: str | None, name: str) -> Body:
        result: Body = self._request("GET", self.path(resource, namespace, name))
        return result

    def find(self, resource: str, namespace: str | None, name: str) -> Body | None:
        try:
            return self.get(resource, namespace, name)
        except KubeApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(
        self, resource: str, namespace: str | None = None, *, labels: str | None = None, fields: str | None = None
    ) -> list[Body]:
        params = {k: v for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v}
        items: list[Body] = self._request("GET", self.path(resource, namespace), params=params)["items"]
        return items

    def create(self, body: Body, namespace: str | None = None) -> Body:
        kind = body["kind"]
        group = body["apiVersion"].split("/")[0] if "/" in body["apiVersion"] else ""
        resource = f"{kind.lower()}.{group}" if group else kind.lower()
        ns = namespace or body.get("metadata", {}).get("namespace")
        result: Body = self._request("POST", self.path(resource, ns), json=body)
        return result

    def apply_file(self, path: Path, namespace: str | None = None) -> list[Body]:
        """Create every document of a YAML file (no three-way merge: a test fixture, not kubectl)."""
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        return [self.create(d, namespace) for d in docs]

    def patch(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        kind: str = "merge",
        subresource: str | None = None,
    ) -> Body:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[kind]
        result: Body = self._request(
            "PATCH", self.path(resource, namespace, name, subresource), json=patch, content_type=content_type
        )
        return result

    def replace(
        self, resource: str, namespace: str | None, name: str, body: Body, subresource: str | None = None
    ) -> Body:
        result: Body = self._request("PUT", self.path(resource, namespace, name, subresource), json=body)
        return result

    def delete(self, resource: str, namespace: str | None, name: str, *, propagation: str | None = None) -> Body:
        options = {"propagationPolicy": propagation} if propagation else None
        result: Body = self._request("DELETE", self.path(resource, namespace, name), json=options)
        return result

    def ensure_namespace(self, name: str) -> None:
        if self.find("namespaces", None, name) is None:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def events(self, namespace: str, involved_name: str | None = None) -> list[Body]:
        fields = f"involvedObject.name={involved_name}" if involved_name else None
        return self.list("events", namespace, fields=fields)

    # --- waiting -------------------------------------------------------------------------------------
    @staticmethod
    def wait_for(
        probe: Callable[[], T | None],
        *,
        timeout_seconds: float = 15.0,
        interval_seconds: float = 0.05,
        what: str = "condition",
    ) -> T:
        """Poll ``probe`` until it returns something truthy; fail with ``what`` after the timeout."""
        deadline = time.monotonic() + timeout_seconds
        last: T | None = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval_seconds)
        raise AssertionError(f"timed out after {timeout_seconds}s waiting for {what}; last value: {last!r}")


class Kubelet:
    """The node side of a pod's life, over the API: scheduling (binding) and phase reports."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def bind(self, namespace: str, name: str, node: str) -> None:
        self.kube._request(
            "POST",
            self.kube.path("pods", namespace, name, "binding"),
            json={
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            },
        )

    def report(
        self, namespace: str, name: str, phase: str, *, exit_code: int | None = None, reason: str | None = None
    ) -> Body:
        pod = self.kube.get("pods", namespace, name)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        status = pod_status(phase, exit_code=exit_code, reason=reason, containers=containers)
        return self.kube.patch("pods", namespace, name, {"status": status}, subresource="status")

    def run_all(self, namespace: str, names: Iterable[str], nodes: Iterable[str]) -> None:
        """Bind each pod (round robin over ``nodes``) and report it Running and Ready."""
        node_list = list(nodes)
        for n, name in enumerate(names):
            pod = self.kube.get("pods", namespace, name)
            if not pod["spec"].get("nodeName"):
                self.bind(namespace, name, node_list[n % len(node_list)])
            self.report(namespace, name, "Running")
