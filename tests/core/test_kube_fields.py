"""``lepton_core.kube.fields.get``: Go's encoding/json key matching (exact, then any casing), with its
shortcut for objects whose keys are all known Kubernetes field names."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lepton_core.kube.fields import KNOWN_FIELDS, get

FIELDS = sorted(KNOWN_FIELDS)


def _reference(obj: dict[str, Any], key: str) -> Any:
    """What Go answers: the exact key, else the first key equal to it ignoring case."""
    if key in obj:
        return obj[key]
    return next((v for k, v in obj.items() if k.lower() == key.lower()), None)


def test_no_two_known_fields_differ_only_by_case() -> None:
    """The shortcut's premise: a known field absent in its own spelling is absent in every spelling."""
    assert len({k.lower() for k in KNOWN_FIELDS}) == len(KNOWN_FIELDS)


@given(
    st.dictionaries(
        st.sampled_from(FIELDS).flatmap(lambda k: st.sampled_from([k, k.lower(), k.upper(), k.title(), "x" + k])),
        st.integers(),
        max_size=12,
    ),
    st.sampled_from(FIELDS) | st.text(max_size=8),
)
def test_get_answers_what_case_insensitive_matching_answers(obj: dict[str, Any], key: str) -> None:
    """Objects of known fields in their own spelling, in other casings and unknown keys, mixed: ``get``
    finds a key in any casing, and answers None only when no casing of it is there."""
    assert get(obj, key) == _reference(obj, key)
