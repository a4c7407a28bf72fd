"""Worker pods and the job's headless service: built from the spec, and read back as ``PodView``.

Everything here is pure: manifests in, manifests out. ``lepton_operator.lifecycle`` decides which pods
should exist; ``lepton_operator.controller`` creates them with ``worker_pod``/``headless_service`` and
feeds what the API reports back through ``PodView.from_pod``.

Every container (init containers too) gets ``LEPTON_JOB_NAME``, ``LEPTON_JOB_WORKER_INDEX``,
``LEPTON_JOB_TOTAL_WORKERS`` and the torch.distributed rendezvous variables ``MASTER_ADDR``,
``MASTER_PORT``, ``WORLD_SIZE`` and ``RANK``; template entries with those names are replaced, because
a gang whose members disagree on them cannot start.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lepton_operator import naming
from lepton_operator.crd import API_VERSION, KIND
from lepton_operator.spec import JobSpec

INJECTED_ENV = (
    "LEPTON_JOB_NAME",
    "LEPTON_JOB_WORKER_INDEX",
    "LEPTON_JOB_TOTAL_WORKERS",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
)


@dataclass(frozen=True, slots=True)
class JobRef:
    namespace: str
    name: str
    uid: str

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def worker_env(job: JobRef, spec: JobSpec, index: int) -> list[dict[str, str]]:
    return [
        {"name": "LEPTON_JOB_NAME", "value": job.name},
        {"name": "LEPTON_JOB_WORKER_INDEX", "value": str(index)},
        {"name": "LEPTON_JOB_TOTAL_WORKERS", "value": str(spec.workers)},
        {"name": "MASTER_ADDR", "value": naming.master_address(job.name, job.namespace)},
        {"name": "MASTER_PORT", "value": str(spec.master_port)},
        {"name": "WORLD_SIZE", "value": str(spec.workers)},
        {"name": "RANK", "value": str(index)},
    ]


def worker_labels(job: JobRef, index: int, run: int, attempt: int) -> dict[str, str]:
    return {
        naming.LABEL_JOB: job.name,
        naming.LABEL_INDEX: str(index),
        naming.LABEL_RUN: str(run),
        naming.LABEL_ATTEMPT: str(attempt),
        naming.LABEL_MANAGED_BY: naming.MANAGER,
    }


def worker_pod(
    job: JobRef, spec: JobSpec, index: int, run: int, attempt: int, *, gated: bool, priority_class: str | None
) -> dict[str, Any]:
    """The pod of worker ``index`` (attempt ``attempt`` of run ``run``)."""
    template = copy.deepcopy(dict(spec.template))
    template_meta = template.get("metadata") or {}
    pod_spec: dict[str, Any] = template.get("spec") or {}
    env = worker_env(job, spec, index)
    for kind in ("initContainers", "containers"):
        for container in pod_spec.get(kind) or []:
            kept = [e for e in container.get("env") or [] if e.get("name") not in INJECTED_ENV]
            container["env"] = kept + [dict(e) for e in env]
    pod_spec["schedulerName"] = spec.scheduler_name
    pod_spec["hostname"] = naming.worker_hostname(job.name, index)
    pod_spec["subdomain"] = naming.service_name(job.name)
    pod_spec.setdefault("restartPolicy", "Never")
    if priority_class and not pod_spec.get("priorityClassName"):
        pod_spec["priorityClassName"] = priority_class
    if gated:
        pod_spec["schedulingGates"] = [{"name": naming.GANG_GATE}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": naming.worker_pod_name(job.name, index, run, attempt),
            "namespace": job.namespace,
            "labels": {**(template_meta.get("labels") or {}), **worker_labels(job, index, run, attempt)},
            "annotations": dict(template_meta.get("annotations") or {}),
            "ownerReferences": [job.owner_reference()],
        },
        "spec": pod_spec,
    }


def headless_service(job: JobRef, spec: JobSpec) -> dict[str, Any]:
    """Gives every worker a stable DNS name (``<job>-worker-<i>.<job>``), ready or not: ranks rendezvous
    before any readiness probe could pass."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": naming.service_name(job.name),
            "namespace": job.namespace,
            "labels": {naming.LABEL_JOB: job.name, naming.LABEL_MANAGED_BY: naming.MANAGER},
            "ownerReferences": [job.owner_reference()],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {naming.LABEL_JOB: job.name},
            "ports": [
                {"name": "rendezvous", "port": spec.master_port, "targetPort": spec.master_port, "protocol": "TCP"}
            ],
        },
    }


@dataclass(frozen=True, slots=True)
class PodView:
    """What the lifecycle needs to know about one worker pod."""

    name: str
    owner_uid: str | None
    index: int
    run: int
    attempt: int
    phase: str
    """Pending, Running, Succeeded, Failed or Unknown."""
    ready: bool = False
    gated: bool = False
    """Still held by the gang gate."""
    node: str | None = None
    deleting: bool = False
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def active(self) -> bool:
        return not self.terminal and not self.deleting

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any]) -> PodView | None:
        """None for pods that are not well-formed Lepton workers (foreign labels are ignored, not trusted)."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        try:
            index, run, attempt = (int(labels[k]) for k in (naming.LABEL_INDEX, naming.LABEL_RUN, naming.LABEL_ATTEMPT))
        except (KeyError, TypeError, ValueError):
            return None
        owner = next((r.get("uid") for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        gated = any(g.get("name") == naming.GANG_GATE for g in spec.get("schedulingGates") or [])
        exit_code, reason = None, status.get("reason")
        for container in status.get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated and terminated.get("exitCode", 0) != 0:
                exit_code = terminated.get("exitCode")
                reason = reason or terminated.get("reason")
                break
        return cls(
            name=str(meta.get("name", "")),
            owner_uid=owner,
            index=index,
            run=run,
            attempt=attempt,
            phase=str(status.get("phase") or "Pending"),
            ready=ready,
            gated=gated,
            node=spec.get("nodeName") or None,
            deleting=bool(meta.get("deletionTimestamp")),
            exit_code=exit_code,
            reason=reason,
            message=status.get("message"),
        )

    def describe_failure(self) -> str:
        parts = [self.reason or ("deleted" if self.deleting else "failed")]
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        return ", ".join(parts)
