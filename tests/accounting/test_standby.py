"""The accounting loop under kopf peering, in process: a standby sends nothing, a replica that is paused
writes what it had pending before it idles, and handing the work back and forth loses and repeats nothing —
in the jobs' ledgers and, for orderly handovers, in the node counters too.

Real wire: the Kubernetes emulator over HTTP; two ``AccountingLoop.run`` drivers in real time, each told
by its own activity toggle (what ``lepton_operator.peering.PeeringGate`` tells it in the operator) whether
it is the active replica. ``test_failover.py`` does the same with two operator processes and a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from lepton_core.accounting.amounts import NANO_PER_UNIT
from lepton_core.models.cost import HardwareAmortization, OperationsCost
from lepton_core.models.power import PowerCurve
from lepton_core.models.tariff import FlatTariff
from lepton_core.profiles import CostProfile, ProfileSet
from lepton_core.units import HOURS_PER_YEAR
from lepton_operator.accounting.kube import KubeApi
from lepton_operator.accounting.loop import AccountingLoop
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.accounting.status import ledger_from_status
from tests.accounting import cluster
from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.runner import EmulatorThread

NS = "handover"
# Constant power, large figures: the node costs 1,000/h + 1,000/h + 100 kW at 1.0/kWh = 2,100/h at any load,
# so the exact cost is time × rate and the ledger's 1e-9 rounding is far below what is checked.
FLAT = CostProfile(
    name="flat",
    platform=PowerCurve.linear(100_000.0, 100_000.0),
    gpu=None,
    gpu_count=0,
    gpu_model=None,
    hardware=HardwareAmortization(1_000.0 * 5 * HOURS_PER_YEAR, 5.0),
    price_per_gpu=0.0,
    operations=OperationsCost(1_000.0 * HOURS_PER_YEAR),
    tariff=FlatTariff(1.0),
    pue=1.0,
    currency="USD",
)
NODE_RATE_PER_SECOND = 2_100.0 / 3600.0


class Toggle:
    """An activity a test switches by hand."""

    def __init__(self, active: bool) -> None:
        self._on, self._off = asyncio.Event(), asyncio.Event()
        self.set(active)

    def set(self, active: bool) -> None:
        (self._on if active else self._off).set()
        (self._off if active else self._on).clear()

    def is_active(self) -> bool:
        return self._on.is_set()

    async def wait_for(self, active: bool) -> None:
        await (self._on if active else self._off).wait()


async def _until(probe: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_standby_sends_nothing_and_handovers_lose_and_repeat_nothing(
    kube: KubeClient, kube_emulator: EmulatorThread
) -> None:
    cluster.install(kube, NS)
    cluster.add_node(kube, "cpu-c", cpu=32, gpus=0, node_class="cpu")
    job = cluster.add_job(kube, NS, "train")
    started = time.time()
    cluster.start_pod(kube, job, "train-0", node_name="cpu-c", cpu=8, gpus=0, started_at=started)

    settings = AccountingSettings(interval_seconds=0.2)  # statuses rewritten at most every 60 s
    profiles = ProfileSet(profiles=(FLAT,), default=FLAT, currency="USD")
    apis = {name: KubeApi.for_url(kube_emulator.url) for name in ("a", "b")}
    loops = {name: AccountingLoop(api, profiles, settings) for name, api in apis.items()}
    toggles = {"a": Toggle(True), "b": Toggle(False)}
    tasks = [asyncio.create_task(loops[n].run(activity=toggles[n])) for n in ("a", "b")]

    def stored_ms() -> int | None:
        status = kube.get("leptonjobs.lepton.ai", NS, "train").get("status") or {}
        return ledger_from_status(status, settings.history).observed_at_ms

    try:
        await _until(lambda: stored_ms() is not None, "the first status write")
        await asyncio.sleep(1.0)
        # --- a standby sends nothing and shows no cost series
        assert (apis["b"].reads, apis["b"].writes) == (0, 0)
        assert not loops["b"].view().active and not loops["b"].view().jobs
        assert loops["a"].view().active and (NS, "train") in loops["a"].view().jobs
        first_write = stored_ms()

        # --- orderly handover: a is paused, writes what it had pending, then b takes over
        toggles["a"].set(False)
        await _until(lambda: not loops["a"].view().active, "a to stand by")
        flushed = stored_ms()
        assert flushed is not None and first_write is not None and flushed > first_write
        assert apis["a"].writes >= 2  # the first write, then the flush before standing by
        reads_a = apis["a"].reads
        toggles["b"].set(True)
        await asyncio.sleep(1.0)
        assert apis["a"].reads == reads_a  # a standby lists nothing
        assert apis["b"].reads > 0

        # --- and back again
        toggles["b"].set(False)
        await _until(lambda: not loops["b"].view().active, "b to stand by")
        toggles["a"].set(True)
        await asyncio.sleep(1.0)

        # The pod finishes a moment ahead (as if reported at once), then a stops gracefully.
        finished = time.time() + 0.5
        cluster.finish_pod(kube, NS, "train-0", started_at=started, finished_at=finished)
        await asyncio.sleep(1.0)
    finally:
        for loop in loops.values():
            loop.stop()
        await asyncio.gather(*tasks)
        for api in apis.values():
            await api.close()

    # --- the job's ledger: every millisecond of the run charged once, at the one rate
    status = kube.get("leptonjobs.lepton.ai", NS, "train")["status"]
    ledger = ledger_from_status(status, settings.history)
    ran = round(finished * 1000) / 1000 - round(started * 1000) / 1000  # the stamps' millisecond resolution
    assert abs(ledger.active_ms - ran * 1000) <= ledger.history.windows + 1
    assert ledger.amounts.total / NANO_PER_UNIT == pytest.approx(0.25 * NODE_RATE_PER_SECOND * ran, rel=1e-6)
    assert loops["a"].view().writes["conflict"] + loops["b"].view().writes["conflict"] == 0

    # --- node counters: a and b each counted their own spells, together the whole time exactly once
    last = loops["a"].last_tick
    assert last is not None
    node_total = sum(float(loops[n].view().totals.cost["cpu-c"].sum()) for n in ("a", "b"))
    assert node_total == pytest.approx(NODE_RATE_PER_SECOND * (last - round(started * 1000) / 1000), rel=1e-6)
    assert all(float(loops[n].view().totals.cost["cpu-c"].sum()) > 0 for n in ("a", "b"))
