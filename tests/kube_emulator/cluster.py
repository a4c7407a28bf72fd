"""Stand-ins for the parts of a cluster that are not the API server: kube-scheduler and the kubelet.

``Autopilot`` (opt-in) watches the store from inside the emulator: it binds every pod that has no node
and no scheduling gates to a Ready node (round robin, through the same ``binding`` path a scheduler
uses) and, after ``start_delay_seconds``, marks it Running and Ready as a kubelet would. Finishing pods
(Succeeded or Failed) is left to tests, which do it over HTTP with ``client.Kubelet``.

``node(...)`` builds a Node object with allocatable CPU, memory and GPUs and the labels cost profiles
match on.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.kube_emulator.errors import ApiError
from tests.kube_emulator.resources import ResourceInfo
from tests.kube_emulator.store import Body, Store, now_rfc3339


def node(
    name: str,
    *,
    cpu: int = 32,
    memory_gib: int = 256,
    gpus: int = 0,
    gpu_model: str | None = None,
    labels: dict[str, str] | None = None,
) -> Body:
    allocatable: dict[str, str] = {"cpu": str(cpu), "memory": f"{memory_gib}Gi", "pods": "110"}
    all_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
        if gpu_model:
            all_labels["nvidia.com/gpu.product"] = gpu_model
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {},
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": f"10.0.{len(name) % 250}.{abs(hash(name)) % 250 + 1}"}],
        },
    }


@dataclass
class Autopilot:
    store: Store
    start_delay_seconds: float = 0.0
    scheduler_names: frozenset[str] | None = None
    """Only pods for these schedulers are placed (None: every pod)."""
    _round_robin: itertools.count[int] = field(default_factory=itertools.count)
    _pending: set[tuple[str, str]] = field(default_factory=set)

    def install(self) -> None:
        self.store.add_listener(self._on_change)
        for pod in self.store.items(self._pods()):
            self._on_change("ADDED", self._pods(), pod, None)

    def _pods(self) -> ResourceInfo:
        return self.store.resource("", "v1", "pods")

    def _on_change(self, event_type: str, info: ResourceInfo, obj: Body, _old: Body | None) -> None:
        if info.plural != "pods" or event_type == "DELETED":
            return
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        if spec.get("nodeName") or spec.get("schedulingGates") or meta.get("deletionTimestamp"):
            return
        if self.scheduler_names is not None and spec.get("schedulerName") not in self.scheduler_names:
            return
        key = (meta["namespace"], meta["name"])
        if key not in self._pending:
            self._pending.add(key)
            # Not inside the store's own call stack: the listener runs in the middle of a write.
            asyncio.get_running_loop().call_soon(self._bind, key)

    def _bind(self, key: tuple[str, str]) -> None:
        self._pending.discard(key)
        nodes = [
            n
            for n in self.store.items(self.store.resource("", "v1", "nodes"))
            if not (n.get("spec") or {}).get("unschedulable")
        ]
        if not nodes:
            return
        target = nodes[next(self._round_robin) % len(nodes)]["metadata"]["name"]
        try:
            self.store.bind(key[0], key[1], {"target": {"kind": "Node", "name": target}})
        except ApiError:
            return  # deleted or bound meanwhile
        asyncio.get_running_loop().call_later(self.start_delay_seconds, self._start, key)

    def _start(self, key: tuple[str, str]) -> None:
        pod = self.store.try_get(self._pods(), key[0], key[1])
        if pod is None or (pod.get("status") or {}).get("phase") != "Pending":
            return
        status = copy.deepcopy(pod.get("status") or {})
        started = now_rfc3339()
        status.update(
            {
                "phase": "Running",
                "podIP": f"10.244.{hash(key) % 250}.{hash(key[1]) % 250 + 1}",
                "startTime": started,
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "ready": True,
                        "restartCount": 0,
                        "image": c.get("image", ""),
                        "state": {"running": {"startedAt": started}},
                    }
                    for c in (pod.get("spec") or {}).get("containers", [])
                ],
            }
        )
        conditions = [c for c in status.get("conditions", []) if c.get("type") not in ("Ready", "ContainersReady")]
        conditions += [
            {"type": t, "status": "True", "lastTransitionTime": started} for t in ("Ready", "ContainersReady")
        ]
        status["conditions"] = conditions
        self.store.patch(
            self._pods(),
            key[0],
            key[1],
            {"status": status},
            content_type="application/merge-patch+json",
            subresource="status",
        )


def pod_status(
    phase: str,
    *,
    exit_code: int | None = None,
    reason: str | None = None,
    ready: bool | None = None,
    containers: list[str] | None = None,
) -> dict[str, Any]:
    """A pod status as a kubelet would report it (for ``client.Kubelet``)."""
    now = now_rfc3339()
    is_ready = phase == "Running" if ready is None else ready
    state: dict[str, Any]
    if phase in ("Succeeded", "Failed"):
        code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
        state = {
            "terminated": {
                "exitCode": code,
                "reason": reason or ("Completed" if code == 0 else "Error"),
                "finishedAt": now,
            }
        }
    elif phase == "Running":
        state = {"running": {"startedAt": now}}
    else:
        state = {"waiting": {"reason": reason or "ContainerCreating"}}
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True" if is_ready else "False", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True" if is_ready else "False", "lastTransitionTime": now},
        ],
        "containerStatuses": [
            {"name": name, "ready": is_ready, "restartCount": 0, "state": state, "image": ""}
            for name in (containers or ["main"])
        ],
    }
    if reason and phase == "Failed":
        status["reason"] = reason
    return status
