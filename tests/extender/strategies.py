"""Hypothesis strategies for fuzzing the extender's request parsing (JSON values and mutated payloads)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

from tests.extender import fixtures as fx

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
KEYS = [
    "Pod",
    "pod",
    "Nodes",
    "NodeNames",
    "nodenames",
    "metadata",
    "name",
    "spec",
    "containers",
    "resources",
    "requests",
    "limits",
    "cpu",
    "memory",
    "nvidia.com/gpu",
    "items",
    "initContainers",
    "annotations",
    "status",
]


def mutations() -> st.SearchStrategy[Any]:
    """Valid payloads with one subtree replaced by an arbitrary JSON value."""
    base = fx.args_names(fx.pod("p", gpus=1), ["n0", "n1"])
    full = fx.args_nodes(fx.pod("p", gpus=1), [fx.node("n0")])

    def mutate(doc: Any, path: list[int], value: Any) -> Any:
        doc = orjson.loads(orjson.dumps(doc))
        target = doc
        for step in path:
            if isinstance(target, dict) and target:
                key = sorted(target)[step % len(target)]
                if not isinstance(target[key], dict | list) or not target[key]:
                    target[key] = value
                    return doc
                target = target[key]
            elif isinstance(target, list) and target:
                i = step % len(target)
                if not isinstance(target[i], dict | list) or not target[i]:
                    target[i] = value
                    return doc
                target = target[i]
        return doc

    return st.builds(mutate, st.sampled_from([base, full]), st.lists(st.integers(0, 50), max_size=8), json_values)
