"""``lepton simulate`` end to end: the embedded default, generic CSV files, JSON, plot and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lepton_cli.main import main

from .tiny import hourly_price_file

REPO = Path(__file__).resolve().parents[2]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:  # type: ignore[type-arg]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_no_arguments_runs_the_embedded_sample_quickly_on_a_fresh_machine(tmp_path: Path) -> None:
    # A fresh machine: no ../shared next to the working directory (and --data-dir none for the checkout's).
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lepton")), "simulate", "--data-dir", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 60.0
    out = done.stdout
    assert "embedded openb sample: 1,338 jobs on 53 nodes, static lifecycle" in out
    assert "US-CAL-CISO hourly prices from price_US-CAL-CISO_2023_usd_mwh.csv" in out
    for name in ("kube-default", "most-allocated", "trimaran-tlp", "peaks", "lepton"):
        assert name in out
    assert "Lower bound on energy cost" in out
    # Unknown GPU models fall back to the default profile, with a warning.
    assert "no cost profile matches lepton.ai/gpu-model 'G2' (14 nodes); using the default profile 'generic'" in (
        done.stderr
    )


def test_json_holds_every_documented_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plot = tmp_path / "out.png"
    doc = _json(
        capsys,
        ["simulate", "--data-dir", "none", "--limit", "300", "--json", "-", "--plot", str(plot), "--no-progress"],
    )
    assert set(doc["policies"]) == {"kube-default", "most-allocated", "trimaran-tlp", "peaks", "lepton"}
    for result in doc["policies"].values():
        assert set(result["cost"]) == {"hardware", "energy", "operations", "total"}
        assert set(result["wait_s"]) == {"mean", "p95"}
        for key in ("energy_kwh", "carbon_kg", "makespan_s", "jobs_completed", "jobs_unplaced", "vs_baseline"):
            assert key in result
        assert result["jobs_completed"] + result["jobs_unplaced"] == 300
        assert result["energy_kwh"] > 0 and result["carbon_kg"] > 0
    assert doc["policies"]["kube-default"]["vs_baseline"]["total_cost"] == 0.0
    assert "energy_cost" in doc["lower_bound"]
    assert doc["start"] == "2023-06-05T00:00:00+00:00"  # the bundled CAISO week
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generic_csv_autoscaled_with_a_price_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    nodes = tmp_path / "nodes.csv"
    jobs.write_text("submit_s,duration_s,cpu_milli,memory_mib,num_gpu\n0,3600,16000,65536,0\n60,600,8000,1024,1\n")
    nodes.write_text("name,cpu_milli,memory_mib,gpu,gpu_model\ncpu-1,32000,131072,0,\ngpu-1,96000,786432,8,V100M32\n")
    prices = hourly_price_file(tmp_path / "prices.csv", "2023-03-01T00:00:00+00:00", [50.0] * 24)
    doc = _json(
        capsys,
        [
            "simulate",
            "--jobs", str(jobs),
            "--nodes", str(nodes),
            "--tariff", str(prices),
            "--lifecycle", "autoscaled",
            "--policy", "lepton",
            "--policy", "kube-default",
            "--json", "-",
            "--no-progress",
        ],
    )  # fmt: skip
    assert doc["lifecycle"] == "autoscaled"
    assert doc["start"] == "2023-03-01T00:00:00+00:00"
    assert doc["carbon"] is None  # a price file names no zone
    assert list(doc["policies"]) == ["lepton", "kube-default"]
    for result in doc["policies"].values():
        assert result["jobs_completed"] == 2
        assert result["provisions"] >= 2  # every node starts released


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--trace", "openb", "--data-dir", "none"], "--trace openb: no alibaba-openb-2023/ folder found"),
        (["--tariff", "NOWHERE", "--data-dir", "none"], "--tariff: no price file for zone 'NOWHERE'"),
        (["--tariff", "flat:cheap"], "--tariff: flat price is not a number"),
        (["--start", "yesterday", "--data-dir", "none"], "--start: not an ISO-8601 time"),
        (["--jobs", "x.csv"], "--jobs and --nodes go together"),
        (["--data-dir", "/no/such/folder"], "--data-dir: no such folder"),
        (["--lepton-preset", "greedy", "--data-dir", "none"], "preset: unknown preset 'greedy'"),
        (["--lepton-weight", "bogus=1", "--data-dir", "none"], "weights.bogus: unknown weight"),
    ],
)
def test_bad_arguments_are_one_clear_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["simulate", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_malformed_trace_rows_are_reported_with_their_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    nodes = tmp_path / "nodes.csv"
    jobs.write_text("submit_s,duration_s,cpu_milli,memory_mib,num_gpu\n0,10,1000,1024,0\n5,ten,1000,1024,0\n")
    nodes.write_text("name,cpu_milli,memory_mib,gpu,gpu_model\nn,4000,8192,0,\n")
    assert main(["simulate", "--jobs", str(jobs), "--nodes", str(nodes), "--no-progress"]) == 2
    assert f"{jobs}:3: duration_s: not a number: 'ten'" in capsys.readouterr().err


def test_full_openb_trace_replays_from_the_data_folder(capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    doc = _json(
        capsys,
        [
            "simulate", "--trace", "openb:gpuspec33", "--data-dir", str(shared_data), "--limit", "400",
            "--policy", "peaks", "--json", "-", "--no-progress",
        ],
    )  # fmt: skip
    assert doc["nodes"] == 1523 and doc["jobs"] == 400
    assert doc["start"] == "2023-01-01T00:00:00+00:00"  # the full 2023 CAISO year from grid-hourly
    assert doc["policies"]["peaks"]["jobs_unplaced"] == 0
