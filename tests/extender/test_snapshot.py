"""The snapshot's bookkeeping: bound pods, deletes, placements moving to the bound node, pending load
ending when telemetry catches up, re-lists dropping what vanished; node names read from raw request
bytes. Pure: no server needed."""

from __future__ import annotations

import logging
import random

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_core.kube.objects import read_node, read_pod
from lepton_core.profiles import ProfileSet, default_profiles
from lepton_core.scoring import NodeState, score_nodes
from lepton_core.telemetry import NodeTelemetry, Signal, TelemetrySnapshot
from lepton_extender.names import HAVE_NUMBA, NameTable, plain_names, raw_array
from lepton_extender.snapshot import ClusterSnapshot
from lepton_extender.wire import ExtenderArgs
from tests.extender import fixtures as fx
from tests.extender.conftest import T0, Clock


def snapshot(profiles: ProfileSet, nodes: int = 2, gpus: int = 8) -> tuple[ClusterSnapshot, Clock]:
    clock = Clock()
    snap = ClusterSnapshot(profiles, clock, assume_ttl_seconds=30.0, settle_seconds=60.0)
    for i in range(nodes):
        snap.upsert_node(read_node(fx.node(f"n{i}", gpus=gpus)))
    snap.mark_synced()
    snap.rebuild()
    return snap, clock


def state(snap: ClusterSnapshot) -> NodeState:
    assert snap.state is not None
    return snap.state


def test_bound_pods_count_and_deletes_subtract_exactly(test_profiles: ProfileSet) -> None:
    snap, _ = snapshot(test_profiles)
    a = read_pod(fx.pod("a", cpu="1500m", gpus=2, node_name="n0", phase="Running"))
    b = read_pod(fx.pod("b", cpu="1", gpus=1, node_name="n0", phase="Running"))
    ds = read_pod(fx.pod("ds", cpu="100m", node_name="n0", phase="Running", daemon=True))
    for p in (a, b, ds):
        snap.upsert_pod(p)
    s = state(snap)
    assert s.requested_gpus[0] == 3.0
    assert s.requested_cpu_cores[0] == pytest.approx(2.6)
    assert s.workload_pods[0] == 2.0  # the DaemonSet pod does not make a node non-empty
    snap.delete_pod(a.uid)
    assert s.requested_gpus[0] == 1.0
    done = read_pod(fx.pod("b", cpu="1", gpus=1, node_name="n0", phase="Succeeded"))
    snap.upsert_pod(done)  # finished pods free their requests
    assert s.requested_gpus[0] == 0.0
    assert s.workload_pods[0] == 0.0


def test_an_assumption_is_replaced_by_the_bind_and_follows_the_real_node(test_profiles: ProfileSet) -> None:
    snap, _ = snapshot(test_profiles)
    pending = read_pod(fx.pod("p", gpus=2))
    snap.assume(pending.uid, "n0", pending.demand)
    s = state(snap)
    assert (s.requested_gpus[0], s.pending_gpus[0]) == (2.0, 2.0)
    # kube-scheduler chose n1 after all (other plugins outweighed us): the watch tells us.
    snap.upsert_pod(read_pod(fx.pod("p", gpus=2, node_name="n1")))
    assert snap.assumptions == 0
    assert (s.requested_gpus[0], s.pending_gpus[0]) == (0.0, 0.0)
    assert (s.requested_gpus[1], s.pending_gpus[1]) == (2.0, 2.0)


def test_a_pod_assumed_again_moves_and_is_never_counted_twice(test_profiles: ProfileSet) -> None:
    """kube-scheduler may prioritize the same pod again (a retry after a failed bind): its requests and its
    pending load follow the latest choice; a new pod adds both at once."""
    snap, _ = snapshot(test_profiles)
    pod = read_pod(fx.pod("p", cpu="2", gpus=1))
    s = state(snap)
    snap.assume(pod.uid, "n0", pod.demand)
    assert (s.requested_gpus[0], s.pending_gpus[0], s.workload_pods[0]) == (1.0, 1.0, 1.0)
    assert s.requested_cpu_cores[0] == pytest.approx(2.0)
    snap.assume(pod.uid, "n1", pod.demand)
    assert (s.requested_gpus[0], s.pending_gpus[0], s.workload_pods[0]) == (0.0, 0.0, 0.0)
    assert (s.requested_gpus[1], s.pending_gpus[1], s.workload_pods[1]) == (1.0, 1.0, 1.0)
    snap.assume(pod.uid, "n1", pod.demand)  # the same choice again: still one pod
    assert (s.requested_gpus[1], s.pending_gpus[1], s.workload_pods[1]) == (1.0, 1.0, 1.0)
    assert snap.assumptions == 1 and snap.pending_placements == 1


def test_pending_load_ends_when_telemetry_has_seen_the_pod(test_profiles: ProfileSet) -> None:
    snap, clock = snapshot(test_profiles)
    snap.upsert_pod(read_pod(fx.pod("p", gpus=4, node_name="n0")))  # bound after sync: a new placement
    s = state(snap)
    assert s.pending_gpus[0] == 4.0
    clock.advance(30.0)
    early = NodeTelemetry("n0", observed_at=clock(), cpu_utilization=0.1, gpu_utilization=0.0)
    snap.apply_telemetry(TelemetrySnapshot(fetched_at=clock(), nodes={"n0": early}))
    assert s.pending_gpus[0] == 4.0  # a sample 30 s after the bind may not show the pod yet
    clock.advance(31.0)
    late = NodeTelemetry(
        "n0",
        observed_at=clock(),
        cpu_utilization=0.1,
        gpu_utilization=0.5,
        sample_times={Signal.CPU_UTILIZATION: clock(), Signal.GPU_UTILIZATION: clock()},
    )
    snap.apply_telemetry(TelemetrySnapshot(fetched_at=clock(), nodes={"n0": late}))
    assert s.pending_gpus[0] == 0.0
    assert s.gpu_utilization[0] == 0.5


def test_pods_listed_at_startup_are_not_pending(test_profiles: ProfileSet) -> None:
    clock = Clock()
    snap = ClusterSnapshot(test_profiles, clock)
    snap.upsert_node(read_node(fx.node("n0", gpus=8)))
    snap.upsert_pod(read_pod(fx.pod("old", gpus=4, node_name="n0", phase="Running")))
    snap.mark_synced()
    snap.rebuild()
    s = state(snap)
    assert s.requested_gpus[0] == 4.0 and s.pending_gpus[0] == 0.0


def test_relist_drops_objects_deleted_while_unwatched(test_profiles: ProfileSet) -> None:
    snap, _ = snapshot(test_profiles, nodes=3)
    snap.upsert_pod(read_pod(fx.pod("gone", gpus=1, node_name="n2")))
    snap.retain_pods(set())
    snap.retain_nodes({"n0", "n1"})
    assert snap.dirty
    snap.rebuild()
    assert snap.names == ["n0", "n1"]
    assert float(state(snap).requested_gpus.sum()) == 0.0


def test_node_changes_rebuild_and_keep_counts(test_profiles: ProfileSet) -> None:
    snap, _ = snapshot(test_profiles)
    snap.upsert_pod(read_pod(fx.pod("a", gpus=2, node_name="n1", phase="Running")))
    snap.assume("uid-x", "n0", read_pod(fx.pod("x", gpus=1)).demand)
    snap.upsert_node(read_node(fx.node("n2", gpus=8)))
    assert snap.dirty
    snap.rebuild()
    s = state(snap)
    assert list(s.requested_gpus) == [1.0, 2.0, 0.0]


def test_nodes_matching_no_profile_use_the_default_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    profiles = default_profiles()
    clock = Clock(T0)
    snap = ClusterSnapshot(profiles, clock)
    snap.upsert_node(read_node(fx.node("mystery", gpus=4)))
    snap.upsert_node(read_node(fx.node("known", labels={"lepton.ai/node-class": "cpu-small"})))
    # A GPU node labelled with a CPU-only profile falls back to the default (which models GPUs).
    snap.upsert_node(read_node(fx.node("mislabelled", gpus=2, labels={"lepton.ai/node-class": "cpu-small"})))
    snap.mark_synced()
    with caplog.at_level(logging.WARNING, logger="lepton.extender.snapshot"):
        snap.rebuild()
    text = caplog.text
    assert "mystery: no cost profile matches" in text and "'generic'" in text
    assert "mislabelled: has 2 GPUs but profile 'cpu-small' has no GPU model" in text
    assert "known" not in text
    assert snap.stats.unmatched_profile_nodes == 2


def _plain(name: str) -> bool:
    return all(32 <= ord(c) <= 126 and c not in '"\\' for c in name)


@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True),
    st.lists(st.text(max_size=12), max_size=30),
    st.randoms(use_true_random=False),
)
@settings(max_examples=200, deadline=None)
def test_name_table_reads_raw_node_names_as_the_dict_does(
    inventory: list[str], asked: list[str], rng: random.Random
) -> None:
    """The compiled reader of raw ``NodeNames`` bytes answers what a dict lookup answers, or declines
    (None) for bytes in another shape (escapes, non-ASCII); it never answers wrongly — also when the
    order it learned from the previous request (its successor guesses) no longer holds."""
    table = NameTable(inventory)
    index = {n: i for i, n in enumerate(inventory)}
    names = asked + inventory[::2]
    for _ in range(3):  # learn an order, then ask again in it and shuffled
        body = orjson.dumps({"Pod": {}, "Nodes": None, "NodeNames": names})
        plain = plain_names(body)
        if HAVE_NUMBA and all(map(_plain, names)):  # the plain shape is always read
            assert plain is not None
        if plain is None:
            assert not HAVE_NUMBA or not all(map(_plain, names))
            return
        assert plain.length == len(names)
        key = body[plain.at :]
        got = table.resolve(key)
        assert got is not None
        assert got.positions.tolist() == [index.get(n, -1) for n in names]
        assert got.unknown == sum(n not in index for n in names)
        # The same pass as the shape check, in the parse: the same verdict and the same positions.
        resolved = plain_names(body, resolve=table.resolve)
        assert resolved is not None and resolved.resolved is not None
        assert (resolved.at, resolved.length) == (plain.at, plain.length)
        assert resolved.resolved.positions.tolist() == got.positions.tolist()
        assert resolved.resolved.unknown == got.unknown
        assert table.resolve(key[:-1] + b"x") is None  # not followed by "}" and whitespace only
        # What filter echoes when every node passes: the array's own bytes, the same names.
        assert orjson.loads(raw_array(key)) == names
        if rng.random() < 0.5:
            rng.shuffle(names)


@pytest.mark.skipif(not HAVE_NUMBA, reason="the plain-shape reader needs numba")
@pytest.mark.parametrize(
    "body",
    [
        b'{"Pod":{},"Nodes":null,"NodeNames":["a","b"]}x',  # junk after the envelope
        b'{"Pod":{},"NodeNames":["a","b"],"Nodes":null}',  # not the last key
        b'{"Pod":{"x":{"NodeNames":["a"]}},"NodeNames":null}',  # nested
        b'{"Pod":{},"Nodes":null,"NodeNames":["a" ,"b"]}',  # whitespace inside the array
        b'{"Pod":{},"Nodes":null,"NodeNames":["a\\u0062"]}',  # an escape
        b'{"Pod":{},"Nodes":null, "NodeNames":["a"]}',  # whitespace before the key
        b'{"Pod":{},"Nodes":null,"NodeNames":["a",]}',  # trailing comma
        b'{"Pod":{},"Nodes":null,"NodeNames":["a"]',  # truncated
    ],
)
def test_plain_names_declines_every_other_shape(body: bytes) -> None:
    assert plain_names(body) is None
    assert plain_names(body, resolve=NameTable(["a", "b"]).resolve) is None


@pytest.mark.skipif(not HAVE_NUMBA, reason="the plain-shape reader needs numba")
def test_plain_names_reads_what_kube_scheduler_sends() -> None:
    body = b'{"Pod":{"metadata":{"name":"p"}},"Nodes":null,"NodeNames":["n-1","n-2","n 3"]}\n'
    plain = plain_names(body)
    assert plain is not None and plain.length == 3 and body[plain.at :].startswith(b'"NodeNames":[')
    empty = plain_names(b'{"Pod":{},"Nodes":null,"NodeNames":[]}')
    assert empty is not None and (empty.at, empty.length, empty.key) == (23, 0, b'"NodeNames":[]}')


@pytest.mark.skipif(not HAVE_NUMBA, reason="the plain-shape reader needs numba")
def test_recent_candidate_lists_are_resolved_once_until_the_arrays_change(test_profiles: ProfileSet) -> None:
    """kube-scheduler sends the same lists again (its rotating windows, prioritize after filter): the
    snapshot answers them from memory — the same positions — and reads them anew after a rebuild."""
    snap, _ = snapshot(test_profiles, nodes=4)
    body = orjson.dumps({"Pod": {}, "Nodes": None, "NodeNames": ["n2", "n0", "nope"]})
    key = body[body.rindex(b'"NodeNames":[') :]
    first = snap.resolve_names(key)
    hits = snap.stats.lookup_hits
    assert first is not None and first.positions.tolist() == [2, 0, -1] and first.unknown == 1
    assert snap.resolve_names(key) is first and snap.stats.lookup_hits == hits + 1
    assert snap.resolve_names(key[:-1] + b",") is None  # not the plain shape: no positions
    snap.upsert_node(read_node(fx.node("n10")))
    snap.rebuild()
    again = snap.resolve_names(key)
    assert again is not first and again is not None
    assert again.positions.tolist() == [snap.index["n2"], snap.index["n0"], -1]


def _lookup_names(snap: ClusterSnapshot, names: list[str]) -> list[int]:
    body = orjson.dumps({"Pod": {}, "Nodes": None, "NodeNames": names})
    plain = plain_names(body)
    assert plain is not None
    found = snap.lookup(ExtenderArgs(read_pod(fx.pod("x")), names_key=body[plain.at :], count=plain.length))
    assert found.unknown == int(np.count_nonzero(found.positions < 0))
    return found.positions.tolist()


@pytest.mark.skipif(not HAVE_NUMBA, reason="the order is learned by the compiled name reader")
def test_arrays_follow_the_candidate_order_kube_scheduler_uses(test_profiles: ProfileSet) -> None:
    """Candidates arrive in an order unrelated to names (kube-scheduler interleaves zones): once that order
    is learned, the arrays are laid out in it — and every node keeps its requests, placements, telemetry
    and scores, by name."""
    snap, clock = snapshot(test_profiles, nodes=24, gpus=8)
    order = [f"n{i}" for i in random.Random(7).sample(range(24), 24)]
    pod = read_pod(fx.pod("p", gpus=2))
    snap.assume(pod.uid, order[3], pod.demand)
    seen = NodeTelemetry(order[5], observed_at=clock(), cpu_utilization=0.4, gpu_utilization=0.25)
    snap.apply_telemetry(TelemetrySnapshot(fetched_at=clock(), nodes={order[5]: seen}))

    def by_name() -> dict[str, tuple[float | None, ...]]:
        s = state(snap)
        result = score_nodes(read_pod(fx.pod("q", gpus=1)).demand, s, clock())
        cols = (s.requested_gpus, s.pending_gpus, s.gpu_utilization, result.objective_per_hour, result.scores)
        return {n: tuple(None if np.isnan(c[i]) else float(c[i]) for c in cols) for i, n in enumerate(snap.names)}

    before = by_name()
    _lookup_names(snap, order[:8])  # a third of the nodes learned: not enough to act on
    assert not snap.relayout(every_seconds=0.0)
    for start in (0, 8, 16, 4):  # windows over the whole order, as kube-scheduler's rotation walks it
        _lookup_names(snap, (order + order)[start : start + 8])
    assert snap.relayout(every_seconds=0.0)
    assert snap.names == order and snap.stats.relayouts == 1
    assert by_name() == before
    assert _lookup_names(snap, order[2:9]) == list(range(2, 9))  # the window is now one stretch of memory
    assert not snap.relayout(every_seconds=0.0)  # in place: nothing to do
