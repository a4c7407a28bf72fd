"""Fixtures for the accounting tests: the Kubernetes emulator (tests/kube_emulator) is shared from there."""

from tests.kube_emulator.fixtures import kube, kube_emulator  # noqa: F401
