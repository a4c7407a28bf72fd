"""Two operator replicas with kopf peering: only the active one accounts; when it dies the standby takes
over, and the job's cost continues exactly — no gap, nothing counted twice.

Real parts: two ``python -m lepton_operator`` processes (accounting loaded through the extension hook)
against the Kubernetes emulator, peering through a ``ClusterKopfPeering`` object; each replica's own
``/metrics``; the emulator's request log, where every request carries the replica's User-Agent. The cost
profile draws constant power, so the exact cost is the job's running time times one rate, computed here.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lepton_core.accounting.amounts import NANO_PER_UNIT
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.accounting.status import ledger_from_status
from tests.kube_emulator.client import KubeClient, Kubelet
from tests.kube_emulator.cluster import node
from tests.kube_emulator.resources import KOPF_PEERING_CRDS
from tests.kube_emulator.runner import EmulatorThread, running_emulator
from tests.operator.conftest import (
    CRD_PATH,
    OperatorProcess,
    job_manifest,
    requests_by,
    wait_phase,
    wait_released,
)

NS = "ml"
# 200 kW flat, 1,000/h hardware (43.8 M over 5 years), 1,000/h operations, 0.5 per kWh: the node costs
# 2,100/h at any load (large, so that the ledger's 1e-9 rounding is far below the 1e-6 checked); a job
# holding 8 of its 32 cores pays a quarter of that.
PROFILES = """
apiVersion: lepton.ai/v1alpha1
kind: CostProfileSet
currency: USD
defaultProfile: flat
tariffs:
  default: {flat: {pricePerKWh: 0.5}}
profiles:
  - name: flat
    platform: {curve: [[0, 200000], [1, 200000]]}
    hardware: {purchasePrice: 43800000, lifetimeYears: 5}
    operations: {perNodeYear: 8760000}
"""
JOB_RATE_PER_SECOND = 0.25 * 2100.0 / 3600.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sample(port: int, name: str, **labels: str) -> float | None:
    """The first sample of ``name`` with these labels on a replica's /metrics (None: absent or no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


def _container_status(phase: str, started: float, finished: float | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": _stamp(started)}}
    if finished is not None:
        state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": _stamp(started),
                                "finishedAt": _stamp(finished)}}  # fmt: skip
    return {"phase": phase, "containerStatuses": [
        {"name": "main", "ready": finished is None, "restartCount": 0, "image": "", "state": state}]}  # fmt: skip


def _stamp(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, tz=UTC).isoformat()


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with running_emulator() as emulator:
        kube = KubeClient(emulator.url)
        kube.apply_file(CRD_PATH)
        for crd in KOPF_PEERING_CRDS:
            kube.create(crd)
        kube.create(
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "lepton-operator"}}
        )
        kube.create(node("cpu-0", cpu=32))
        kube.ensure_namespace(NS)
        yield emulator


def test_only_the_active_replica_accounts_and_a_standby_continues_the_ledger_exactly(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    kube = KubeClient(emulator.url)
    kubelet = Kubelet(kube)
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES)
    ports = {"active": _free_port(), "standby": _free_port()}

    def replica(name: str, priority: int) -> OperatorProcess:
        return OperatorProcess(
            kubeconfig, tmp_path / f"{name}.log", "--peering", "lepton-operator", "--peering-lifetime", "3",
            "--priority", str(priority), "--accounting-interval", "1", f"--cost-profiles={profiles}",
            "--metrics-host", "127.0.0.1", env={"POD_NAME": name},
        )  # fmt: skip

    active, standby = replica("active", 100), replica("standby", 50)
    # OperatorProcess passes --metrics-port -1 first; a later flag wins in argparse.
    active.args += ("--metrics-port", str(ports["active"]))
    standby.args += ("--metrics-port", str(ports["standby"]))

    def peers() -> int:
        return len(kube.get("clusterkopfpeerings", None, "lepton-operator").get("status") or {})

    try:
        active.start()
        kube.wait_for(lambda: peers() == 1, timeout_seconds=20, what="the active replica in the peering object")
        standby.start()
        kube.wait_for(lambda: peers() == 2, timeout_seconds=20, what="both replicas in the peering object")
        job = job_manifest("train", workers=1)
        job["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "8"}}
        kube.create(job, NS)
        (worker,) = wait_released(kube, NS, "train", 1)
        kubelet.bind(NS, worker, "cpu-0")
        # Start and finish times are stamped a moment ahead of the reports, as if the kubelet reported
        # them at once: a report that lags the fact is charged up to the tick that first sees it, which
        # is not what this test is about.
        started = time.time() + 1.0
        kube.patch("pods", NS, worker, {"status": _container_status("Running", started)}, subresource="status")

        def written() -> dict[str, Any] | None:
            cost = (kube.get("leptonjobs.lepton.ai", NS, "train").get("status") or {}).get("cost") or {}
            return cost if cost.get("observedAt") else None

        kube.wait_for(written, timeout_seconds=20, what="the first status.cost")
        time.sleep(3.0)  # the active replica accounts a few more windows, which it will never write

        # --- only the active replica accounts; the standby sent no accounting or lifecycle request
        assert _sample(ports["active"], "lepton_accounting_active") == 1.0
        assert _sample(ports["standby"], "lepton_accounting_active") == 0.0
        assert _sample(ports["standby"], "lepton_job_cost_total") is None  # a standby shows no cost series
        sent = requests_by(emulator, "standby")
        assert not [r for r in sent if r[1] == "/api/v1/nodes"], "the standby listed nodes (accounting ran)"
        assert not [r for r in sent if r[0] == "PATCH"], "the standby wrote something"
        assert not [r for r in sent if r[1] == "/api/v1/pods" and r[2].get("watch")], "the standby watches pods"
        assert [r for r in requests_by(emulator, "active") if r[1] == "/api/v1/nodes"]

        # --- the active replica dies without a word: what it accounted but had not written is lost
        active.kill()
        kube.wait_for(lambda: _sample(ports["standby"], "lepton_accounting_active") == 1.0, timeout_seconds=30,
                      what="the standby to take over accounting")  # fmt: skip
        time.sleep(2.0)
        finished = time.time() + 1.0
        status = _container_status("Succeeded", started, finished)
        kube.patch("pods", NS, worker, {"status": status}, subresource="status")
        wait_phase(kube, NS, "train", "Succeeded", timeout_seconds=30)

        def final() -> dict[str, Any] | None:
            status = kube.get("leptonjobs.lepton.ai", NS, "train").get("status") or {}
            observed = (status.get("cost") or {}).get("observedAt")
            return status if observed and _seconds(observed) >= finished else None

        status = kube.wait_for(final, timeout_seconds=20, what="the final status.cost")
        ledger = ledger_from_status(status, AccountingSettings().history)

        # --- no gap, nothing twice: every millisecond of the run was charged once, at the one rate
        ran_seconds = _seconds(_stamp(finished)) - _seconds(_stamp(started))  # as the pod's status says
        ran_ms = round(ran_seconds * 1000)
        windows = ledger.history.windows
        assert abs(ledger.active_ms - ran_ms) <= windows + 2, (ledger.active_ms, ran_ms, windows)
        # One lost window would be ~10 % off, one counted twice ~10 % over; rounding is ~1e-11 here.
        assert ledger.amounts.total / NANO_PER_UNIT == pytest.approx(JOB_RATE_PER_SECOND * ran_seconds, rel=1e-6)
        assert ledger.amounts.joules == pytest.approx(0.25 * 200_000.0 * ran_seconds, rel=1e-6)
        assert (_sample(ports["standby"], "lepton_accounting_status_writes_total", outcome="ok") or 0.0) > 0
        assert "accounting resumed" in standby.log(), standby.log()[-3000:]
        assert "Traceback" not in standby.log(), standby.log()[-3000:]
    finally:
        active.stop()
        standby.stop()
