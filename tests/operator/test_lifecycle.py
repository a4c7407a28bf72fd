"""The lifecycle planner (pure): scenario tables for each rule, and a property test that drives random
pod histories through plan -> act -> plan and checks what must always hold (no duplicate workers, gangs
start all-or-nothing, limits respected, terminal phases final, replays change nothing)."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_operator import lifecycle, naming
from lepton_operator.status import merge_conditions
from lepton_operator.workers import PodView

UID = "job-uid"
T0 = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.UTC)


def job_body(
    *, workers: int = 2, status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": "train", "namespace": "ml", "uid": UID, "generation": 1, "annotations": annotations or {}},
        "spec": {"workers": workers, "template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}, **spec},
        "status": status or {},
    }


def pod(
    index: int,
    phase: str = "Pending",
    *,
    run: int = 0,
    attempt: int = 0,
    gated: bool = False,
    node: str | None = None,
    owner: str = UID,
    exit_code: int | None = None,
) -> PodView:
    return PodView(
        naming.worker_pod_name("train", index, run, attempt),
        owner,
        index,
        run,
        attempt,
        phase,
        ready=phase == "Running",
        gated=gated,
        node=node,
        exit_code=exit_code,
        reason="Error" if phase == "Failed" else None,
    )


def plan(body: dict[str, Any], pods: list[PodView], now: datetime.datetime = T0) -> lifecycle.Plan:
    return lifecycle.plan(lifecycle.JobView.from_body(body), pods, now)


def test_a_new_job_creates_every_worker_behind_the_gang_gate() -> None:
    result = plan(job_body(workers=3), [])
    assert result.create == [lifecycle.NewPod(i, 0, 0, gated=True) for i in range(3)]
    assert result.fields["phase"] == "Queued" and not result.release
    assert [e.reason for e in result.events] == ["Queued"]


def test_the_gate_comes_off_only_when_every_worker_exists_and_then_from_all_at_once() -> None:
    partial = plan(job_body(workers=3, status={"phase": "Queued"}), [pod(0, gated=True), pod(1, gated=True)])
    assert partial.release == [] and [c.index for c in partial.create] == [2]
    full = plan(job_body(workers=3, status={"phase": "Queued"}), [pod(i, gated=True) for i in range(3)])
    assert full.release == [pod(i).name for i in range(3)]
    assert full.fields["phase"] == "Starting" and full.fields["startTime"] == "2026-01-05T09:00:00Z"
    assert [e.reason for e in full.events] == ["Started"]


def test_all_workers_running_then_succeeded() -> None:
    running = plan(job_body(status={"phase": "Starting"}), [pod(0, "Running", node="a"), pod(1, "Running", node="b")])
    assert running.fields["phase"] == "Running" and running.fields["nodes"] == ["a", "b"]
    assert running.fields["workers"] == {"active": 2, "ready": 2, "succeeded": 0, "failed": 0, "summary": "2/2"}
    one_done = plan(job_body(status={"phase": "Running"}), [pod(0, "Succeeded"), pod(1, "Running")])
    assert one_done.fields["phase"] == "Running" and not one_done.events  # an early finisher changes nothing
    done = plan(job_body(status={"phase": "Running"}), [pod(0, "Succeeded"), pod(1, "Succeeded")])
    assert done.fields["phase"] == "Succeeded" and done.fields["completionTime"] and done.finished


def test_a_failed_worker_is_replaced_with_a_new_name_and_counted() -> None:
    result = plan(
        job_body(maxFailureRetry=2, status={"phase": "Running"}), [pod(0, "Running"), pod(1, "Failed", exit_code=3)]
    )
    assert result.create == [lifecycle.NewPod(1, 0, 1, gated=False)]  # the gang is admitted: no gate
    assert result.fields["retries"] == 1 and result.fields["workerAttempts"] == [0, 1]
    assert result.fields["phase"] == "Restarting"
    assert "exit code 3" in result.events[0].message and result.events[0].reason == "WorkerFailed"


def test_a_worker_out_of_retries_restarts_the_gang_as_a_new_run() -> None:
    status = {"phase": "Running", "workerAttempts": [0, 1], "retries": 1}
    pods = [pod(0, "Running"), pod(1, "Failed"), pod(1, "Failed", attempt=1)]
    result = plan(job_body(maxFailureRetry=1, maxJobFailureRetry=1, status=status), pods)
    assert result.fields["run"] == 1 and result.fields["jobRestarts"] == 1
    assert result.create == [lifecycle.NewPod(i, 1, 0, gated=True) for i in range(2)]
    assert result.delete == [pod(0).name]  # the still-running worker of the broken gang
    assert result.fields["phase"] == "Restarting" and result.events[-1].reason == "JobRestarted"


def test_out_of_every_retry_the_job_fails_saying_which_worker_and_why() -> None:
    status = {"phase": "Running", "workerAttempts": [0, 1], "retries": 1, "jobRestarts": 0}
    pods = [pod(0, "Running"), pod(1, "Failed", attempt=1, exit_code=137)]
    result = plan(job_body(maxFailureRetry=1, maxJobFailureRetry=0, status=status), pods)
    assert result.fields["phase"] == "Failed"
    failed = next(c for c in result.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded" and "worker 1" in failed.message and "137" in failed.message
    assert result.delete == [pod(0).name]


def test_suspend_removes_workers_and_resume_starts_a_fresh_run() -> None:
    pods = [pod(0, "Running"), pod(1, "Running")]
    suspended = plan(job_body(suspend=True, status={"phase": "Running", "startTime": "2026-01-05T08:00:00Z"}), pods)
    assert sorted(suspended.delete) == sorted(p.name for p in pods)
    assert suspended.fields["phase"] == "Suspended" and suspended.fields["run"] == 1
    assert suspended.fields["startTime"] is None
    resumed = plan(job_body(suspend=False, status={"phase": "Suspended", "run": 1}), [])
    assert resumed.create == [lifecycle.NewPod(i, 1, 0, gated=True) for i in range(2)]
    assert [e.reason for e in resumed.events] == ["Resumed"]
    assert any(c.type == "Suspended" and c.status == "False" and c.reason == "Resumed" for c in resumed.conditions)


def test_the_deadline_fails_the_job_and_is_scheduled_before_it_passes() -> None:
    status = {"phase": "Running", "startTime": "2026-01-05T09:00:00Z"}
    pods = [pod(0, "Running"), pod(1, "Running")]
    early = plan(job_body(activeDeadlineSeconds=600, status=status), pods, T0 + datetime.timedelta(seconds=100))
    assert early.requeue_after_seconds == pytest.approx(500)
    late = plan(job_body(activeDeadlineSeconds=600, status=status), pods, T0 + datetime.timedelta(seconds=600))
    assert late.fields["phase"] == "Failed" and sorted(late.delete) == sorted(p.name for p in pods)
    assert next(c for c in late.conditions if c.type == "Failed").reason == "DeadlineExceeded"


def test_ttl_deletes_a_finished_job_when_due() -> None:
    status = {"phase": "Succeeded", "completionTime": "2026-01-05T09:00:00Z"}
    waiting = plan(job_body(ttlSecondsAfterFinished=60, status=status), [], T0 + datetime.timedelta(seconds=20))
    assert waiting.requeue_after_seconds == pytest.approx(40) and not waiting.delete_job
    due = plan(job_body(ttlSecondsAfterFinished=60, status=status), [], T0 + datetime.timedelta(seconds=60))
    assert due.delete_job and due.events[0].reason == "Expired"


def test_the_stop_annotation_stops_the_job_with_its_reason() -> None:
    result = plan(
        job_body(
            status={"phase": "Running"},
            annotations={
                naming.ANNOTATION_STOP: "BudgetExceeded",
                naming.ANNOTATION_STOP_MESSAGE: "cost 12.50 USD passed maxCost 10",
            },
        ),
        [pod(0, "Running"), pod(1, "Running")],
    )
    assert result.fields["phase"] == "Stopped" and len(result.delete) == 2
    stopped = next(c for c in result.conditions if c.type == "Stopped")
    assert (stopped.reason, stopped.message) == ("BudgetExceeded", "cost 12.50 USD passed maxCost 10")


def test_an_invalid_spec_fails_the_job_naming_the_field() -> None:
    body = job_body()
    body["spec"]["workers"] = 0
    result = plan(body, [])
    failed = next(c for c in result.conditions if c.type == "Failed")
    assert failed.reason == "InvalidSpec" and failed.message.startswith("spec.workers:")
    assert not result.create


def test_a_crash_between_creating_a_pod_and_recording_it_loses_nothing() -> None:
    # Status still says attempt 0 / 0 retries, but the replacement (attempt 1) already exists.
    status = {"phase": "Running", "workerAttempts": [0, 0], "retries": 0}
    pods = [pod(0, "Running"), pod(1, "Failed"), pod(1, "Pending", attempt=1)]
    result = plan(job_body(maxFailureRetry=3, status=status), pods)
    assert result.create == []
    assert result.fields["retries"] == 1 and result.fields["workerAttempts"] == [0, 1]


def test_pods_of_another_owner_are_ignored() -> None:
    result = plan(job_body(workers=1), [pod(0, "Running", owner="old-incarnation")])
    assert result.create == [lifecycle.NewPod(0, 0, 0, gated=True)]


# --- property test: random histories ---------------------------------------------------------------
@dataclasses.dataclass
class World:
    """The API as the planner sees it: pods by name and the job's status, after each plan is acted on."""

    body: dict[str, Any]
    pods: dict[str, PodView] = dataclasses.field(default_factory=dict)
    history: list[str] = dataclasses.field(default_factory=list)

    def act(self, result: lifecycle.Plan, now: datetime.datetime) -> None:
        for new in result.create:
            name = naming.worker_pod_name("train", new.index, new.run, new.attempt)
            assert name not in self.pods, f"created {name} twice"
            self.pods[name] = PodView(name, UID, new.index, new.run, new.attempt, "Pending", gated=new.gated)
        for name in result.release:
            self.pods[name] = dataclasses.replace(self.pods[name], gated=False)
        for name in result.delete:
            self.pods.pop(name, None)
        status = self.body["status"]
        for key, value in result.fields.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)
        if result.conditions:
            status["conditions"] = merge_conditions(status.get("conditions") or [], result.conditions, now)
        self.history.append(status.get("phase", ""))


steps = st.lists(
    st.tuples(st.sampled_from(["reconcile", "run", "fail", "succeed", "suspend", "resume"]), st.integers(0, 3)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(workers=st.integers(1, 3), max_retry=st.integers(0, 2), max_restarts=st.integers(0, 2), script=steps)
def test_random_histories_keep_the_invariants(
    workers: int, max_retry: int, max_restarts: int, script: list[tuple[str, int]]
) -> None:
    world = World(job_body(workers=workers, maxFailureRetry=max_retry, maxJobFailureRetry=max_restarts))
    now = T0
    terminal: str | None = None
    for action, target in script:
        now += datetime.timedelta(seconds=1)
        live = [p for p in world.pods.values() if not p.terminal and not p.gated]
        chosen = live[target % len(live)] if live else None
        if action == "reconcile":
            # Level-triggered: reconciling an unchanged world settles within a few rounds, then does nothing.
            for _ in range(4):
                result = plan(world.body, list(world.pods.values()), now)
                if not (result.create or result.release or result.delete):
                    break
                admitted_runs = {p.run for p in world.pods.values() if not p.gated}
                for run in {world.pods[name].run for name in result.release} - admitted_runs:
                    released = [n for n in result.release if world.pods[n].run == run]
                    assert len(released) == workers, "a gang's gate comes off all workers in one step"
                world.act(result, now)
            else:
                pytest.fail("the plan never settled")
            world.act(result, now)
            again = plan(world.body, list(world.pods.values()), now)
            assert (again.create, again.release, again.delete) == ([], [], [])
            assert all(world.body["status"].get(k) == v for k, v in again.fields.items() if v is not None)
        elif action == "suspend":
            world.body["spec"]["suspend"] = True
        elif action == "resume":
            world.body["spec"]["suspend"] = False
        elif chosen is not None:
            phase = {"run": "Running", "fail": "Failed", "succeed": "Succeeded"}[action]
            world.pods[chosen.name] = dataclasses.replace(chosen, phase=phase)
        status = world.body["status"]
        phase = status.get("phase")
        if terminal is not None:
            assert phase == terminal, "a finished job never changes phase"
        elif phase in ("Succeeded", "Failed", "Stopped"):
            terminal = phase
        if action != "reconcile":
            continue
        active = [p for p in world.pods.values() if not p.terminal]
        if phase in ("Failed", "Stopped", "Suspended"):
            assert not active, f"{phase} job still has active workers"
        for index in range(workers):
            assert sum(1 for p in active if p.index == index) <= 1, "two active pods for one worker"
        current_run = max((p.run for p in active), default=0)
        gated = {p.gated for p in active if p.run == current_run}
        assert len(gated) <= 1, "a gang is never half released"
        assert all(a <= max_retry for a in status.get("workerAttempts", []))
        assert status.get("jobRestarts", 0) <= max_restarts
        if phase == "Succeeded":
            latest = {}
            for p in world.pods.values():
                if p.run == status.get("run", 0) and p.attempt >= latest.get(p.index, (-1, None))[0]:
                    latest[p.index] = (p.attempt, p.phase)
            assert all(ph == "Succeeded" for _, ph in latest.values()) and len(latest) == workers
