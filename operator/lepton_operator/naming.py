"""Names, labels and annotations the operator puts on the objects it owns.

Pod names are deterministic, so creating a worker twice is a 409 the operator adopts, never a duplicate:
``<job>-worker-<index>-r<run>a<attempt>``. ``run`` grows with every whole-gang restart and every resume,
``attempt`` with every replacement of one worker within a run; a name is never reused, so a replacement
never waits for its predecessor to terminate, and failed pods stay for ``kubectl logs``. Hostnames are
stable across attempts (``<job>-worker-<index>``), so ``MASTER_ADDR`` never changes.
"""

from __future__ import annotations

from typing import Final

from lepton_operator.crd import GROUP

LABEL_JOB: Final = f"{GROUP}/job-name"
LABEL_INDEX: Final = f"{GROUP}/worker-index"
LABEL_RUN: Final = f"{GROUP}/run"
LABEL_ATTEMPT: Final = f"{GROUP}/attempt"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "lepton-operator"

GANG_GATE: Final = f"{GROUP}/gang"
"""Scheduling gate on every worker until the whole gang exists; removed from all workers together."""

ANNOTATION_STOP: Final = f"{GROUP}/stop"
"""Set (value: a CamelCase reason) to end the job in phase Stopped; live cost accounting uses it for
budgets whose action is ``stop``."""
ANNOTATION_STOP_MESSAGE: Final = f"{GROUP}/stop-message"

FINALIZER: Final = f"{GROUP}/operator"
"""kopf's finalizer, under our name: it lets the operator stop a job's daemon before the job goes."""

PRIORITY_CLASS_PREFIX: Final = "lepton-priority-"


def worker_hostname(job: str, index: int) -> str:
    return f"{job}-worker-{index}"


def worker_pod_name(job: str, index: int, run: int, attempt: int) -> str:
    return f"{job}-worker-{index}-r{run}a{attempt}"


def service_name(job: str) -> str:
    return job


def master_address(job: str, namespace: str) -> str:
    """DNS name of worker 0 through the job's headless service."""
    return f"{worker_hostname(job, 0)}.{service_name(job)}.{namespace}.svc"


def priority_class_name(priority: int) -> str:
    return f"{PRIORITY_CLASS_PREFIX}{priority}"
