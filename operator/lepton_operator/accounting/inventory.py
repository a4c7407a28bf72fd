"""The edge where Kubernetes objects become typed accounting inputs: Nodes, Pods and LeptonJobs.

Raw dicts from the API are parsed here, once per tick, into ``NodeInfo``, ``PodInfo`` and ``JobInfo``;
nothing past this module looks at a raw object. A pod belongs to a LeptonJob through its
``ownerReferences`` (kind ``LeptonJob``, matched by uid) or, failing that, the ``lepton.ai/job-name``
label. A pod is charged from when its containers started running (``containerStatuses[].state``,
else ``status.startTime``) until they finished (``terminated.finishedAt`` once Succeeded/Failed), for
the requests the scheduler placed it by: ``lepton_core.kube.pod_requests``, the rule the extender reads
pods with (containers, init containers, sidecars, overhead, limits as default requests), and nodes'
allocatable likewise (``node_allocatable``). Times and job ownership are accounting's own, read here.

Malformed objects are skipped and counted, never fatal: one bad pod must not stop the accounting of
ten thousand good ones. Errors are ``ValueError`` naming the object and the field
(``pod ns/p: spec.containers[0].resources.requests.cpu: not a quantity: 'lots'``).
Neighbours: ``loop`` (calls ``parse_*``), ``status`` (the ledger part of a job).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from lepton_core.accounting.budget import Budget, BudgetAction
from lepton_core.kube import Resources, node_allocatable, pod_requests
from lepton_core.kube.fields import array, mapping

_T = TypeVar("_T")

JOB_NAME_LABEL = "lepton.ai/job-name"
"""Fallback link from a pod to its LeptonJob when it has no owner reference."""


def parse_time(text: object, where: str) -> float:
    """RFC 3339 (``2024-05-01T12:00:00Z``, fractions allowed) -> Unix seconds."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected an RFC 3339 time string")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{where}: {text!r} is not an RFC 3339 time") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_time(unix_seconds: float) -> str:
    """Unix seconds -> RFC 3339 in UTC with milliseconds (the ledger's watermark resolution)."""
    ms = round(unix_seconds * 1000.0)
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    allocatable: Resources
    """CPU cores, memory bytes and GPUs, as the scheduler extender reads them."""
    addresses: tuple[str, ...] = ()
    """InternalIP, Hostname, …: aliases for matching Prometheus labels to this node."""
    instance_type: str = ""

    def signature(self) -> tuple[object, ...]:
        """What the node's cost parameters depend on: rebuild the cost table when it changes."""
        return (self.name, tuple(sorted(self.labels.items())), self.allocatable)


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    node: str
    requests: Resources
    """Effective requests, as the scheduler places the pod by (``lepton_core.kube.pod_requests``)."""
    start_s: float
    end_s: float = math.inf
    job_uid: str | None = None
    job_name: str | None = None


@dataclass(frozen=True, slots=True)
class JobInfo:
    namespace: str
    name: str
    uid: str
    resource_version: str
    phase: str
    budget: Budget | None
    expected_duration_seconds: float | None
    status: Mapping[str, Any]
    """The raw ``status`` (cost/energy are parsed by ``status.ledger_from_status``)."""
    conditions: tuple[Mapping[str, Any], ...] = ()
    suspended: bool = False
    cost_profile: str | None = None
    """``spec.costProfile``: the profile to price this job's share of its nodes with (None: the nodes' own)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed", "Stopped")

    def condition(self, kind: str) -> Mapping[str, Any] | None:
        return next((c for c in self.conditions if c.get("type") == kind), None)


@dataclass
class ParseReport:
    """Objects skipped this tick and why (logged and exported, never fatal)."""

    skipped: list[str] = field(default_factory=list)


def parse_node(obj: Mapping[str, Any]) -> NodeInfo:
    meta = mapping(obj.get("metadata"), "node: metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("node: metadata.name is missing")
    status = mapping(obj.get("status"), f"node {name}: status")
    alloc = node_allocatable(status, f"node {name}: status")
    labels = {str(k): str(v) for k, v in mapping(meta.get("labels"), f"node {name}: metadata.labels").items()}
    addresses = tuple(
        str(a["address"])
        for a in array(status.get("addresses"), f"node {name}: status.addresses")
        if isinstance(a, Mapping) and a.get("address")
    )
    instance_type = labels.get("node.kubernetes.io/instance-type", labels.get("beta.kubernetes.io/instance-type", ""))
    return NodeInfo(name, labels, alloc, addresses, instance_type)


def parse_pod(obj: Mapping[str, Any], job_uids: Mapping[str, tuple[str, str]]) -> PodInfo | None:
    """The pod as an accounting input, or None when it never ran on a node (nothing to charge)."""
    core = _parse_pod_core(obj)
    return None if core is None else _attach_job(core, job_uids, {key: uid for uid, key in job_uids.items()})


@dataclass(frozen=True, slots=True)
class _PodCore:
    """What a pod says by itself; which LeptonJob it belongs to is resolved against this tick's jobs."""

    info: PodInfo
    owner_uids: tuple[str, ...]
    job_label: str | None
    attached: dict[str | None, PodInfo] = dataclasses.field(default_factory=dict, compare=False)
    """The PodInfo with each job uid it was resolved to (a memo: resolution rarely changes)."""


def _attach_job(
    core: _PodCore, job_uids: Mapping[str, tuple[str, str]], uid_by_key: Mapping[tuple[str, str], str]
) -> PodInfo:
    info = core.info
    uid = next((owner for owner in core.owner_uids if owner in job_uids), None)
    if uid is None and core.job_label:
        uid = uid_by_key.get((info.namespace, core.job_label))
    if uid is None:
        return info
    attached = core.attached.get(uid)
    if attached is None:
        attached = dataclasses.replace(info, job_uid=uid, job_name=job_uids[uid][1])
        core.attached[uid] = attached
    return attached


def _parse_pod_core(obj: Mapping[str, Any]) -> _PodCore | None:
    meta = mapping(obj.get("metadata"), "pod: metadata")
    ns, name = meta.get("namespace"), meta.get("name")
    if not isinstance(ns, str) or not isinstance(name, str):
        raise ValueError("pod: metadata.namespace/name missing")
    where = f"pod {ns}/{name}"
    spec = mapping(obj.get("spec"), f"{where}: spec")
    status = mapping(obj.get("status"), f"{where}: status")
    node = spec.get("nodeName")
    if not node:
        return None
    starts: list[float] = []
    ends: list[float] = []
    running = False
    for i, cs in enumerate(array(status.get("containerStatuses"), f"{where}: status.containerStatuses")):
        at = f"{where}: status.containerStatuses[{i}]"
        state = mapping(mapping(cs, at).get("state"), f"{at}.state")
        if state.get("running") is not None and mapping(state["running"], f"{at}.state.running").get("startedAt"):
            starts.append(parse_time(state["running"]["startedAt"], f"{at}.startedAt"))
            running = True
        elif state.get("terminated") is not None:
            term = mapping(state["terminated"], f"{at}.state.terminated")
            if term.get("startedAt"):
                starts.append(parse_time(term["startedAt"], f"{where}: containerStatuses[{i}].startedAt"))
            if term.get("finishedAt"):
                ends.append(parse_time(term["finishedAt"], f"{where}: containerStatuses[{i}].finishedAt"))
    phase = status.get("phase")
    if not starts and status.get("startTime") and phase in ("Running", "Succeeded", "Failed"):
        starts.append(parse_time(status["startTime"], f"{where}: status.startTime"))
    if not starts:
        return None  # scheduled but never started: the node is not working for it yet
    end = math.inf
    if phase in ("Succeeded", "Failed") and not running:
        end = max(ends) if ends else math.inf
    owners = tuple(
        str(ref["uid"])
        for ref in array(meta.get("ownerReferences"), f"{where}: metadata.ownerReferences")
        if isinstance(ref, Mapping) and ref.get("kind") == "LeptonJob" and isinstance(ref.get("uid"), str)
    )
    label = mapping(meta.get("labels"), f"{where}: metadata.labels").get(JOB_NAME_LABEL)
    info = PodInfo(ns, name, str(node), pod_requests(spec, f"{where}: spec"), min(starts), end)
    return _PodCore(info, owners, str(label) if label else None)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: expected a non-negative number, got {value!r}")
    return float(value)


def parse_job(obj: Mapping[str, Any]) -> JobInfo:
    meta = mapping(obj.get("metadata"), "leptonjob: metadata")
    ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
    if not (isinstance(ns, str) and isinstance(name, str) and isinstance(uid, str)):
        raise ValueError("leptonjob: metadata.namespace/name/uid missing")
    where = f"leptonjob {ns}/{name}: spec"
    spec = mapping(obj.get("spec"), where)
    status = mapping(obj.get("status"), f"leptonjob {ns}/{name}: status")
    budget = None
    raw_budget = spec.get("budget")
    if isinstance(raw_budget, Mapping):
        action = raw_budget.get("action", "notify")
        try:
            act = BudgetAction(action)
        except ValueError:
            raise ValueError(f"{where}.budget.action: expected notify, suspend or stop, got {action!r}") from None
        budget = Budget(
            _number(raw_budget.get("maxCost"), f"{where}.budget.maxCost"),
            _number(raw_budget.get("maxEnergyKWh"), f"{where}.budget.maxEnergyKWh"),
            act,
        )
        if budget.empty:
            budget = None
    conditions = tuple(
        c
        for c in array(status.get("conditions"), f"leptonjob {ns}/{name}: status.conditions")
        if isinstance(c, Mapping)
    )
    # Any value is kept (as text): a name that is no cost profile is reported on the job, never a reason to
    # stop accounting it.
    raw_profile = spec.get("costProfile")
    cost_profile = None if raw_profile is None or raw_profile == "" else str(raw_profile)[:253]
    return JobInfo(
        namespace=ns,
        name=name,
        uid=uid,
        resource_version=str(meta.get("resourceVersion", "")),
        phase=str(status.get("phase", "")),
        budget=budget,
        expected_duration_seconds=_number(spec.get("expectedDurationSeconds"), f"{where}.expectedDurationSeconds"),
        status=status,
        conditions=conditions,
        suspended=bool(spec.get("suspend", False)),
        cost_profile=cost_profile,
    )


class InventoryParser:
    """``parse_all`` with memory: an object whose ``resourceVersion`` is unchanged is not parsed again.

    Between two ticks almost nothing changes, so a steady tick parses only what did (10,000 jobs and
    13,000 pods cost a dictionary lookup each). Objects without a resourceVersion are always parsed.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, tuple[str, NodeInfo]] = {}
        self._jobs: dict[str, tuple[str, JobInfo]] = {}
        self._pods: dict[str, tuple[str, _PodCore | None]] = {}
        """Pods that never ran are remembered too (as None): nothing to charge until they change."""

    def parse(
        self,
        nodes: Sequence[Mapping[str, Any]],
        pods: Sequence[Mapping[str, Any]],
        jobs: Sequence[Mapping[str, Any]],
    ) -> tuple[list[NodeInfo], list[PodInfo], list[JobInfo], ParseReport]:
        report = ParseReport()
        node_cache: dict[str, tuple[str, NodeInfo]] = {}
        node_infos = [n for obj in nodes if (n := self._cached(obj, self._nodes, node_cache, parse_node, report))]
        job_cache: dict[str, tuple[str, JobInfo]] = {}
        job_infos = [j for obj in jobs if (j := self._cached(obj, self._jobs, job_cache, parse_job, report))]
        uids = {j.uid: j.key for j in job_infos}
        uid_by_key = {j.key: j.uid for j in job_infos}
        pod_cache: dict[str, tuple[str, _PodCore | None]] = {}
        pod_infos = [
            _attach_job(core, uids, uid_by_key)
            for obj in pods
            if (core := self._cached(obj, self._pods, pod_cache, _parse_pod_core, report))
        ]
        self._nodes, self._jobs, self._pods = node_cache, job_cache, pod_cache
        return node_infos, pod_infos, job_infos, report

    @staticmethod
    def _cached(
        obj: Mapping[str, Any],
        old: dict[str, tuple[str, _T]],
        new: dict[str, tuple[str, _T]],
        parse: Callable[[Mapping[str, Any]], _T],
        report: ParseReport,
    ) -> _T | None:
        """``parse(obj)``, or the value remembered for its namespace/name at this resourceVersion; None when
        it does not parse (the reason goes to ``report``). Remembered for the next tick in ``new``."""
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        key = f"{meta.get('namespace')}/{meta.get('name')}" if isinstance(meta, Mapping) else ""
        hit = old.get(key) if rv else None
        if hit is not None and hit[0] == rv:
            value = hit[1]
        else:
            try:
                value = parse(obj)
            except ValueError as exc:
                report.skipped.append(str(exc))
                return None
        if rv:
            new[key] = (str(rv), value)
        return value


def parse_all(
    nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], jobs: Sequence[Mapping[str, Any]]
) -> tuple[list[NodeInfo], list[PodInfo], list[JobInfo], ParseReport]:
    """Parse one listing (no memory; ``InventoryParser`` remembers between ticks)."""
    return InventoryParser().parse(nodes, pods, jobs)
