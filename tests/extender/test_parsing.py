"""Quantities, pods, nodes (``lepton_core.kube``, as the extender reads them) and inventory files: examples
from the Kubernetes docs, and fuzzing that nothing but the module's own error ever escapes a parser."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_core.kube.objects import ObjectError, read_node, read_pod
from lepton_core.kube.quantity import QuantityError, parse_quantity
from lepton_extender.inventory import InventoryError, load_inventory, parse_inventory
from lepton_extender.wire import WireError, parse_args
from tests.extender import fixtures as fx
from tests.extender.strategies import KEYS, json_values, mutations

GIB = 2**30


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1Gi", GIB),
        ("128974848", 128974848.0),
        ("129e6", 129e6),
        ("129M", 129e6),
        ("123Mi", 123 * 2**20),
        ("1E", 1e18),
        ("1e3", 1000.0),
        ("1E-3", 1e-3),
        ("100n", 1e-7),
        ("250u", 2.5e-4),
        ("1k", 1000.0),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_quantities(text: object, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "lots", "1Kb", "1 Gi", "m", "1.2.3", "1e", "0x10", True, None, [], "9" * 400])
def test_not_quantities(text: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@given(
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"[+-]?[0-9]{0,4}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,4}|[KMGTPE]i|[numkMGTPE])?"),
    )
)
@settings(max_examples=500)
def test_quantity_parser_fuzz(text: str) -> None:
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert math.isfinite(value)


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
def test_decimal_quantities_roundtrip(d: Any) -> None:
    assert parse_quantity(str(d)) == pytest.approx(float(d))


def test_pod_requests_follow_kubernetes_rules() -> None:
    pod = fx.pod("p", cpu="1", memory="1Gi", gpus=1)
    pod["spec"]["containers"].append({"name": "side", "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}})
    pod["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "4", "memory": "100Mi"}}},
        {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}},
    ]
    pod["spec"]["overhead"] = {"cpu": "100m"}
    info = read_pod(pod)
    # cpu: max(Σ containers 1.5 + sidecar 0.25, init 4) + overhead 0.1; a missing request defaults to the limit.
    assert info.requests.cpu_cores == pytest.approx(4.1)
    assert info.requests.memory_bytes == pytest.approx(GIB + 512 * 2**20)
    assert info.requests.gpus == 1.0
    assert info.demand.gpus == 1.0


def test_pod_annotations_set_expected_busy_fractions() -> None:
    info = read_pod(fx.pod("p", annotations={"lepton.ai/expected-cpu-utilization": "0.25"}))
    assert info.demand.cpu_busy_fraction == 0.25 and info.demand.gpu_busy_fraction == 1.0


def test_node_facts() -> None:
    n = read_node(
        fx.node(
            "n",
            cpu="95500m",
            memory="500Gi",
            gpus=8,
            labels={"karpenter.sh/nodepool": "gpu"},
            annotations={"lepton.ai/power-cap-watts": "6000"},
        )
    )
    assert (n.allocatable.cpu_cores, n.allocatable.gpus) == (95.5, 8.0)
    assert n.autoscaled and n.power_cap_watts == 6000.0
    pinned = fx.node(
        "m",
        labels={"lepton.ai/autoscaled": "true"},
        annotations={"cluster-autoscaler.kubernetes.io/scale-down-disabled": "true"},
    )
    assert not read_node(pinned).autoscaled
    with pytest.raises(ObjectError, match="power-cap-watts"):
        read_node(fx.node("x", annotations={"lepton.ai/power-cap-watts": "lots"}))


def test_inventory_shapes(tmp_path: Path) -> None:
    nodes = [fx.node("a"), fx.node("b", gpus=8)]
    p = tmp_path / "nodes.json"
    p.write_bytes(orjson.dumps(fx.node_list(*nodes)))  # kubectl get nodes -o json
    inv = load_inventory(p)
    assert [n.name for n in inv.nodes] == ["a", "b"] and inv.pods == ()
    both = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"kind": "Node", **nodes[0]}, {"kind": "Pod", **fx.pod("x", node_name="a")}, {"kind": "Service"}],
    }
    y = tmp_path / "all.yaml"
    y.write_text(yaml.safe_dump(both))
    inv = load_inventory(y)
    assert [n.name for n in inv.nodes] == ["a"] and [q.name for q in inv.pods] == ["x"] and inv.skipped == 1
    assert [n.name for n in parse_inventory({"kind": "Node", **nodes[1]}).nodes] == ["b"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([], "expected a Kubernetes List"),
        ({"kind": "NodeList", "items": "x"}, "items: expected an array"),
        ({"kind": "NodeList", "items": [fx.node("a"), fx.node("a")]}, "items[1].metadata.name: duplicate node"),
        ({"kind": "NodeList", "items": [fx.node("a", cpu="many")]}, "items[0].status.allocatable.cpu"),
    ],
)
def test_inventory_errors_name_the_item(doc: Any, reason: str) -> None:
    with pytest.raises(InventoryError) as err:
        parse_inventory(doc)
    assert reason in str(err.value)


def test_inventory_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InventoryError, match="not valid JSON/YAML"):
        load_inventory(bad)


@given(st.one_of(json_values, mutations(), st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4)))
@settings(max_examples=400, deadline=None)
def test_request_parser_fuzz_raises_only_wire_errors(doc: Any) -> None:
    try:
        body = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return
    try:
        parse_args(body)
    except WireError as exc:
        status, reason = exc.status, exc.reason
        assert 400 <= status < 500 and reason


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_request_parser_fuzz_bytes(body: bytes) -> None:
    try:
        parse_args(body)
    except WireError as exc:
        status = exc.status
        assert status == 400
