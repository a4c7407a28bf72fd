"""Kubernetes resource quantities (``500m``, ``2``, ``1.5Gi``, ``1e3``) as floats.

The grammar is apimachinery's ``resource.Quantity``: a signed decimal number, then a binary SI suffix
(``Ki`` … ``Ei``), a decimal SI suffix (``n u m "" k M G T P E``) or a decimal exponent (``e3``, ``E-2``).
JSON numbers are accepted too (some tools write ``"cpu": 2``). Anything else raises ``QuantityError``
with the offending text, never a bare ``ValueError`` from deep inside.

Neighbours: ``lepton_core.kube.fields`` reads every quantity field through this (pod requests and node
allocatable, for the extender's scoring and the operator's accounting alike).
"""

from __future__ import annotations

import math
import re

_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<bin>[KMGTPE]i)|(?P<exp>[eE][+-]?[0-9]+)|(?P<dec>[numkMGTPE]?))$"
)
_MAX_TEXT = 64
"""Longer strings are rejected before the regex runs (no quantity is that long)."""


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


_SEEN: dict[str, float] = {}
"""Strings already parsed (requests repeat the same few: ``500m``, ``2Gi``); bounded by ``_SEEN_MAX``."""
_SEEN_MAX = 4096


def parse_quantity(value: object) -> float:
    """The quantity's value in base units (cores, bytes, devices)."""
    if type(value) is str:
        hit = _SEEN.get(value)
        if hit is not None:
            return hit
        out = _parse(value)
        if len(_SEEN) < _SEEN_MAX:
            _SEEN[value] = out
        return out
    return _parse(value)


def _parse(value: object) -> float:
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT:
            raise QuantityError(f"not a quantity: {value[:_MAX_TEXT]!r}…")
        m = _QUANTITY.match(text)
        if m is None:
            raise QuantityError(f"not a quantity: {value!r}")
        number = float(m["num"])
        if m["bin"]:
            out = number * _BINARY[m["bin"]]
        elif m["exp"]:
            try:
                out = number * 10.0 ** int(m["exp"][1:])
            except OverflowError:
                raise QuantityError(f"quantity out of range: {value!r}") from None
        else:
            out = number * _DECIMAL[m["dec"] or ""]
    else:
        raise QuantityError(f"not a quantity: {type(value).__name__}")
    if not math.isfinite(out):
        raise QuantityError(f"quantity out of range: {value!r}")
    return out
