"""``KubernetesSource`` with the official client against a real HTTP server speaking the list/watch
subset of the Kubernetes API (nodes and pods): events flow into the snapshot; an expired watch (410)
re-lists and drops what was deleted meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes import client as k8s

from lepton_extender.app import SNAPSHOT, create_app
from lepton_extender.settings import ExtenderSettings
from lepton_extender.snapshot import ClusterSnapshot
from lepton_extender.sources import KubernetesSource
from tests.extender import fixtures as fx


class FakeApi:
    """Lists from ``objects``; each watch streams what ``push`` sends until the test ends it."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"nodes": {}, "pods": {}}
        self.watchers: dict[str, list[asyncio.Queue[dict[str, Any] | None]]] = {"nodes": [], "pods": []}
        self.lists = {"nodes": 0, "pods": 0}
        self.version = 10

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/nodes", self.nodes)
        app.router.add_get("/api/v1/pods", self.pods)
        return app

    async def nodes(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "nodes")

    async def pods(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "pods")

    async def serve(self, request: web.Request, kind: str) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "1", "True"):
            self.lists[kind] += 1
            body = {
                "kind": "List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.version)},
                "items": list(self.objects[kind].values()),
            }
            return web.Response(body=orjson.dumps(body), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.watchers[kind].append(queue)
        try:
            while (event := await queue.get()) is not None:
                await resp.write(orjson.dumps(event) + b"\n")
        finally:
            self.watchers[kind].remove(queue)
        return resp

    def push(self, kind: str, type_: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        key = obj["metadata"]["name"]
        if type_ == "DELETED":
            self.objects[kind].pop(key, None)
        else:
            self.objects[kind][key] = obj
        for q in self.watchers[kind]:
            q.put_nowait({"type": type_, "object": obj})

    def expire(self, kind: str) -> None:
        gone = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version",
        }
        for q in self.watchers[kind]:
            q.put_nowait({"type": "ERROR", "object": gone})
            q.put_nowait(None)

    def close(self) -> None:
        for qs in self.watchers.values():
            for q in qs:
                q.put_nowait(None)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    fake = FakeApi()
    for n in (fx.node("n0", gpus=8), fx.node("n1", gpus=8)):
        fake.objects["nodes"][n["metadata"]["name"]] = n
    old = fx.pod("old", gpus=2, node_name="n0", phase="Running")
    fake.objects["pods"]["old"] = old
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, f"http://127.0.0.1:{server.port}"
    fake.close()
    await server.close()


async def until(check: Any, what: str) -> None:
    for _ in range(1000):  # the client's first call imports its models: seconds on a busy machine
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_watch_feeds_the_snapshot_and_relists_after_410(api: tuple[FakeApi, str]) -> None:
    fake, url = api

    def core_api() -> k8s.CoreV1Api:
        cfg = k8s.Configuration()
        cfg.host = url
        return k8s.CoreV1Api(k8s.ApiClient(cfg))

    source = KubernetesSource(api_factory=core_api, retry_seconds=0.05)
    app = create_app(ExtenderSettings(maintenance_interval_seconds=0.01), source=source)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        snap: ClusterSnapshot = app[SNAPSHOT]
        await until(lambda: snap.state is not None, "the first list")
        assert (await client.get("/readyz")).status == 200
        assert snap.names == ["n0", "n1"]
        assert snap.state is not None and list(snap.state.requested_gpus) == [2.0, 0.0]
        await until(lambda: fake.watchers["nodes"] and fake.watchers["pods"], "watches")

        fake.push("nodes", "ADDED", fx.node("n2", gpus=8))
        await until(lambda: snap.names == ["n0", "n1", "n2"], "the new node")
        fake.push("pods", "ADDED", fx.pod("new", gpus=3, node_name="n1"))
        await until(lambda: snap.state is not None and snap.state.requested_gpus[1] == 3.0, "the bound pod")
        assert snap.state.pending_gpus[1] == 3.0  # bound after sync: telemetry has not seen it yet
        fake.push("nodes", "DELETED", fx.node("n2", gpus=8))
        await until(lambda: snap.names == ["n0", "n1"], "the deleted node")

        # The pod watch expires; meanwhile "old" was deleted without an event reaching us.
        del fake.objects["pods"]["old"]
        lists_before = fake.lists["pods"]
        fake.expire("pods")
        await until(lambda: fake.lists["pods"] > lists_before, "a re-list")
        await until(lambda: "uid-default-old" not in snap.pods, "the vanished pod to be dropped")
        await until(lambda: snap.state is not None and snap.state.requested_gpus[0] == 0.0, "its requests freed")
        scores = await client.post("/prioritize", data=orjson.dumps(fx.args_names(fx.pod("p", gpus=1), ["n0", "n1"])))
        assert scores.status == 200
