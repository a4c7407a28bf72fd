"""The three PATCH flavours the API server accepts, as pure functions on JSON values.

* ``merge_patch`` — RFC 7386 JSON merge patch (``application/merge-patch+json``): objects merge
  recursively, ``null`` deletes, anything else (lists included) replaces.
* ``json_patch`` — RFC 6902 JSON patch (``application/json-patch+json``): add, remove, replace, move,
  copy and test; a failed ``test`` or a bad path is a ``PatchError`` (the server answers 422, which
  kopf relies on for its optimistic finalizer patches).
* ``strategic_merge_patch`` — the subset of Kubernetes' strategic merge patch
  (``application/strategic-merge-patch+json``) built-in types need: lists with a merge key (containers
  by name, env by name, schedulingGates by name, conditions by type, ownerReferences by uid, ...) merge
  element-wise; ``$patch: delete`` removes an element, ``$patch: replace`` replaces a list or map;
  ``$deleteFromPrimitiveList/<field>`` removes from primitive lists; ``finalizers`` merge as a set;
  ``$retainKeys`` and ``$setElementOrder`` are accepted and ignored (order does not matter here).
  Custom resources reject it with 415, as Kubernetes does.

Inputs are never mutated.
"""

from __future__ import annotations

import copy
from typing import Any

# Field name -> merge key, as in the Kubernetes API types' patchMergeKey tags (core/v1, meta/v1).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "schedulingGates": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "taints": "key",
    "addresses": "type",
}
# Primitive lists whose patch strategy is "merge" (union) rather than "replace".
SET_LISTS: frozenset[str] = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied; the message names the path."""


# --- RFC 7386 ---------------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ---------------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"json patch path {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"json patch path {path!r}: {token!r} is not an array index")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"json patch path {path!r}: index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"json patch path {path!r}: {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(f"json patch path {path!r}: cannot descend into a scalar")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"json patch path {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, allow_end=False)]
    raise PatchError(f"json patch path {path!r}: cannot descend into a scalar")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"json patch path {path!r}: cannot add into a scalar")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("json patch: cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"json patch path {path!r} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, path, allow_end=False)]
    else:
        raise PatchError(f"json patch path {path!r}: cannot remove from a scalar")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("json patch must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"json patch operation #{number}: needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if not isinstance(path, str):
            raise PatchError(f"json patch operation #{number}: 'path' must be a string")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"json patch operation #{number} ({kind} {path}): missing 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            doc = _add(_remove(doc, path), path, copy.deepcopy(op["value"])) if _pointer(path) else op["value"]
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"json patch operation #{number} ({kind}): missing 'from'")
            value = copy.deepcopy(_get(doc, source))
            if kind == "move":
                if path.startswith(source + "/"):
                    raise PatchError(f"json patch: cannot move {source!r} into its own child {path!r}")
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "test":
            actual = _get(doc, path)
            if actual != op["value"]:
                raise PatchError(f"json patch test failed at {path!r}: expected {op['value']!r}, found {actual!r}")
        else:
            raise PatchError(f"json patch operation #{number}: unknown op {kind!r}")
    return doc


# --- strategic merge (subset) ----------------------------------------------------------------------
def _merge_key_for(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge by containerPort, service ports by port.
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    original_list: list[Any] = copy.deepcopy(original) if isinstance(original, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if field in SET_LISTS:
        result = list(original_list)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    key = _merge_key_for(field, patch + original_list)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)  # replace strategy
    result = original_list
    for item in patch:
        directive = item.get("$patch")
        if key not in item:
            raise PatchError(f"strategic merge patch: {field} element lacks merge key {key!r}")
        position = next((n for n, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if directive == "delete":
            if position is not None:
                del result[position]
            continue
        clean = {k: v for k, v in item.items() if k != "$patch"}
        if position is None:
            result.append(_strip_directives(clean))
        else:
            result[position] = strategic_merge_patch(result[position], clean)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$retainKeys", "$patch") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result
