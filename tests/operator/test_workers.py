"""Worker pods and the headless service built from a spec: what torchrun and the scheduler need."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from lepton_operator import naming
from lepton_operator.spec import SpecError, parse_job_spec
from lepton_operator.workers import JobRef, PodView, headless_service, worker_pod

REF = JobRef("ml", "train", "4a1d7a52-0000-4000-8000-000000000000")


def _spec(**extra: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "trainer:1",
        "env": [{"name": "RANK", "value": "7"}, {"name": "EPOCHS", "value": "3"}],
        "resources": {"requests": {"nvidia.com/gpu": 8}, "limits": {"nvidia.com/gpu": 8}},
    }
    return {
        "workers": 4,
        "template": {
            "metadata": {"labels": {"team": "ml"}},
            "spec": {"containers": [container], "initContainers": [{"name": "fetch", "image": "curl"}]},
        },
        **extra,
    }


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_every_container_gets_the_job_and_rendezvous_environment() -> None:
    pod = worker_pod(REF, parse_job_spec(_spec(masterPort=23456)), 2, 0, 0, gated=True, priority_class=None)
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        env = _env(container)
        assert {
            k: env[k]
            for k in (
                "LEPTON_JOB_NAME",
                "LEPTON_JOB_WORKER_INDEX",
                "LEPTON_JOB_TOTAL_WORKERS",
                "WORLD_SIZE",
                "RANK",
                "MASTER_PORT",
            )
        } == {
            "LEPTON_JOB_NAME": "train",
            "LEPTON_JOB_WORKER_INDEX": "2",
            "LEPTON_JOB_TOTAL_WORKERS": "4",
            "WORLD_SIZE": "4",
            "RANK": "2",
            "MASTER_PORT": "23456",
        }
        assert env["MASTER_ADDR"] == "train-worker-0.train.ml.svc"
    assert _env(pod["spec"]["containers"][0])["EPOCHS"] == "3"  # the user's own variables stay


def test_pods_are_owned_labelled_gated_and_use_the_lepton_scheduler() -> None:
    pod = worker_pod(REF, parse_job_spec(_spec()), 1, 3, 2, gated=True, priority_class="lepton-priority-7")
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "train-worker-1-r3a2"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "lepton.ai/v1alpha1",
            "kind": "LeptonJob",
            "name": "train",
            "uid": REF.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["labels"] == {
        "team": "ml",
        naming.LABEL_JOB: "train",
        naming.LABEL_INDEX: "1",
        naming.LABEL_RUN: "3",
        naming.LABEL_ATTEMPT: "2",
        naming.LABEL_MANAGED_BY: "lepton-operator",
    }
    assert spec["schedulerName"] == "lepton-scheduler" and spec["restartPolicy"] == "Never"
    assert spec["schedulingGates"] == [{"name": "lepton.ai/gang"}]
    assert (spec["hostname"], spec["subdomain"]) == ("train-worker-1", "train")
    assert spec["priorityClassName"] == "lepton-priority-7"
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 8}
    kubernetes_validate.validate(pod, "1.30", strict=True)


def test_a_priority_class_in_the_template_wins_and_ungated_pods_have_no_gate() -> None:
    raw = _spec()
    raw["template"]["spec"]["priorityClassName"] = "batch-low"
    pod = worker_pod(REF, parse_job_spec(raw), 0, 0, 0, gated=False, priority_class="lepton-priority-5")
    assert pod["spec"]["priorityClassName"] == "batch-low" and "schedulingGates" not in pod["spec"]


def test_the_headless_service_publishes_unready_workers_on_the_rendezvous_port() -> None:
    service = headless_service(REF, parse_job_spec(_spec()))
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {naming.LABEL_JOB: "train"}
    assert service["spec"]["ports"][0]["port"] == 29500
    kubernetes_validate.validate(service, "1.30", strict=True)


def test_a_pod_reads_back_as_a_view_and_foreign_pods_are_ignored() -> None:
    pod = worker_pod(REF, parse_job_spec(_spec()), 3, 1, 0, gated=False, priority_class=None)
    pod["spec"]["nodeName"] = "gpu-7"
    pod["status"] = {
        "phase": "Failed",
        "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
    }
    view = PodView.from_pod(pod)
    assert view is not None
    assert (view.index, view.run, view.attempt, view.node, view.owner_uid) == (3, 1, 0, "gpu-7", REF.uid)
    assert view.describe_failure() == "OOMKilled, exit code 137"
    assert PodView.from_pod({"metadata": {"name": "x", "labels": {naming.LABEL_JOB: "train"}}}) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"workers": "four"}, "spec.workers"),
        ({"maxFailureRetry": -1}, "spec.maxFailureRetry"),
        ({"suspend": "yes"}, "spec.suspend"),
        ({"budget": {"maxCost": -1}}, "spec.budget.maxCost"),
        ({"costProfile": ""}, "spec.costProfile"),
        ({"template": {"spec": {"containers": []}}}, "spec.template.spec.containers"),
        ({"template": {}}, "spec.template.spec"),
    ],
)
def test_spec_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_job_spec({**_spec(), **change})
    assert info.value.field == field and str(info.value).startswith(field + ":")


def test_spec_defaults_match_the_crd() -> None:
    spec = parse_job_spec({"template": _spec()["template"]})
    assert (
        spec.workers,
        spec.scheduler_name,
        spec.priority,
        spec.max_failure_retry,
        spec.max_job_failure_retry,
        spec.suspend,
        spec.master_port,
    ) == (1, "lepton-scheduler", 5, 3, 0, False, 29500)
    budget = parse_job_spec({**_spec(), "budget": {"maxEnergyKWh": 12}}).budget
    assert budget is not None and (budget.max_cost, budget.max_energy_kwh, budget.action) == (None, 12.0, "notify")
