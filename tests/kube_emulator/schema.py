"""What the API server does with a CRD's openAPIV3Schema: default, prune, validate (schema + CEL).

* ``apply_defaults`` — structural defaulting (``default`` of absent properties, recursively).
* ``prune`` — drop fields the schema does not declare, unless ``x-kubernetes-preserve-unknown-fields``.
* ``validate`` — JSON-Schema validation (jsonschema, on the schema with the Kubernetes extensions
  stripped), ``x-kubernetes-list-type: map`` key uniqueness, and the CEL ``x-kubernetes-validations``
  rules evaluated with cel-python (``self``, and ``oldSelf`` for transition rules on update). Every error
  is ``(field path, message)`` and the message starts with the field path, in the API server's wording
  (``spec.workers: Invalid value: 0: spec.workers in body should be greater than or equal to 1``).
* ``structural_problems`` — why a schema is not structural (what the API server refuses at CRD create).

Used by the emulator's store for custom resources, and by the operator's CRD tests for the samples.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import celpy
import jsonschema

Schema = dict[str, Any]
FieldError = tuple[str, str]

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


# --- defaulting and pruning -------------------------------------------------------------------------
def apply_defaults(schema: Schema, value: Any) -> Any:
    """A copy of ``value`` with schema defaults filled in where properties are absent."""
    value = copy.deepcopy(value)
    _default_in_place(schema, value)
    return value


def _default_in_place(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default_in_place(sub, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            known = set(schema.get("properties") or {})
            for name, item in value.items():
                if name not in known:
                    _default_in_place(additional, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_in_place(schema["items"], item)


def prune(schema: Schema, value: Any, *, root: bool = True) -> Any:
    """A copy of ``value`` without the fields the schema does not know."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get(_PRESERVE))
        result: dict[str, Any] = {}
        for name, item in value.items():
            if root and name in ("apiVersion", "kind", "metadata"):
                result[name] = copy.deepcopy(item)
            elif name in properties:
                result[name] = prune(properties[name], item, root=False)
            elif isinstance(additional, dict):
                result[name] = prune(additional, item, root=False)
            elif preserve or additional is True:
                result[name] = copy.deepcopy(item)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], item, root=False) for item in value]
    return copy.deepcopy(value)


# --- JSON-Schema validation --------------------------------------------------------------------------
def _to_json_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("description", "default", "example", "externalDocs"):
            continue
        if key == "format":
            continue  # the API server checks a few formats leniently; the emulator checks none
        if key in ("properties", "patternProperties", "definitions"):
            result[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in ("anyOf", "allOf", "oneOf"):
            result[key] = _to_json_schema(value)
        else:
            result[key] = value
    if schema.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    result.pop("nullable", None)
    return result


_VALIDATORS: dict[int, tuple[Schema, jsonschema.protocols.Validator]] = {}


def _validator(schema: Schema) -> jsonschema.protocols.Validator:
    """One compiled validator per schema object (kept alive here, so its id is never reused)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None:
        converted = _to_json_schema(schema)
        cls = jsonschema.validators.validator_for(converted, default=jsonschema.Draft7Validator)
        cached = _VALIDATORS[id(schema)] = (schema, cls(converted))
    return cached[1]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _schema_message(error: jsonschema.ValidationError) -> FieldError:
    path = ""
    for part in error.absolute_path:
        path = _join(path, part)
    shown = path or "<root>"
    value = error.instance
    kind = error.validator
    limit = error.validator_value
    if kind == "required":
        missing = next((name for name in limit if isinstance(value, dict) and name not in value), "?")
        field = _join(path, missing)
        return field, f"{field}: Required value"
    if kind == "enum":
        supported = ", ".join(json.dumps(v) for v in limit)
        return path, f"{shown}: Unsupported value: {_show(value)}: supported values: {supported}"
    if kind == "type":
        return path, f"{shown}: Invalid value: {_show(value)}: {shown} in body must be of type {limit}"
    messages = {
        "minimum": f"should be greater than or equal to {limit}",
        "maximum": f"should be less than or equal to {limit}",
        "exclusiveMinimum": f"should be greater than {limit}",
        "exclusiveMaximum": f"should be less than {limit}",
        "pattern": f"should match '{limit}'",
        "minItems": f"should have at least {limit} items",
        "maxItems": f"should have at most {limit} items",
        "minLength": f"should be at least {limit} chars long",
        "maxLength": f"should be at most {limit} chars long",
        "minProperties": f"should have at least {limit} properties",
        "maxProperties": f"should have at most {limit} properties",
    }
    detail = messages.get(str(kind), error.message)
    return path, f"{shown}: Invalid value: {_show(value)}: {shown} in body {detail}"


# --- CEL --------------------------------------------------------------------------------------------
_CEL_ENV = celpy.Environment()


@lru_cache(maxsize=256)
def _cel_program(rule: str) -> Any:
    return _CEL_ENV.program(_CEL_ENV.compile(rule))


def _cel_check(rule: str, value: Any, old: Any, has_old: bool) -> tuple[bool, str | None]:
    activation: dict[str, Any] = {"self": celpy.json_to_cel(value)}
    if has_old:
        activation["oldSelf"] = celpy.json_to_cel(old)
    try:
        result = _cel_program(rule).evaluate(activation)
    except Exception as exc:  # cel-python raises its own error types for missing keys and bad overloads
        return False, f"evaluation error: {exc.args[0] if exc.args else exc}"
    if isinstance(result, Exception):
        return False, f"evaluation error: {result}"
    return bool(result), None


def _walk_rules(schema: Schema, value: Any, old: Any, has_old: bool, path: str) -> Iterator[FieldError]:
    for rule in schema.get("x-kubernetes-validations") or ():
        text = rule["rule"]
        if "oldSelf" in text and not has_old:
            continue  # transition rules apply to updates of an existing value only
        ok, error = _cel_check(text, value, old, has_old)
        if not ok:
            field = path + rule.get("fieldPath", "") if rule.get("fieldPath") else path
            shown = field or "<root>"
            message = rule.get("message") or f"failed rule: {text}"
            if error:
                message = f"{message} ({error})"
            yield field, f"{shown}: Invalid value: {_show(value)}: {message}"
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name) or (additional if isinstance(additional, dict) else None)
            if sub is None:
                continue
            child_has_old = has_old and isinstance(old, dict) and name in old
            yield from _walk_rules(
                sub, item, old.get(name) if child_has_old else None, child_has_old, _join(path, name)
            )
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items_schema = schema["items"]
        keys = schema.get("x-kubernetes-list-map-keys") if schema.get("x-kubernetes-list-type") == "map" else None
        old_by_key: dict[Any, Any] = {}
        if keys and has_old and isinstance(old, list):
            old_by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for index, item in enumerate(value):
            item_key = tuple(item.get(k) for k in keys) if keys and isinstance(item, dict) else None
            item_has_old = item_key is not None and item_key in old_by_key
            yield from _walk_rules(
                items_schema, item, old_by_key.get(item_key) if item_has_old else None, item_has_old, _join(path, index)
            )


def _walk_list_maps(schema: Schema, value: Any, path: str) -> Iterator[FieldError]:
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, item in value.items():
            if name in properties:
                yield from _walk_list_maps(properties[name], item, _join(path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys") if schema.get("x-kubernetes-list-type") == "map" else None
        seen: set[tuple[Any, ...]] = set()
        for index, item in enumerate(value):
            if keys and isinstance(item, dict):
                key = tuple(item.get(k) for k in keys)
                if key in seen:
                    shown = ", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=True))
                    field = _join(path, index)
                    yield field, f"{field}: Duplicate value: {shown}"
                seen.add(key)
            yield from _walk_list_maps(schema["items"], item, _join(path, index))


def validate(schema: Schema, value: Any, old: Any = None, *, cel: bool = True) -> list[FieldError]:
    """Every way ``value`` breaks ``schema`` (empty when valid); ``old`` enables transition rules.

    ``cel=False`` skips the CEL rules: cel-python interprets them at about 3 ms each, which a load test of
    the operator should not mistake for the operator's own cost (an API server runs them compiled).
    """
    errors: list[FieldError] = []
    validator = _validator(schema)
    for error in sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]):
        errors.append(_schema_message(error))
    errors.extend(_walk_list_maps(schema, value, ""))
    if not errors and cel:
        # The API server skips CEL on values that already failed the schema (types would not line up).
        errors.extend(_walk_rules(schema, value, old, old is not None, ""))
    return errors


# --- structural schema check ------------------------------------------------------------------------
def structural_problems(schema: Schema, path: str = "", *, root: bool = True) -> list[str]:
    """Reasons the API server would refuse this schema as non-structural (empty when fine)."""
    problems: list[str] = []
    where = path or "<root>"
    int_or_string = bool(schema.get(_INT_OR_STRING))
    preserve = bool(schema.get(_PRESERVE))
    if "type" not in schema and not (int_or_string or preserve):
        problems.append(f"{where}: type is required")
    if "$ref" in schema:
        problems.append(f"{where}: $ref is not allowed")
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and isinstance(schema.get("additionalProperties"), dict)
    ):
        problems.append(f"{where}: properties and additionalProperties are mutually exclusive")
    if schema.get("additionalProperties") is False:
        problems.append(f"{where}: additionalProperties: false is not allowed (pruning does this)")
    for junction in ("anyOf", "allOf", "oneOf"):
        for branch in schema.get(junction) or ():
            if int_or_string and branch in ({"type": "integer"}, {"type": "string"}):
                continue
            for forbidden in ("type", "description", "default", "additionalProperties", "nullable"):
                if forbidden in branch:
                    problems.append(f"{where}.{junction}: {forbidden} is not allowed inside {junction}")
    if "default" in schema:
        default = schema["default"]
        pruned = prune(schema, default, root=False)
        if pruned != default:
            problems.append(f"{where}: default is not pruned (has unknown fields)")
        errors = validate({k: v for k, v in schema.items() if k != "default"}, default)
        if errors:
            problems.append(f"{where}: default is invalid: {errors[0][1]}")
    for name, sub in (schema.get("properties") or {}).items():
        child = _join(path, name)
        if root and name == "metadata":
            extra = set(sub.get("properties") or {}) - {"name", "generateName"}
            if extra:
                problems.append(f"metadata: only name and generateName may be constrained, not {sorted(extra)}")
            continue
        problems.extend(structural_problems(sub, child, root=False))
    if isinstance(schema.get("items"), dict):
        problems.extend(structural_problems(schema["items"], _join(path, "items"), root=False))
    if isinstance(schema.get("additionalProperties"), dict):
        problems.extend(
            structural_problems(schema["additionalProperties"], _join(path, "additionalProperties"), root=False)
        )
    if schema.get("x-kubernetes-list-type") == "map":
        item = schema.get("items") or {}
        for key in schema.get("x-kubernetes-list-map-keys") or ():
            key_schema = (item.get("properties") or {}).get(key)
            if key_schema is None:
                problems.append(f"{where}: list-map key {key!r} is not a property of the items")
            elif key not in (item.get("required") or ()) and "default" not in key_schema:
                problems.append(f"{where}: list-map key {key!r} must be required or defaulted")
    for rule in schema.get("x-kubernetes-validations") or ():
        try:
            _cel_program(rule["rule"])
        except Exception as exc:  # a compile error of any kind
            problems.append(f"{where}: CEL rule {rule['rule']!r} does not compile: {exc}")
    return problems


def missing_descriptions(schema: Schema, path: str = "") -> list[str]:
    """Declared properties without a description (``kubectl explain`` would show nothing)."""
    missing: list[str] = []
    for name, sub in (schema.get("properties") or {}).items():
        child = _join(path, name)
        if not sub.get("description"):
            missing.append(child)
        missing.extend(missing_descriptions(sub, child))
    if isinstance(schema.get("items"), dict):
        missing.extend(missing_descriptions(schema["items"], f"{path}[]"))
    return missing
