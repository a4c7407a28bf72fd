"""The emulator's own tests use its public fixtures."""

from tests.kube_emulator.fixtures import kube, kube_emulator, kubeconfig

__all__ = ["kube", "kube_emulator", "kubeconfig"]
