"""Utilization ratios and cost attribution (issue 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lepton_core.models import allocation, attribute, dominant_shares, ratio_array, usage
from lepton_core.models.utilization import ratio

maybe = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(maybe, maybe)
def test_ratio_is_in_unit_interval_or_missing(actual: float | None, maximum: float | None) -> None:
    r = ratio(actual, maximum)
    if r.value is None:
        assert r.missing
    else:
        assert 0.0 <= r.value <= 1.0
        assert r.overcommitted == (r.raw is not None and r.raw > 1.0)


@given(st.lists(st.tuples(maybe, maybe), min_size=1, max_size=20))
def test_vectorized_ratio_matches_scalar(pairs: list[tuple[float | None, float | None]]) -> None:
    a = np.array([math.nan if x is None else x for x, _ in pairs])
    m = np.array([math.nan if y is None else y for _, y in pairs])
    values, over = ratio_array(a, m)
    for (x, y), v, o in zip(pairs, values, over, strict=True):
        r = ratio(x, y)
        assert (r.value is None and math.isnan(v)) or r.value == v
        assert r.overcommitted == o


def test_overcommit_and_missing_are_explicit() -> None:
    over = allocation(requested=12.0, allocatable=8.0)
    assert over.value == 1.0
    assert over.overcommitted
    assert over.raw == 1.5
    assert usage(None, 8.0).missing  # unknown is not "idle"
    assert usage(2.0, 0.0).missing  # no capacity, no ratio
    assert usage(-1.0, 8.0).missing  # a negative measurement is a glitch, not data
    assert usage(4.0, 8.0).value == 0.5


def test_dominant_share_is_the_scarcest_resource() -> None:
    # Node: 96 cores, 768 GiB, 8 GPUs. Pod: 2 cores, 16 GiB, 1 GPU -> holds 1/8 of the node.
    shares = dominant_shares(np.array([[2.0, 16.0, 1.0], [48.0, 64.0, 0.0]]), np.array([96.0, 768.0, 8.0]))
    np.testing.assert_allclose(shares, [1 / 8, 1 / 2])
    # Asking for a resource the node does not have charges the whole node.
    assert dominant_shares(np.array([[1.0, 1.0, 1.0]]), np.array([96.0, 768.0, 0.0]))[0] == 1.0


def test_attribution_with_idle_and_with_overcommit() -> None:
    result = attribute(np.array([100.0, 10.0]), np.array([0, 0, 1, 1]), np.array([0.25, 0.25, 0.8, 0.7]))
    np.testing.assert_allclose(result.pod_amounts, [25.0, 25.0, 10 * 0.8 / 1.5, 10 * 0.7 / 1.5])
    np.testing.assert_allclose(result.idle_amounts, [50.0, 0.0], atol=1e-12)


def test_attribution_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="out of range"):
        attribute(np.array([1.0]), np.array([1]), np.array([0.5]))
    with pytest.raises(ValueError, match="non-negative"):
        attribute(np.array([1.0]), np.array([0]), np.array([-0.5]))


@st.composite
def clusters(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 30))
    p = draw(st.integers(0, 200))
    totals = draw(hnp.arrays(np.float64, n, elements=st.floats(0, 1e6)))
    nodes = draw(hnp.arrays(np.intp, p, elements=st.integers(0, n - 1)))
    shares = draw(hnp.arrays(np.float64, p, elements=st.floats(0, 1)))
    return totals, nodes, shares


@given(clusters())
def test_attribution_conserves_every_node_total(c: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    totals, nodes, shares = c
    result = attribute(totals, nodes, shares)
    assert np.all(result.pod_amounts >= 0.0)
    assert np.all(result.idle_amounts >= 0.0)
    per_node = np.bincount(nodes, weights=result.pod_amounts, minlength=totals.size) + result.idle_amounts
    np.testing.assert_allclose(per_node, totals, rtol=1e-9, atol=1e-9 * max(1.0, float(totals.max(initial=0))))
