"""Sharing ``status`` between lifecycle and cost accounting: conditions merge by type, and requests
(suspend, stop) other components make go through the API like any user's."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest

from lepton_operator import commands, credentials
from lepton_operator.kube import Conflict, Endpoint, KubeClient, group_path
from lepton_operator.status import Condition, conditions_patch, merge_conditions
from tests.kube_emulator.client import KubeClient as HttpClient
from tests.operator.conftest import CRD_PATH, job_manifest

T0 = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.UTC)
LATER = T0 + datetime.timedelta(hours=1)


def test_merging_conditions_keeps_other_writers_types_and_transition_times() -> None:
    existing = [
        {
            "type": "Running",
            "status": "True",
            "reason": "AllWorkersRunning",
            "message": "",
            "lastTransitionTime": "2026-01-05T09:00:00Z",
        },
        {
            "type": "BudgetExceeded",
            "status": "False",
            "reason": "WithinBudget",
            "message": "",
            "lastTransitionTime": "2026-01-05T08:00:00Z",
        },
    ]
    merged = merge_conditions(
        existing,
        [Condition("Running", "True", "AllWorkersRunning", "still"), Condition("Suspended", "True", "Suspended", "")],
        LATER,
    )
    by_type = {c["type"]: c for c in merged}
    assert by_type["BudgetExceeded"] == existing[1]  # another writer's condition is untouched
    assert by_type["Running"]["lastTransitionTime"] == "2026-01-05T09:00:00Z"  # same status: time kept
    assert by_type["Running"]["message"] == "still"
    assert by_type["Suspended"]["lastTransitionTime"] == "2026-01-05T10:00:00Z"


def test_a_conditions_patch_is_refused_when_someone_wrote_in_between_and_requests_land(
    kubeconfig: Path, kube: HttpClient
) -> None:
    kube.apply_file(CRD_PATH)
    kube.ensure_namespace("ml")
    body = kube.create(job_manifest("train"), "ml")
    path = group_path("lepton.ai", "v1alpha1", "leptonjobs", "ml", "train")

    async def scenario() -> None:
        client = KubeClient(Endpoint.from_connection_info(credentials.login()))
        try:
            patch = conditions_patch(body, [Condition("BudgetExceeded", "True", "CostLimit", "12 > 10")], T0)
            await client.patch(path + "/status", {"status": {"phase": "Running"}})  # the lifecycle wrote meanwhile
            with pytest.raises(Conflict):
                await client.patch(path + "/status", patch)
            fresh = await client.get(path)
            await client.patch(
                path + "/status",
                conditions_patch(fresh, [Condition("BudgetExceeded", "True", "CostLimit", "12 > 10")], T0),
            )
            await commands.request_suspend(client, "ml", "train")
            await commands.request_stop(client, "ml", "train", "BudgetExceeded", "cost 12 passed maxCost 10")
        finally:
            await client.close()

    asyncio.run(scenario())
    job = kube.get("lj", "ml", "train")
    assert job["status"]["phase"] == "Running"
    assert [c["type"] for c in job["status"]["conditions"]] == ["BudgetExceeded"]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["annotations"]["lepton.ai/stop"] == "BudgetExceeded"
