"""``lepton operator``: flags, their validation, and the settings they become."""

from __future__ import annotations

import argparse

import pytest

from lepton_cli.main import main as lepton_main
from lepton_operator import __main__ as module_main
from lepton_operator import cli
from lepton_operator.app import settings_from_args


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(["operator", *argv])


def test_lepton_operator_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        lepton_main(["operator", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--namespace",
        "--all-namespaces",
        "--standalone",
        "--liveness",
        "--metrics-port",
        "--peering",
        "--priority",
    ):
        assert flag in text


def test_flags_become_settings() -> None:
    settings = settings_from_args(
        _args(
            "-n",
            "team-a",
            "--namespace",
            "team-b",
            "--standalone",
            "--liveness",
            "http://0.0.0.0:8081/healthz",
            "--metrics-port",
            "9090",
        )
    )
    assert settings.namespaces == ("team-a", "team-b") and settings.standalone
    assert settings.metrics_port == 9090 and settings.liveness_endpoint == "http://0.0.0.0:8081/healthz"
    defaults = settings_from_args(_args())
    assert defaults.namespaces == () and defaults.metrics_port == 8080 and not defaults.peering_mandatory
    assert settings_from_args(_args("--metrics-port", "-1")).metrics_port is None


def test_namespaces_and_all_namespaces_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        module_main.main(["-n", "a", "--all-namespaces"])
    assert info.value.code == 2 and "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--resync-seconds", "0"], "--resync-seconds"),
        (["--peering-lifetime", "0"], "--peering-lifetime"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert module_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lepton operator: error: " + flag) and err.count("\n") == 1
