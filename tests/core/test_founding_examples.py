"""The founding document's worked examples, with its arithmetic corrected (issue 2).

Each example is checked through the library and through ``lepton cost estimate --json``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lepton_cli.main import main
from lepton_core.models import aggregate_ratio, energy_kwh_from_compute, estimate_cost
from lepton_core.models.energy import kwh_for


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, float]:
    assert main(["cost", "estimate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_compute_example_totals_101050(capsys: pytest.CaptureFixture[str]) -> None:
    # 10 servers x 10 TFLOPS for 1 h at 0.5 kWh per TFLOPS-hour = 50 kWh (the document printed 10,150).
    kwh = energy_kwh_from_compute(tflops=10 * 10, hours=1, kwh_per_tflops_hour=0.5)
    assert kwh == 50.0
    est = estimate_cost(
        nodes=10, power_watts=5000, powered_hours=1, price_per_kwh=1.0, hardware_price_per_node=10_000, ops_fixed=1_000
    )
    assert (est.cost.hardware, est.cost.energy, est.cost.operations) == (100_000, 50, 1_000)
    assert est.cost.total == 101_050
    out = run_json(
        capsys,
        "--nodes",
        "10",
        "--power-watts",
        "5000",
        "--hours",
        "1",
        "--price-per-kwh",
        "1",
        "--hardware-price",
        "10000",
        "--ops-fixed",
        "1000",
    )
    assert out["total"] == 101_050
    assert out["energy_kwh"] == 50


def test_utilization_is_actual_over_maximum() -> None:
    # 5 nodes able to do 100 tasks/h each, 50 tasks/h done on average -> 0.5.
    assert aggregate_ratio([(50.0, 100.0)] * 5).value == 0.5


def test_500_watts_for_8_hours_is_4_kwh() -> None:
    assert kwh_for(500.0, 8.0) == pytest.approx(4.0, rel=1e-15)


@pytest.mark.parametrize(
    ("lifetime", "expected_total", "expected_hardware"),
    [(None, 84_600, 50_000), ("5", 44_600, 10_000)],
)
def test_fleet_year(
    capsys: pytest.CaptureFixture[str], lifetime: str | None, expected_total: float, expected_hardware: float
) -> None:
    # 10 nodes at 5,000 each, 500 W, 8 h/day for 365 days at 1.0/kWh, operations 2,000 per node-year.
    argv = [
        "--nodes",
        "10",
        "--power-watts",
        "500",
        "--hours",
        str(8 * 365),
        "--window-hours",
        "8760",
        "--price-per-kwh",
        "1.0",
        "--hardware-price",
        "5000",
        "--ops-per-node-year",
        "2000",
    ]
    if lifetime:
        argv += ["--lifetime-years", lifetime]
    out = run_json(capsys, *argv)
    assert out["energy_kwh"] == pytest.approx(14_600, abs=1e-9)  # the document had 1,460
    assert out["hardware"] == pytest.approx(expected_hardware, abs=1e-6)
    assert out["operations"] == pytest.approx(20_000, abs=1e-6)
    assert out["total"] == pytest.approx(expected_total, abs=1e-6)  # the document had 74,660


def test_issue_example_through_the_installed_console_script() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lepton_cli.main",
            "cost",
            "estimate",
            "--nodes",
            "10",
            "--power-watts",
            "500",
            "--hours",
            "2920",
            "--window-hours",
            "8760",
            "--price-per-kwh",
            "1.0",
            "--hardware-price",
            "5000",
            "--lifetime-years",
            "5",
            "--ops-per-node-year",
            "2000",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert {k: round(out[k], 6) for k in ("hardware", "energy", "operations", "total", "energy_kwh")} == {
        "hardware": 10_000,
        "energy": 14_600,
        "operations": 20_000,
        "total": 44_600,
        "energy_kwh": 14_600,
    }


def test_human_readable_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "cost",
                "estimate",
                "--nodes",
                "1",
                "--power-watts",
                "1000",
                "--hours",
                "1",
                "--price-per-kwh",
                "0.25",
                "--currency",
                "EUR",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "1.000 kWh" in text
    assert "0.25 EUR" in text
    assert "total" in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--nodes", "-1", "--power-watts", "1", "--hours", "1", "--price-per-kwh", "1"], "--nodes"),
        (["--nodes", "1", "--power-watts", "nan", "--hours", "1", "--price-per-kwh", "1"], "--power-watts"),
        (
            ["--nodes", "1", "--power-watts", "1", "--hours", "1", "--price-per-kwh", "1", "--lifetime-years", "0"],
            "--lifetime-years",
        ),
        (["--nodes", "1", "--power-watts", "1", "--hours", "1"], "--price-per-kwh"),
        (["--nodes", "1", "--profile", "nope", "--hours", "1"], "--profile"),
        (
            [
                "--nodes",
                "1",
                "--power-watts",
                "1",
                "--hours",
                "1",
                "--price-per-kwh",
                "1",
                "--hardware-price",
                "10",
                "--residual-value",
                "20",
                "--lifetime-years",
                "2",
            ],
            "residual_value",
        ),
    ],
)
def test_invalid_input_names_the_field_without_traceback(argv: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lepton_cli.main", "cost", "estimate", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_estimate_from_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    idle = run_json(capsys, "--nodes", "1", "--profile", "gpu-v100-32gb", "--utilization", "0", "--hours", "10")
    busy = run_json(capsys, "--nodes", "1", "--profile", "gpu-v100-32gb", "--utilization", "1", "--hours", "10")
    assert busy["energy_kwh"] > idle["energy_kwh"] > 0
    assert busy["hardware"] == idle["hardware"] > 0
