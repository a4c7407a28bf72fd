"""Cost profiles: shipped defaults, matching, and errors that name the field (issue 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lepton_core.profiles import ProfileError, build_profile_set, default_profiles, load_profile_set

MINIMAL = {
    "profiles": [
        {
            "name": "a",
            "platform": {"curve": [[0, 100], [1, 300]]},
            "hardware": {"purchasePrice": 8760, "lifetimeYears": 1},
        }
    ]
}


def test_defaults_load_and_match_by_gpu_labels() -> None:
    profiles = default_profiles()
    v100 = profiles.resolve({"nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB"})
    assert v100.matched
    assert v100.profile.name == "gpu-v100-32gb"
    assert profiles.resolve({"lepton.ai/gpu-model": "T4"}).profile.name == "gpu-t4"
    fallback = profiles.resolve({"kubernetes.io/hostname": "x"})
    assert not fallback.matched
    assert fallback.profile is profiles.default
    # The fallback still prices a GPU node from its allocatable GPU count.
    assert fallback.profile.power_model(gpu_count=4).max_watts > fallback.profile.power_model(0).max_watts


def test_every_default_profile_is_internally_consistent() -> None:
    for p in default_profiles().profiles:
        model = p.power_model()
        assert 0 < model.idle_watts < model.max_watts
        fixed = p.fixed_cost_per_hour()
        assert fixed.hardware > 0
        assert fixed.operations > 0
        assert p.currency == "USD"


def test_more_specific_selector_wins() -> None:
    doc = {
        "profiles": [
            {**MINIMAL["profiles"][0], "name": "broad", "match": [{"labels": {"zone": "*"}}]},
            {**MINIMAL["profiles"][0], "name": "narrow", "match": [{"labels": {"zone": "*", "gpu": "A100"}}]},
        ]
    }
    ps = build_profile_set(doc)
    assert ps.resolve({"zone": "z1", "gpu": "A100"}).profile.name == "narrow"
    assert ps.resolve({"zone": "z1"}).profile.name == "broad"


def test_time_of_use_and_named_tariffs() -> None:
    doc = {
        "currency": "EUR",
        "tariffs": {
            "night": {
                "timeOfUse": {
                    "periods": [{"start": "00:00", "pricePerKWh": 0.1}, {"start": "07:00", "pricePerKWh": 0.3}]
                }
            }
        },
        "profiles": [{**MINIMAL["profiles"][0], "tariff": "night"}],
    }
    p = build_profile_set(doc).profiles[0]
    assert p.tariff.currency == "EUR"
    assert p.tariff.energy_cost(0, 86400, 1000) == pytest.approx(7 * 0.1 + 17 * 0.3)
    assert p.fixed_cost_per_hour().hardware == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["profiles"][0]["hardware"].update(purchasePrice=-5), "profiles[0].hardware.purchasePrice"),
        (lambda d: d["profiles"][0].update(pue=0.5), "profiles[0].pue"),
        (lambda d: d["profiles"][0].update(gpu={"idleWatts": 50, "maxWatts": 10}), "profiles[0].gpu"),
        (lambda d: d["profiles"][0]["platform"].update(curve=[[0, 300], [1, 100]]), "profiles[0].platform"),
        (lambda d: d["profiles"][0].update(tariff="missing"), "profiles[0].tariff"),
        (lambda d: d["profiles"][0].update(colour="red"), "profiles[0]"),
        (lambda d: d.update(defaultProfile="nope"), "defaultProfile"),
        (lambda d: d.update(currency="dollars"), "currency"),
        (lambda d: d["profiles"].append(dict(d["profiles"][0])), "profiles[1].name"),
        (
            lambda d: d["profiles"][0].update(
                tariff={"timeOfUse": {"periods": [{"start": "25:00", "pricePerKWh": 1}]}}
            ),
            "profiles[0].tariff",
        ),
    ],
)
def test_invalid_profiles_name_the_field(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(yaml.safe_dump(MINIMAL))
    mutate(doc)
    with pytest.raises(ProfileError) as err:
        build_profile_set(doc)
    assert field in str(err.value)


def test_cli_reports_invalid_profile_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "profiles.yaml"
    bad.write_text(
        "profiles:\n  - name: x\n    platform: {curve: [[0, 1], [1, 2]]}\n    hardware: {purchasePrice: oops}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "lepton_cli.main", "cost", "profiles", "--profiles", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "profiles[0].hardware.purchasePrice" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "lepton_cli.main", "cost", "profiles", "--profiles", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "nope.yaml" in missing.stderr


def test_relative_price_file_resolves_next_to_the_profile_file(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("Datetime (UTC),Price (EUR/kWh)\n2023-01-01T00:00:00Z,0.5\n")
    doc = {**MINIMAL, "profiles": [{**MINIMAL["profiles"][0], "tariff": {"hourly": {"file": "prices.csv"}}}]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    tariff = load_profile_set(path).profiles[0].tariff
    assert tariff.currency == "EUR"
    assert tariff.price_per_kwh_at(1672531200.0) == 0.5
