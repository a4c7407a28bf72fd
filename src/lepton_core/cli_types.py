"""argparse value types shared by every ``lepton`` sub-command: numbers checked for range, ``NAME=VALUE``.

Each is a ``type=`` for ``add_argument``. argparse reports an ``ArgumentTypeError`` as
``lepton …: error: argument --flag: <message>``, so argparse names the flag and each message says what is
wrong with the value, quoting it: ``argument --hours: must not be negative: '-1'``. Numbers must be finite
(``nan`` and ``inf`` are refused as values of any flag).

Neighbours: ``lepton_cli.cost``, ``lepton_extender.cli``, ``lepton_simulator.cli`` and
``lepton_operator.accounting.cli`` build their parsers with these. Standard library only: ``lepton``
builds every component's parser on each call.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (hours, prices, watts, seconds)."""
    value = _number(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (intervals, rates, lifetimes)."""
    value = _number(text)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (utilization)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1]: {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def non_negative_int(text: str) -> int:
    """A whole number ≥ 0 (node counts)."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (limits, weights of plugins)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def name_value(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` with a finite number, e.g. a scoring weight ``overload_risk=0``; ``-`` in NAME reads as
    ``_`` (``keep-alive=0`` is ``keep_alive=0``). Whether NAME exists is the caller's to check."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. overload_risk=0: {text!r}")
    try:
        return name, _number(raw)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{name}: {exc}") from None
