"""Extender test fixtures: a real aiohttp server on 127.0.0.1 (ephemeral port) fed from an inventory.

Telemetry enters through the app's documented seam (a ``TelemetryProvider``); time through an injected
clock, so staleness and expiry are tested without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lepton_core.profiles import ProfileSet, load_profile_set
from lepton_core.telemetry import NodeTelemetry, TelemetrySnapshot
from lepton_extender.app import SNAPSHOT, create_app
from lepton_extender.inventory import parse_inventory
from lepton_extender.settings import ExtenderSettings
from lepton_extender.snapshot import ClusterSnapshot
from lepton_extender.sources import InventorySource
from tests.extender import fixtures as fx

T0 = 1_700_000_000.0


class Clock:
    """A settable clock: ``clock()`` is now; ``advance`` moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class TelemetryFeed:
    """The app's telemetry provider: returns whatever the test last published."""

    snapshot: TelemetrySnapshot | None = None
    calls: int = 0

    async def __call__(self) -> TelemetrySnapshot:
        self.calls += 1
        if self.snapshot is None:
            raise RuntimeError("no telemetry published yet")
        return self.snapshot


@dataclass
class Extender:
    client: TestClient[Any, Any]
    clock: Clock
    feed: TelemetryFeed
    snapshot: ClusterSnapshot

    async def post(self, verb: str, body: Any) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        resp = await self.client.post(f"/{verb}", data=data, headers={"Content-Type": "application/json"})
        raw = await resp.read()
        return resp.status, orjson.loads(raw)

    async def prioritize(self, pod: dict[str, Any], names: list[str]) -> dict[str, int]:
        status, body = await self.post("prioritize", fx.args_names(pod, names))
        assert status == 200, body
        return {h["Host"]: h["Score"] for h in body}

    async def filter(self, pod: dict[str, Any], names: list[str]) -> dict[str, Any]:
        status, body = await self.post("filter", fx.args_names(pod, names))
        assert status == 200, body
        return dict(body)

    async def publish(self, nodes: Iterable[NodeTelemetry], fetched_at: float | None = None) -> None:
        """Publish telemetry and wait until the app has applied it."""
        snap = TelemetrySnapshot(
            fetched_at=self.clock() if fetched_at is None else fetched_at, nodes={t.node: t for t in nodes}
        )
        self.feed.snapshot = snap
        for _ in range(400):
            if self.snapshot.telemetry is snap:
                return
            await asyncio.sleep(0.005)
        raise AssertionError("telemetry was not applied")

    async def settle(self) -> None:
        """Let the background loops (maintenance every 10 ms in tests) run a few times."""
        await asyncio.sleep(0.05)


def idle(name: str, at: float, cpu: float = 0.0, gpu: float | None = 0.0) -> NodeTelemetry:
    return NodeTelemetry(node=name, observed_at=at, cpu_utilization=cpu, gpu_utilization=gpu)


TEST_PROFILES = """
apiVersion: lepton.ai/v1alpha1
kind: CostProfileSet
currency: USD
defaultProfile: plain
tariffs:
  cheap: {flat: {pricePerKWh: 0.05}}
  dear: {flat: {pricePerKWh: 0.40}}
profiles:
  - name: plain
    platform:
      specpower: {activeIdleWatts: 50.3, loadWatts: [115, 138, 157, 176, 194, 212, 237, 269, 305, 343]}
    gpu: {model: A100, count: 0, idleWatts: 50, maxWatts: 276, exponent: 1.2, pricePerGpu: 15000}
    hardware: {purchasePrice: 15000, lifetimeYears: 4}
    operations: {perNodeYear: 2000}
    tariff: dear
  - name: cheap-power
    match: [{labels: {power: cheap}}]
    platform:
      specpower: {activeIdleWatts: 50.3, loadWatts: [115, 138, 157, 176, 194, 212, 237, 269, 305, 343]}
    gpu: {model: A100, count: 0, idleWatts: 50, maxWatts: 276, exponent: 1.2, pricePerGpu: 15000}
    hardware: {purchasePrice: 15000, lifetimeYears: 4}
    operations: {perNodeYear: 2000}
    tariff: cheap
"""


@pytest.fixture(scope="session")
def test_profiles(tmp_path_factory: pytest.TempPathFactory) -> ProfileSet:
    path: Path = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    path.write_text(TEST_PROFILES)
    return load_profile_set(path)


StartExtender = Callable[..., Awaitable[Extender]]


@pytest.fixture
async def start_extender(test_profiles: ProfileSet) -> AsyncIterator[StartExtender]:
    """``await start_extender(nodes, pods=(), **settings)``: a ready extender over real HTTP."""
    stack: list[TestClient[Any, Any]] = []

    async def start(
        nodes: list[dict[str, Any]],
        pods: Iterable[dict[str, Any]] = (),
        *,
        profiles: ProfileSet | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> Extender:
        clock = clock or Clock()
        feed = TelemetryFeed()
        inventory = parse_inventory(
            {"kind": "List", "items": [*({"kind": "Node", **n} for n in nodes), *({"kind": "Pod", **p} for p in pods)]}
        )
        defaults: dict[str, Any] = {"telemetry_interval_seconds": 0.01, "maintenance_interval_seconds": 0.01}
        app = create_app(
            ExtenderSettings(**{**defaults, **settings}),
            profiles=profiles or test_profiles,
            source=InventorySource(inventory),
            telemetry=feed,
            clock=clock,
        )
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        stack.append(client)
        for _ in range(400):
            r = await client.get("/readyz")
            if r.status == 200:
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError("extender did not become ready")
        return Extender(client, clock, feed, app[SNAPSHOT])

    yield start
    for client in stack:
        await client.close()
