"""Patch semantics the operator and kopf rely on, with property tests and fuzzing of the parsers."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.kube_emulator.patches import PatchError, json_patch, merge_patch, strategic_merge_patch

keys = st.sampled_from(["a", "b", "c", "spec", "status", "x/y", "m~n"])
scalars = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans())
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)
documents = st.dictionaries(keys, json_values, max_size=4)
# RFC 7386 cannot turn a non-empty object into an empty one, so the round-trip property uses non-empty ones.
solid_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, min_size=1, max_size=3)),
    max_leaves=6,
)
solid_documents = st.dictionaries(keys, solid_values, max_size=4)


def _diff_as_merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = dict.fromkeys(old.keys() - new.keys())
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            patch[key] = _diff_as_merge_patch(old[key], value)
        elif key not in old or old[key] != value:
            patch[key] = value
    return patch


@given(solid_documents, solid_documents)
def test_merge_patch_of_a_diff_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert merge_patch(old, _diff_as_merge_patch(old, new)) == new


@given(documents, documents)
def test_merge_patch_never_mutates_its_inputs(target: dict[str, Any], patch: dict[str, Any]) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    strategic_merge_patch(target, patch)
    assert target == target_before and patch == patch_before


@given(documents)
def test_merge_patch_is_idempotent(doc: dict[str, Any]) -> None:
    patch = {"spec": {"a": 1, "b": None}, "status": {"phase": "Running"}}
    once = merge_patch(doc, patch)
    assert merge_patch(once, patch) == once


def test_merge_patch_null_deletes_and_lists_replace() -> None:
    doc = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"gates": [{"name": "x"}, {"name": "y"}]}}
    result = merge_patch(doc, {"metadata": {"labels": {"a": None}}, "spec": {"gates": []}})
    assert result == {"metadata": {"labels": {"b": "2"}}, "spec": {"gates": []}}


def test_json_patch_operations_and_pointer_escapes() -> None:
    doc = {"metadata": {"resourceVersion": "7", "annotations": {"a/b": "1"}}, "list": [1, 2]}
    result = json_patch(
        doc,
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
            {"op": "remove", "path": "/metadata/annotations/a~1b"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "replace", "path": "/list/0", "value": 0},
            {"op": "copy", "from": "/list", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
        ],
    )
    assert result == {"metadata": {"resourceVersion": "7", "annotations": {}}, "list": [0, 2, 3], "moved": [0, 2, 3]}


def test_json_patch_failed_test_names_the_path() -> None:
    with pytest.raises(PatchError, match="/metadata/resourceVersion"):
        json_patch(
            {"metadata": {"resourceVersion": "8"}}, [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}]
        )


@settings(max_examples=150, deadline=None)
@given(
    documents,
    st.lists(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
                "path": st.text(max_size=12),
            },
            optional={"value": json_values, "from": st.text(max_size=8)},
        ),
        max_size=4,
    ),
)
def test_json_patch_fuzz_fails_only_with_patch_errors(doc: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    with contextlib.suppress(PatchError):
        json_patch(doc, ops)


def test_strategic_merge_removes_one_scheduling_gate_and_keeps_others() -> None:
    pod = {
        "spec": {
            "schedulingGates": [{"name": "lepton.ai/gang"}, {"name": "kueue.x-k8s.io/admission"}],
            "containers": [{"name": "main", "image": "a", "env": [{"name": "A", "value": "1"}]}],
        }
    }
    patch = {
        "spec": {
            "schedulingGates": [{"name": "lepton.ai/gang", "$patch": "delete"}],
            "containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}],
        }
    }
    result = strategic_merge_patch(pod, patch)
    assert result["spec"]["schedulingGates"] == [{"name": "kueue.x-k8s.io/admission"}]
    assert result["spec"]["containers"] == [
        {"name": "main", "image": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    ]


def test_strategic_merge_finalizers_union_and_delete_from_primitive_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    assert strategic_merge_patch(obj, {"metadata": {"finalizers": ["c"]}})["metadata"]["finalizers"] == ["a", "b", "c"]
    removed = strategic_merge_patch(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert removed["metadata"]["finalizers"] == ["b"]


@given(documents, documents)
def test_strategic_merge_fuzz_fails_only_with_patch_errors(target: dict[str, Any], patch: dict[str, Any]) -> None:
    with contextlib.suppress(PatchError):
        strategic_merge_patch(target, patch)
