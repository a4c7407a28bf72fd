"""Fixtures for the operator's tests: the emulator with the LeptonJob CRD, and real operator processes.

``OperatorProcess`` runs ``python -m lepton_operator`` (what ``lepton operator`` runs) against a
kubeconfig, and can stop it gracefully, kill it with SIGKILL and start it again. ``cluster`` is one
emulator + CRD + operator shared by a module; each test gets its own namespace (``ns``), so tests stay
independent while paying for one operator start.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kube_emulator.client import KubeClient, Kubelet
from tests.kube_emulator.cluster import node
from tests.kube_emulator.fixtures import kube, kube_emulator, kubeconfig
from tests.kube_emulator.runner import EmulatorThread, running_emulator

__all__ = ["kube", "kube_emulator", "kubeconfig"]

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "deploy" / "base" / "crd-leptonjob.yaml"
SAMPLES = REPO / "deploy" / "samples"
_namespaces = itertools.count()


class OperatorProcess:
    """``python -m lepton_operator`` in a subprocess; its log goes to a file kept for failed tests."""

    def __init__(self, kubeconfig: Path, log_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.args = args
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO / "src"), str(REPO)]),
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lepton_operator", "--metrics-port", "-1", "--resync-seconds", "5", *self.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finalizer handling, no peering goodbye — like a crashed node."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Cluster:
    emulator: EmulatorThread
    kube: KubeClient
    kubelet: Kubelet
    kubeconfig: Path
    operator: OperatorProcess | None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One emulator (CRD installed, two GPU nodes) and one operator for the whole module."""
    tmp = tmp_path_factory.mktemp("cluster")
    with running_emulator() as emulator:
        kube = KubeClient(emulator.url)
        kube.apply_file(CRD_PATH)
        for n in range(2):
            kube.create(node(f"gpu-{n}", gpus=8, gpu_model="NVIDIA-A100-SXM4-80GB"))
        kubeconfig_path = emulator.write_kubeconfig(tmp / "kubeconfig.yaml")
        operator = OperatorProcess(kubeconfig_path, tmp / "operator.log", "--standalone").start()
        try:
            yield Cluster(emulator, kube, Kubelet(kube), kubeconfig_path, operator)
        finally:
            operator.stop()
            print(operator.log()[-4000:])  # shown by pytest when a test of the module failed


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"t{next(_namespaces)}-{os.getpid() % 1000}"
    cluster.kube.ensure_namespace(name)
    return name


def job_manifest(name: str, *, workers: int = 2, gpus: int = 0, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "nvcr.io/nvidia/pytorch:24.05-py3",
        "command": ["torchrun", "train.py"],
        "env": [{"name": "EPOCHS", "value": "3"}, {"name": "RANK", "value": "99"}],
    }
    if gpus:
        container["resources"] = {"requests": {"nvidia.com/gpu": gpus, "cpu": "8"}, "limits": {"nvidia.com/gpu": gpus}}
    return {
        "apiVersion": "lepton.ai/v1alpha1",
        "kind": "LeptonJob",
        "metadata": {"name": name},
        "spec": {
            "workers": workers,
            "template": {"metadata": {"labels": {"team": "ml"}}, "spec": {"containers": [container]}},
            **spec,
        },
    }


def wait_phase(kube: KubeClient, ns: str, name: str, phase: str, timeout_seconds: float = 20.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job = kube.find("lj", ns, name)
        return job if job is not None and (job.get("status") or {}).get("phase") == phase else None

    return kube.wait_for(probe, timeout_seconds=timeout_seconds, what=f"{ns}/{name} in phase {phase}")


def worker_pods(kube: KubeClient, ns: str, job: str) -> list[dict[str, Any]]:
    return kube.list("pods", ns, labels=f"lepton.ai/job-name={job}")


def wait_released(kube: KubeClient, ns: str, job: str, count: int, timeout_seconds: float = 20.0) -> list[str]:
    """Names of ``count`` current worker pods once all of them are ungated (sorted by worker index)."""

    def probe() -> list[str] | None:
        pods = [
            p
            for p in worker_pods(kube, ns, job)
            if p["status"]["phase"] in ("Pending", "Running") and not p["metadata"].get("deletionTimestamp")
        ]
        if len(pods) == count and all(not p["spec"].get("schedulingGates") for p in pods):
            return [
                p["metadata"]["name"]
                for p in sorted(pods, key=lambda p: int(p["metadata"]["labels"]["lepton.ai/worker-index"]))
            ]
        return None

    return kube.wait_for(probe, timeout_seconds=timeout_seconds, what=f"{count} released workers of {ns}/{job}")


def event_reasons(kube: KubeClient, ns: str, job: str) -> list[str]:
    events = sorted(kube.events(ns, job), key=lambda e: (e["lastTimestamp"], e["metadata"]["resourceVersion"]))
    return [e["reason"] for e in events]


def requests_by(emulator: EmulatorThread, replica: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, query) of every request the operator replica ``replica`` sent, in order.

    The operator's own client names its replica in the User-Agent (``lepton-operator (<POD_NAME>)``);
    kopf's requests carry kopf's agent and are not included.
    """

    def read(e: Any) -> list[tuple[str, str, dict[str, str]]]:
        return [
            (r.method.value, r.url.path, dict(r.params))
            for r in e._requests  # kmock's request log (the emulator records requests by default)
            if f"({replica})" in dict(r.headers).get("User-Agent", "")
        ]

    return emulator.call(read)


def settle(seconds: float = 1.0) -> None:
    """Give the operator time to (not) react, for assertions that something does not happen."""
    time.sleep(seconds)
