"""The ledger counts every window exactly once; the history stays bounded and sums to the ledger.

Property tests (hypothesis) over arbitrary increment streams: replays, restarts from any watermark,
two writers interleaving, and months of windows.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_core.accounting.amounts import NANO_PER_UNIT, Amounts
from lepton_core.accounting.history import History, HistoryPolicy
from lepton_core.accounting.ledger import Increment, Ledger, new_ledger

_WINDOW = st.tuples(
    st.integers(0, 3_600_000),  # gap before the window (job not running, operator away)
    st.integers(1, 600_000),  # width
    st.lists(st.integers(0, 10**12), min_size=4, max_size=4),
    st.floats(0.0, 1.0),  # active fraction
    st.booleans(),  # estimated
)


def increment_streams(max_size: int = 60) -> st.SearchStrategy[list[Increment]]:
    """Consecutive windows (gaps allowed) with arbitrary non-negative amounts."""

    def build(args: tuple[int, list[tuple[int, int, list[int], float, bool]]]) -> list[Increment]:
        t, windows = args
        out = []
        for gap, width, amounts, active, estimated in windows:
            t += gap
            out.append(Increment(t, t + width, Amounts(*amounts), int(active * width), estimated))
            t += width
        return out

    return st.tuples(st.integers(0, 10**12), st.lists(_WINDOW, min_size=1, max_size=max_size)).map(build)


def _sum(increments: list[Increment]) -> Amounts:
    total = Amounts()
    for inc in increments:
        total = total + inc.amounts
    return total


@given(increment_streams())
def test_settling_is_idempotent_and_sums_exactly(incs: list[Increment]) -> None:
    once = new_ledger().settle(incs)
    again = once.settle(incs)  # a replayed batch: nothing is added twice
    assert once.amounts == _sum(incs)
    assert again.amounts == once.amounts
    assert again.observed_at_ms == incs[-1].end_ms
    assert once.history.total() == once.amounts


@given(increment_streams(), st.data())
def test_restart_from_any_watermark_loses_and_doubles_nothing(incs: list[Increment], data: st.DataObject) -> None:
    # The operator wrote the first k windows, died, and recomputed everything since its watermark:
    # a restart replays windows the status already holds (and maybe a window straddling the watermark).
    k = data.draw(st.integers(0, len(incs)))
    stored = new_ledger().settle(incs[:k])
    restarted = stored.settle(incs)
    assert restarted.amounts == _sum(incs)
    assert restarted.history.total() == restarted.amounts


@given(increment_streams(max_size=20), st.lists(st.tuples(st.booleans(), st.integers(1, 5)), max_size=20))
def test_two_replicas_interleaving_conditional_writes_count_once(
    incs: list[Increment], schedule: list[tuple[bool, int]]
) -> None:
    # Both replicas computed the same windows, each at its own pace. A write is conditional on the
    # watermark it read, so each write settles the replica's windows on top of the *current* ledger.
    ledger = new_ledger()
    progress = {False: 0, True: 0}
    for who, steps in [*schedule, (False, len(incs)), (True, len(incs))]:
        progress[who] = min(len(incs), progress[who] + steps)
        ledger = ledger.settle(ledger.pending_after(incs[: progress[who]]))
    assert ledger.amounts == _sum(incs)
    assert ledger.history.total() == ledger.amounts


def test_a_window_straddling_the_watermark_is_split_pro_rata() -> None:
    ledger = Ledger(observed_at_ms=1_000)
    inc = Increment(0, 4_000, Amounts.of(hardware=4.0, joules=400.0), active_ms=4_000)
    settled = ledger.settle([inc])
    assert settled.amounts == Amounts.of(hardware=3.0, joules=300.0)
    assert settled.active_ms == 3_000
    assert settled.observed_at_ms == 4_000


def test_amounts_are_exact_integers_and_round_trip() -> None:
    a = Amounts.of(hardware=0.1, energy=0.2, operations=0.3, joules=1.5)
    assert a.total == 600_000_000  # 0.1 + 0.2 + 0.3 is 0.6 exactly here, unlike in floats
    assert a.cost().total == pytest.approx(0.6)
    assert Amounts.from_list(a.as_list()) == a
    with pytest.raises(ValueError, match="four integers"):
        Amounts.from_list([1, 2, 3.5, 4])


MONTH_MS = 30 * 86_400_000


def test_a_month_of_30_second_windows_stays_bounded_and_exact() -> None:
    policy = HistoryPolicy()
    history = History(policy)
    total = Amounts()
    rng_values = [(i * 7919) % 1000 for i in range(10)]
    step = 30_000
    largest = 0
    for i, t in enumerate(range(0, MONTH_MS, step)):
        a = Amounts(rng_values[i % 10] * NANO_PER_UNIT // 1000, i, 3, 17 * i)
        history.add(t, t + step, a)
        total = total + a
        largest = max(largest, len(history.buckets))
    assert largest <= policy.max_buckets
    assert history.total() == total
    assert history.windows == MONTH_MS // step
    # The newest hour is at minute resolution, then hours, then days, oldest first, no overlaps.
    levels = [b.level for b in history.buckets]
    assert levels == sorted(levels, reverse=True)
    assert history.buckets[-1].end_ms == MONTH_MS
    assert all(a.end_ms <= b.start_ms for a, b in zip(history.buckets, history.buckets[1:], strict=False))
    assert history.compression_ratio > 500


@settings(max_examples=50)
@given(increment_streams(max_size=300), st.sampled_from([(2, 2, 2), (3, 4, 5), (60, 48, 62)]))
def test_history_bound_holds_for_any_stream_and_policy(incs: list[Increment], caps: tuple[int, int, int]) -> None:
    policy = HistoryPolicy(capacities=caps)
    h = History(policy)
    for inc in incs:
        h.add(inc.start_ms, inc.end_ms, inc.amounts, inc.estimated)
        assert len(h.buckets) <= policy.max_buckets
    assert h.total() == _sum(incs)
    assert any(b.estimated for b in h.buckets) == any(i.estimated for i in incs)
    restored = History.from_lists(h.as_lists(), policy, h.windows)
    assert restored.total() == h.total()
    smaller = History.from_lists(h.as_lists(), HistoryPolicy(capacities=(2, 2, 2)), h.windows)
    assert len(smaller.buckets) <= 6
    assert smaller.total() == h.total()


def test_history_rejects_malformed_buckets_naming_them() -> None:
    policy = HistoryPolicy()
    with pytest.raises(ValueError, match=r"history.buckets\[0\]: expected nine integers"):
        History.from_lists([[0, 1, 2]], policy)
    with pytest.raises(ValueError, match=r"history.buckets\[1\]: overlaps"):
        History.from_lists([[0, 0, 0, 10, 1, 1, 1, 1, 0], [0, 0, 5, 20, 1, 1, 1, 1, 0]], policy)
    with pytest.raises(ValueError, match="level 7"):
        History.from_lists([[7, 0, 0, 10, 1, 1, 1, 1, 0]], policy)
    with pytest.raises(ValueError, match="multiple"):
        HistoryPolicy(level_seconds=(60, 90), capacities=(3, 3))
