"""The LeptonJob CRD: generated without drift, structurally valid, self-documenting, and its validation
(JSON Schema + CEL) accepts the samples users copy and rejects the invalid ones naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lepton_operator.crd import CRD_NAME, build_crd, build_schema, render_crd_yaml
from lepton_operator.spec import SpecError, parse_job_spec
from lepton_operator.workers import JobRef, headless_service, worker_pod
from tests.kube_emulator import schema as crd_schema
from tests.operator.conftest import CRD_PATH, SAMPLES

VALID_SAMPLES = sorted(SAMPLES.glob("*.yaml"))
INVALID_SAMPLES = sorted((SAMPLES / "invalid").glob("*.yaml"))
KUBERNETES_VERSION = "1.30"


def _admit(obj: dict[str, Any], old: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """What the API server does on create/update: default, prune, validate (schema + CEL)."""
    schema = build_schema()
    admitted = crd_schema.prune(schema, crd_schema.apply_defaults(schema, obj))
    return admitted, crd_schema.validate(schema, admitted, old)


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def test_the_committed_crd_is_generated_from_the_source_without_drift() -> None:
    assert CRD_PATH.read_text(encoding="utf-8") == render_crd_yaml(), (
        "deploy/base/crd-leptonjob.yaml is stale: run `python -m lepton_operator.crd --write`"
    )


def test_the_crd_is_a_valid_kubernetes_object_with_a_structural_schema() -> None:
    crd = build_crd()
    kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)
    assert crd["metadata"]["name"] == CRD_NAME
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd_schema.structural_problems(version["schema"]["openAPIV3Schema"]) == []


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    assert crd_schema.missing_descriptions(build_schema()) == []


def test_printer_columns_are_the_ones_users_expect_and_point_at_declared_fields() -> None:
    version = build_crd()["spec"]["versions"][0]
    columns = version["additionalPrinterColumns"]
    assert [c["name"].upper() for c in columns] == ["PHASE", "WORKERS", "NODES", "$/H", "COST", "KWH", "AGE"]
    schema = version["schema"]["openAPIV3Schema"]
    for column in columns:
        node = schema
        for part in column["jsonPath"].strip(".").split("."):
            if part == "metadata":
                break
            node = node["properties"][part]
        else:
            assert node["type"] == {"number": "number", "string": "string"}[column["type"]], column


@pytest.mark.parametrize("path", VALID_SAMPLES, ids=lambda p: p.name)
def test_valid_samples_are_admitted_and_build_valid_pods(path: Path) -> None:
    admitted, errors = _admit(_load(path))
    assert errors == []
    spec = parse_job_spec(admitted["spec"])
    ref = JobRef("default", admitted["metadata"]["name"], "00000000-0000-0000-0000-000000000001")
    for index in range(spec.workers):
        pod = worker_pod(ref, spec, index, 0, 0, gated=True, priority_class=None)
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    kubernetes_validate.validate(headless_service(ref, spec), KUBERNETES_VERSION, strict=True)


def test_there_are_cpu_gpu_and_multi_worker_samples() -> None:
    specs = [parse_job_spec(_admit(_load(p))[0]["spec"]) for p in VALID_SAMPLES]
    gpu = [
        s
        for s in specs
        if any(
            "nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {}) for c in s.template["spec"]["containers"]
        )
    ]
    assert gpu and len(gpu) < len(specs)
    assert any(s.workers > 1 for s in specs)


def _expected_field(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect-error: "), f"{path.name} must say which field it breaks"
    return first.removeprefix("# expect-error: ").strip()


@pytest.mark.parametrize("path", INVALID_SAMPLES, ids=lambda p: p.name)
def test_invalid_samples_are_rejected_naming_the_field(path: Path) -> None:
    expected = _expected_field(path)
    _, errors = _admit(_load(path))
    assert errors, f"{path.name} was admitted"
    assert any(
        field == expected or field.startswith(expected + ".") or field.startswith(expected + "[") for field, _ in errors
    ), errors
    assert all(message.startswith(field or "<root>") for field, message in errors), errors


@pytest.mark.parametrize(
    "path", [p for p in INVALID_SAMPLES if not _expected_field(p).startswith("metadata")], ids=lambda p: p.name
)
def test_the_operator_rejects_the_same_specs_naming_the_same_field(path: Path) -> None:
    # For objects admitted before a rule existed: the operator's own parser agrees with the CRD.
    with pytest.raises(SpecError) as info:
        parse_job_spec(_load(path)["spec"])
    assert info.value.field.startswith(_expected_field(path))
    assert str(info.value).startswith(info.value.field)


def test_immutable_fields_are_refused_on_update_but_suspend_may_change() -> None:
    old, _ = _admit(_load(VALID_SAMPLES[0]))
    changed = copy.deepcopy(old)
    changed["spec"]["workers"] = old["spec"]["workers"] + 1
    _, errors = _admit(changed, old)
    assert [field for field, _ in errors] == ["spec.workers"]
    suspended = copy.deepcopy(old)
    suspended["spec"]["suspend"] = True
    assert _admit(suspended, old)[1] == []


_base_spec = {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}


@given(
    workers=st.integers(-2, 1030),
    priority=st.integers(-1, 11),
    max_failure_retry=st.integers(-1, 101),
    ttl=st.one_of(st.none(), st.integers(-3, 10)),
    action=st.sampled_from(["notify", "suspend", "stop", "pause"]),
    max_cost=st.one_of(st.none(), st.floats(-5, 100, allow_nan=False)),
)
def test_the_typed_parser_and_the_crd_agree_on_what_is_valid(  # noqa: PLR0917 - one argument per strategy
    workers: int, priority: int, max_failure_retry: int, ttl: int | None, action: str, max_cost: float | None
) -> None:
    spec: dict[str, Any] = {
        **copy.deepcopy(_base_spec),
        "workers": workers,
        "priority": priority,
        "maxFailureRetry": max_failure_retry,
        "budget": {"action": action},
    }
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    if max_cost is not None:
        spec["budget"]["maxCost"] = max_cost
    admitted, errors = _admit(
        {"apiVersion": "lepton.ai/v1alpha1", "kind": "LeptonJob", "metadata": {"name": "job"}, "spec": spec}
    )
    try:
        parse_job_spec(admitted["spec"])
        parsed_ok = True
    except SpecError:
        parsed_ok = False
    assert parsed_ok == (not errors), errors
