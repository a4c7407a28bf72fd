"""A Kubernetes API server emulator for tests, on top of kmock (``docs/notes/kube-emulator.md``).

* ``store`` — objects, resourceVersions, watches, finalizers and garbage collection with Kubernetes
  semantics; ``schema`` — CRD defaulting, pruning and validation (JSON Schema + CEL);
  ``patches`` — merge, JSON and strategic-merge patches; ``selectors`` — label and field selectors;
* ``server`` — the HTTP API (kmock ``KubernetesScaffold`` + discovery), where kmock reactions can inject
  faults; ``cluster`` — scheduler/kubelet stand-ins; ``runner`` — the emulator in a thread, kubeconfigs;
* ``client`` — a kubectl-like test client; ``fixtures`` — pytest fixtures;
  ``python -m tests.kube_emulator`` — the emulator as a process (benchmarks, manual runs).
"""

from tests.kube_emulator.client import KubeApiError, KubeClient, Kubelet
from tests.kube_emulator.runner import EmulatorThread, running_emulator, write_kubeconfig

__all__ = ["EmulatorThread", "KubeApiError", "KubeClient", "Kubelet", "running_emulator", "write_kubeconfig"]
