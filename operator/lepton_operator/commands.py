"""Requests other components make of a LeptonJob's lifecycle (live cost accounting's budget actions).

They only change the job's spec or annotations; the job's daemon notices through its watch and acts
(``lifecycle``), so a request made twice, or while the operator restarts, is harmless.
"""

from __future__ import annotations

from lepton_operator import naming
from lepton_operator.crd import GROUP, PLURAL, VERSION
from lepton_operator.kube import KubeClient, group_path


async def request_suspend(kube: KubeClient, namespace: str, name: str) -> None:
    """Set ``spec.suspend``: the workers are removed, the job waits in phase Suspended."""
    await kube.patch(group_path(GROUP, VERSION, PLURAL, namespace, name), {"spec": {"suspend": True}})


async def request_stop(kube: KubeClient, namespace: str, name: str, reason: str, message: str) -> None:
    """End the job in phase Stopped with ``reason`` (CamelCase, e.g. BudgetExceeded) and ``message``."""
    patch = {"metadata": {"annotations": {naming.ANNOTATION_STOP: reason, naming.ANNOTATION_STOP_MESSAGE: message}}}
    await kube.patch(group_path(GROUP, VERSION, PLURAL, namespace, name), patch)
