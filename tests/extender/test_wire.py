"""The request parser's two paths agree: the plain shape kube-scheduler sends (envelope parsed up to
``NodeNames``, names scanned from the raw bytes) answers exactly what parsing the whole body answers —
the same Pod, the same candidates, the same errors; and prioritize answers assembled from pre-encoded
rows are exactly the JSON orjson writes. Pure: no server needed."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_extender.names import HAVE_NUMBA, NameTable
from lepton_extender.wire import ExtenderArgs, PodMemo, PriorityTable, WireError, parse_args
from tests.extender import fixtures as fx
from tests.extender.strategies import json_values, mutations


def _outcome(body: bytes, memo: PodMemo | None = None) -> tuple[str, Any]:
    try:
        args = parse_args(body, memo)
    except WireError as exc:
        return "error", (exc.status, exc.reason)
    return "ok", _facts(args)


def _facts(args: ExtenderArgs) -> tuple[Any, ...]:
    return (args.pod, args.count, args.names, args.node_names, args.nodes)


def _loose(doc: Any) -> bytes:
    """The same document in a shape the plain path never takes (whitespace after every colon)."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="the plain-shape path needs numba")


@needs_numba
@given(st.one_of(mutations(), st.dictionaries(st.sampled_from(["Pod", "Nodes", "NodeNames"]), json_values)))
@settings(max_examples=400, deadline=None)
def test_plain_path_answers_what_the_whole_parse_answers(doc: Any) -> None:
    try:
        compact = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return
    assert _outcome(compact) == _outcome(_loose(doc))


@needs_numba
@given(
    st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20), max_size=40),
    st.integers(0, 8),
)
@settings(max_examples=200, deadline=None)
def test_kube_scheduler_bodies_take_the_plain_path(names: list[str], gpus: int) -> None:
    doc = fx.args_names(fx.pod("p", gpus=gpus), names)
    body = orjson.dumps(doc)
    args = parse_args(body)
    if '"' in "".join(names) or "\\" in "".join(names):
        return  # escaped in JSON: the whole parse serves (checked equal above)
    assert args.names_key is not None  # the raw names were not decoded ...
    assert args.count == len(names)
    assert args.names == names  # ... until asked for
    assert _facts(parse_args(body)) == _facts(parse_args(_loose(doc)))


@needs_numba
def test_the_pod_is_read_once_and_names_are_resolved_in_the_parse() -> None:
    """The same Pod (filter, then prioritize) is read once; the names come back as positions from the
    resolver the parse was given (the snapshot's, which also remembers recent lists: test_snapshot)."""
    table = NameTable(["a", "b", "c"])
    memo = PodMemo()
    first = parse_args(orjson.dumps(fx.args_names(fx.pod("p", gpus=1), ["a", "b", "c"])), memo, table.resolve)
    second = parse_args(orjson.dumps(fx.args_names(fx.pod("p", gpus=1), ["c", "x", "a"])), memo, table.resolve)
    assert second.pod is first.pod and second.names == ["c", "x", "a"]
    assert first.resolved is not None and first.resolved.positions.tolist() == [0, 1, 2]
    assert first.resolved.unknown == 0
    assert second.resolved is not None and second.resolved.positions.tolist() == [2, -1, 0]  # unknown: -1
    assert second.resolved.unknown == 1
    other = parse_args(orjson.dumps(fx.args_names(fx.pod("q", gpus=2), ["a"])), memo, table.resolve)
    assert other.pod is not first.pod and other.pod.name == "q" and other.pod.demand.gpus == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{,"NodeNames":["a"]}', "not valid JSON"),
        (b'{"Pod":null,"Nodes":null,"NodeNames":["a"]}', "Pod: missing"),
        (b'{"Pod":{"spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}},"NodeNames":["a"]}', "cpu"),
        (b'{"Pod":{"metadata":{"name":"p"}},"Nodes":null,"NodeNames":["a",1]}', "NodeNames[1]"),
    ],
)
def test_bad_plain_bodies_get_the_reasons_the_whole_parse_gives(body: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason.replace("[", r"\[")) as exc:
        parse_args(body)
    assert exc.value.status == 400


@given(
    st.lists(st.text(max_size=15), min_size=1, max_size=30, unique=True),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_pre_encoded_answers_are_what_orjson_encodes(names: list[str], data: st.DataObject) -> None:
    """Prioritize's answer assembled from pre-encoded rows is, byte for byte, the JSON of the same
    ``[{"Host", "Score"}]`` (any node name, escapes included); a score outside 0-10 is refused."""
    table = PriorityTable(names)
    picks = data.draw(st.lists(st.integers(0, len(names) - 1), max_size=40))
    scores = data.draw(st.lists(st.integers(0, 10), min_size=len(picks), max_size=len(picks)))
    body = table.render(np.array(picks, dtype=np.intp), np.array(scores, dtype=np.int64))
    assert body == orjson.dumps([{"Host": names[i], "Score": s} for i, s in zip(picks, scores, strict=True)])
    if picks:
        bad = data.draw(st.sampled_from([-1, 11, 100]))
        assert table.render(np.array(picks, dtype=np.intp), np.array([bad] * len(picks), dtype=np.int64)) is None
