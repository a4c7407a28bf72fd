"""The argparse value types every ``lepton`` sub-command shares: what each accepts, and errors that name the
flag and quote the bad value."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from lepton_cli.main import build_parser
from lepton_core import cli_types


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (cli_types.non_negative_float, "0", 0.0),
        (cli_types.non_negative_float, "2.5", 2.5),
        (cli_types.positive_float, "1e-3", 1e-3),
        (cli_types.fraction, "0", 0.0),
        (cli_types.fraction, "1", 1.0),
        (cli_types.non_negative_int, "0", 0),
        (cli_types.positive_int, "3", 3),
        (cli_types.name_value, "overload_risk=0", ("overload_risk", 0.0)),
        (cli_types.name_value, " keep-alive = 2.5", ("keep_alive", 2.5)),
    ],
)
def test_good_values(parse: Callable[[str], object], text: str, value: object) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (cli_types.non_negative_float, "ten", "not a number: 'ten'"),
        (cli_types.non_negative_float, "nan", "must be a finite number: 'nan'"),
        (cli_types.non_negative_float, "-1", "must not be negative: '-1'"),
        (cli_types.positive_float, "0", "must be positive: '0'"),
        (cli_types.positive_float, "inf", "must be a finite number: 'inf'"),
        (cli_types.fraction, "1.5", "must be a fraction in [0, 1]: '1.5'"),
        (cli_types.non_negative_int, "1.5", "not a whole number: '1.5'"),
        (cli_types.non_negative_int, "-2", "must not be negative: '-2'"),
        (cli_types.positive_int, "0", "must be at least 1: '0'"),
        (cli_types.name_value, "balance", "expected NAME=VALUE, e.g. overload_risk=0: 'balance'"),
        (cli_types.name_value, "=1", "expected NAME=VALUE"),
        (cli_types.name_value, "balance=lots", "balance: not a number: 'lots'"),
        (cli_types.name_value, "balance=inf", "balance: must be a finite number: 'inf'"),
    ],
)
def test_bad_values_say_what_is_wrong_and_quote_the_value(
    parse: Callable[[str], object], text: str, message: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse(text)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("argv", "flag", "value"),
    [
        (["cost", "estimate", "--nodes", "-1", "--power-watts", "1", "--hours", "1"], "--nodes", "'-1'"),
        (["cost", "estimate", "--nodes", "1", "--power-watts", "1", "--hours", "-3"], "--hours", "'-3'"),
        (["cost", "estimate", "--nodes", "1", "--profile", "p", "--hours", "1", "--utilization", "2"], "--utilization",
         "'2'"),
        (["extender", "--max-utilization", "1.2"], "--max-utilization", "'1.2'"),
        (["extender", "--stale-after-seconds", "0"], "--stale-after-seconds", "'0'"),
        (["extender", "--weight", "balance"], "--weight", "'balance'"),
        (["simulate", "--idle-release", "-5"], "--idle-release", "'-5'"),
        (["simulate", "--limit", "0"], "--limit", "'0'"),
        (["simulate", "--lepton-weight", "pack=x"], "--lepton-weight", "'x'"),
        (["operator", "--accounting-interval", "0"], "--accounting-interval", "'0'"),
        (["operator", "--accounting-max-writes-per-second", "-1"], "--accounting-max-writes-per-second", "'-1'"),
    ],
)  # fmt: skip
def test_every_command_names_the_flag_and_the_value(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and value in err
