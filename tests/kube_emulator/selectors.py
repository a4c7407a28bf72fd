"""Label and field selectors with Kubernetes semantics (parsing and matching).

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists), ``!a``
(does not exist), joined by commas (AND). ``a!=b`` and ``notin`` also match objects without the label,
as in Kubernetes. Field selectors: ``path=value``, ``path==value``, ``path!=value``; each resource
declares which paths it supports (``resources.ResourceInfo.field_selectors``) and any other path is a
400 error, as on a real API server.

Used by ``store`` for lists, watches and delete-collection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.kube_emulator.errors import ApiError

_KEY = r"(?:[a-z0-9A-Z][-a-z0-9A-Z_.]*/)?[a-z0-9A-Z](?:[-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_SET_EXPR = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_EXPR = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|!=|=)\s*(?P<value>[-a-zA-Z0-9_.]*)\s*$")
_EXISTS_EXPR = re.compile(rf"^\s*(?P<bang>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str
    """One of ``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!``."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value in self.values
        if self.op == "!=":
            return not present or value not in self.values
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( ... )``."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a label selector; an unparsable one raises a 400 ``ApiError`` naming the bad term."""
    if not text:
        return ()
    requirements: list[Requirement] = []
    for term in _split_top_level(text):
        if m := _SET_EXPR.match(term):
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            if not values:
                raise ApiError.bad_request(f"labelSelector: {term!r}: a set needs at least one value")
            requirements.append(Requirement(m["key"], m["op"], values))
        elif m := _EQ_EXPR.match(term):
            op = "!=" if m["op"] == "!=" else "="
            requirements.append(Requirement(m["key"], op, frozenset([m["value"]])))
        elif m := _EXISTS_EXPR.match(term):
            requirements.append(Requirement(m["key"], "!" if m["bang"] else "exists"))
        else:
            raise ApiError.bad_request(f"labelSelector: unable to parse requirement {term!r}")
    return tuple(requirements)


def labels_match(requirements: tuple[Requirement, ...], obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    path: str
    negate: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = field_value(obj, self.path)
        return (actual != self.value) if self.negate else (actual == self.value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form Kubernetes compares field selectors against ('' when absent)."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return ""
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def parse_field_selector(text: str | None, supported: frozenset[str]) -> tuple[FieldRequirement, ...]:
    if not text:
        return ()
    requirements: list[FieldRequirement] = []
    for term in _split_top_level(text):
        if "!=" in term:
            path, value = term.split("!=", 1)
            negate = True
        elif "==" in term:
            path, value = term.split("==", 1)
            negate = False
        elif "=" in term:
            path, value = term.split("=", 1)
            negate = False
        else:
            raise ApiError.bad_request(f"fieldSelector: invalid selector {term!r}: expected path=value")
        path = path.strip()
        if path not in supported:
            raise ApiError.bad_request(f'fieldSelector: field label not supported: "{path}"')
        requirements.append(FieldRequirement(path, negate, value.strip()))
    return tuple(requirements)


def fields_match(requirements: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in requirements)
