"""pytest fixtures for the Kubernetes emulator. Import the ones you use into your conftest.py::

    from tests.kube_emulator.fixtures import kube, kube_emulator, kubeconfig  # noqa: F401

* ``kube_emulator`` — a fresh emulator (``runner.EmulatorThread``) on 127.0.0.1 for one test;
* ``kubeconfig`` — a kubeconfig file pointing at it, also exported as ``KUBECONFIG`` for the test;
* ``kube`` — a ``client.KubeClient`` talking to it over HTTP.

For one emulator shared by a module (e.g. with one operator process), use ``runner.running_emulator()``
in a module-scoped fixture of your own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.runner import EmulatorThread, running_emulator


@pytest.fixture
def kube_emulator() -> Iterator[EmulatorThread]:
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def kubeconfig(kube_emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = kube_emulator.write_kubeconfig(tmp_path / "kubeconfig.yaml")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def kube(kube_emulator: EmulatorThread) -> KubeClient:
    return KubeClient(kube_emulator.url)
