"""Label and field selectors: Kubernetes matching rules, and no crash on any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.kube_emulator.errors import ApiError
from tests.kube_emulator.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)


def _pod(labels: dict[str, str], phase: str = "Running") -> dict[str, object]:
    return {"metadata": {"name": "p", "labels": labels}, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),  # != matches objects without the label, as in Kubernetes
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("lepton.ai/job-name", {"lepton.ai/job-name": "x"}, True),
        ("!lepton.ai/job-name", {"lepton.ai/job-name": "x"}, False),
        ("a=1,b in (2),!c", {"a": "1", "b": "2"}, True),
        ("a=1,b in (2),!c", {"a": "1", "b": "2", "c": ""}, False),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), _pod(labels)) is expected


def test_field_selector_matches_and_unknown_fields_are_a_400_naming_the_field() -> None:
    supported = frozenset({"metadata.name", "status.phase"})
    assert fields_match(parse_field_selector("status.phase!=Running", supported), _pod({}, "Pending"))
    with pytest.raises(ApiError) as info:
        parse_field_selector("spec.secret=1", supported)
    assert info.value.code == 400 and "spec.secret" in info.value.message


@given(st.text(max_size=40))
def test_label_selector_parser_fuzz_never_crashes(text: str) -> None:
    try:
        requirements = parse_label_selector(text)
    except ApiError as exc:
        code = exc.code
    else:
        labels_match(requirements, _pod({"a": "b"}))
        code = 200
    assert code in (200, 400)
