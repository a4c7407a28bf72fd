"""The peering gate (is this replica kopf's active peer?) and the on-demand pod cache.

The gate reads the same peering object kopf does, over HTTP from the emulator, and must reach kopf's
verdict (``kopf._core.engines.peering.process_peering_event``): paused while another live peer has a
higher or equal priority, or while a mandatory peering object is missing; active otherwise. The pod cache
runs only while job daemons hold it (kopf stops them all on a paused replica).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_operator.informer import OnDemand, PodInformer
from lepton_operator.kube import Endpoint, KubeClient
from lepton_operator.peering import Peer, PeeringGate, PeeringSettings, blocking_peers, parse_peers
from tests.kube_emulator.client import KubeClient as EmulatorClient
from tests.kube_emulator.resources import KOPF_PEERING_CRDS
from tests.kube_emulator.runner import EmulatorThread, running_emulator

NOW = 1_800_000_000.0


def _seen(seconds_ago: float) -> str:
    return datetime.fromtimestamp(NOW - seconds_ago, tz=UTC).isoformat()


# --- kopf's rule, as a table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "blocked_by"),
    [
        ({}, []),
        ({"me": {"priority": 10, "lifetime": 60, "lastseen": _seen(1)}}, []),
        ({"other": {"priority": 20, "lifetime": 60, "lastseen": _seen(10)}}, ["other"]),  # higher, alive
        ({"other": {"priority": 20, "lifetime": 60, "lastseen": _seen(61)}}, []),  # higher, presumed dead
        ({"other": {"priority": 10, "lifetime": 60, "lastseen": _seen(5)}}, ["other"]),  # same: kopf pauses both
        ({"other": {"priority": 5, "lifetime": 60, "lastseen": _seen(5)}}, []),  # lower
        ({"other": {"priority": 20}}, ["other"]),  # no lastseen: kopf takes it as just seen
        (
            {"a": {"priority": 30, "lifetime": 3, "lastseen": _seen(4)}, "b": {"priority": 11, "lastseen": _seen(0)}},
            ["b"],
        ),
        ({"freeze": {"priority": 100, "lifetime": 600, "lastseen": _seen(30)}}, ["freeze"]),  # `kopf freeze`
    ],
)
def test_blocking_peers_follow_kopfs_rule(status: dict[str, Any], blocked_by: list[str]) -> None:
    peers = parse_peers(status)
    assert sorted(p.identity for p in blocking_peers(peers, identity="me", priority=10, now=NOW)) == blocked_by


_ANY = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.lists(st.integers(), max_size=2)
)
_ENTRY = st.fixed_dictionaries({}, optional={"priority": _ANY, "lifetime": _ANY, "lastseen": _ANY | st.just(_seen(3))})


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY, st.dictionaries(st.text(max_size=8), _ENTRY | _ANY, max_size=4)))
def test_a_malformed_peering_status_is_read_without_crashing(status: Any) -> None:
    peers = parse_peers(status)
    assert all(isinstance(p, Peer) for p in peers)
    blocking_peers(peers, identity="me", priority=0, now=NOW)


# --- the gate over HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with running_emulator() as emulator:
        yield emulator


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _gate(emulator: EmulatorThread, clock: Clock, **settings: Any) -> tuple[PeeringGate, KubeClient]:
    client = KubeClient(Endpoint(emulator.url, {}, None), retry_delays_seconds=(0.01,))
    options: dict[str, Any] = {"identity": "me", "priority": 10, "lifetime_seconds": 60.0, **settings}
    return PeeringGate(client, PeeringSettings(**options), clock=clock), client


async def test_without_a_peering_object_the_gate_follows_whether_peering_is_mandatory(emulator: EmulatorThread) -> None:
    clock = Clock()
    for mandatory, active in ((False, True), (True, False)):
        gate, client = _gate(emulator, clock, mandatory=mandatory)
        assert await gate.check() is active  # no CRD at all
        await client.close()
    kube = EmulatorClient(emulator.url)
    for crd in KOPF_PEERING_CRDS:
        kube.create(crd)
    gate, client = _gate(emulator, clock, mandatory=True)
    assert await gate.check() is False  # CRD, but no object named lepton-operator
    assert "not found" in gate.reason
    await client.close()
    standalone, client = _gate(emulator, clock, standalone=True, mandatory=True)
    assert standalone.is_active() and await standalone.check()
    await client.close()


async def test_the_gate_pauses_for_a_live_higher_peer_and_resumes_when_its_lifetime_runs_out(
    emulator: EmulatorThread,
) -> None:
    kube = EmulatorClient(emulator.url)
    for crd in KOPF_PEERING_CRDS:
        kube.create(crd)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "lepton-operator"}}
    kube.create(peering)
    clock = Clock()
    gate, client = _gate(emulator, clock, mandatory=True)
    status = {"me": {"priority": 10, "lifetime": 60, "lastseen": _seen(0)},
              "other": {"priority": 20, "lifetime": 3, "lastseen": _seen(1)}}  # fmt: skip
    kube.patch("clusterkopfpeerings", None, "lepton-operator", {"status": status})
    assert await gate.check() is False
    assert "other (priority 20)" in gate.reason

    resumed = asyncio.create_task(gate.wait_for(True))
    await asyncio.sleep(0.05)
    assert not resumed.done()
    clock.now += 2.5  # the other replica's lifetime (3 s since it was seen 1 s ago) runs out
    assert await gate.check() is True
    await asyncio.wait_for(resumed, 1)

    # A replica with the same priority pauses both (kopf's "possibly conflicting operators").
    kube.patch("clusterkopfpeerings", None, "lepton-operator",
               {"status": {"twin": {"priority": 10, "lifetime": 60, "lastseen": _seen(-2.5)}}})  # fmt: skip
    assert await gate.check() is False
    paused = asyncio.create_task(gate.wait_for(False))
    await asyncio.wait_for(paused, 1)
    await client.close()


async def test_namespaced_peering_pauses_when_any_served_namespace_says_so(emulator: EmulatorThread) -> None:
    kube = EmulatorClient(emulator.url)
    for crd in KOPF_PEERING_CRDS:
        kube.create(crd)
    for ns in ("a", "b"):
        kube.ensure_namespace(ns)
        kube.create({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "lepton-operator"}}, ns)
    clock = Clock()
    gate, client = _gate(emulator, clock, namespaces=("a", "b"))
    assert await gate.check() is True
    kube.patch("kopfpeerings", "b", "lepton-operator",
               {"status": {"dev": {"priority": 100, "lifetime": 60, "lastseen": _seen(0)}}})  # fmt: skip
    assert await gate.check() is False
    assert "namespace 'b'" in gate.reason
    await client.close()


async def test_the_gate_keeps_its_state_when_the_api_server_fails(emulator: EmulatorThread) -> None:
    clock = Clock()
    gate, client = _gate(emulator, clock)
    assert await gate.check() is True
    emulator.call(lambda e: e.inject_fault("GET", "clusterkopfpeerings", 500, 20))
    assert await gate.check() is True  # a 500 is not a verdict
    await client.close()


# --- the on-demand pod cache --------------------------------------------------------------------------------


async def test_the_pod_cache_runs_while_held_and_lists_afresh_after_a_pause(emulator: EmulatorThread) -> None:
    kube = EmulatorClient(emulator.url)
    kube.ensure_namespace("ml")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "train-worker-0-r0a0", "labels": {
        "lepton.ai/job-name": "train", "lepton.ai/worker-index": "0", "lepton.ai/run": "0", "lepton.ai/attempt": "0"}},
        "spec": {"containers": [{"name": "main", "image": "x"}]}}  # fmt: skip
    kube.create(pod, "ml")
    client = KubeClient(Endpoint(emulator.url, {}, None))
    informer = PodInformer(client)
    cache = OnDemand(informer, linger_seconds=0.1)

    def pod_watches() -> int:
        return emulator.call(lambda e: len(e.store._watches.get(("", "v1", "pods"), ())))

    async with cache.held() as held, cache.held():  # two daemons
        await asyncio.wait_for(held.ready.wait(), 5)
        assert [p.name for p in held.pods_of("ml", "train")] == ["train-worker-0-r0a0"]
        assert cache.running and informer.relists == 1
    await asyncio.sleep(0.05)
    assert cache.running  # lingers through a short gap
    await asyncio.sleep(0.3)
    assert not cache.running and not informer.ready.is_set() and informer.pods_of("ml", "train") == []
    await _until(lambda: pod_watches() == 0)

    kube.delete("pods", "ml", "train-worker-0-r0a0")  # happens while nobody watches
    async with cache.held() as held:
        await asyncio.wait_for(held.ready.wait(), 5)
        assert held.pods_of("ml", "train") == [] and informer.relists == 2

    # An active replica primes it at start-up, before any daemon exists; unheld, it stops after all.
    await _until(lambda: not cache.running)
    cache.prime(0.2)
    await asyncio.wait_for(informer.ready.wait(), 5)
    assert informer.relists == 3
    await _until(lambda: not cache.running)
    await cache.close()
    await client.close()


async def _until(probe: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")
