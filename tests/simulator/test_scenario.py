"""Scenario assembly: nodes meet the shipped cost profiles by their labels; tariffs, carbon and start time."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_core.models.tariff import FlatTariff, HourlySeriesTariff
from lepton_core.profiles import default_profiles
from lepton_simulator.carbon import load_carbon_csv, resolve_carbon_zone
from lepton_simulator.readers import parse_generic_nodes, parse_text
from lepton_simulator.scenario import ScenarioOptions, build_catalog, find_data_dir, load_scenario, resolve_tariff

NODES = (
    "name,cpu_milli,memory_mib,gpu,gpu_model\n"
    "v100,96000,786432,8,V100M32\n"
    "t4,104000,524288,2,T4\n"
    "small,32000,262144,0,\n"
    "large,96000,524288,0,\n"
    "huge,160000,524288,0,\n"
    "secret,96000,393216,8,G2\n"
)


def test_nodes_match_the_shipped_profiles_and_unknown_gpus_fall_back_with_a_warning() -> None:
    nodes = parse_text(parse_generic_nodes, NODES)
    catalog, warnings = build_catalog(nodes, default_profiles(), FlatTariff(0.1))
    assert [p.name for p in catalog.profiles] == [
        "gpu-v100-32gb",
        "gpu-t4",
        "cpu-small",
        "cpu-large",
        "cpu-xlarge",
        "generic",
    ]
    assert warnings == [
        "no cost profile matches lepton.ai/gpu-model 'G2' (1 node); using the default profile 'generic'"
    ]
    # The node's own GPU count drives its power model and hardware price (not the profile's count).
    assert catalog.power_models[1].gpu_count == 2
    assert catalog.hardware[5].purchase_price == pytest.approx(15000 + 8 * 10664)
    # The replay's tariff replaces every profile's.
    assert all(p.tariff.price_per_kwh_at(0.0) == 0.1 for p in catalog.profiles)


def test_profile_tariffs_are_kept_on_request() -> None:
    tariff, description, zone = resolve_tariff("profile", None)
    assert (tariff, zone) == (None, None)
    nodes = parse_text(parse_generic_nodes, NODES)
    catalog, _ = build_catalog(nodes, default_profiles(), tariff)
    assert len(catalog.tariffs) == 1 and catalog.tariffs[0].price_per_kwh_at(0.0) == pytest.approx(0.12)
    assert "own tariff" in description


def test_zone_tariff_falls_back_to_the_bundled_week_without_data() -> None:
    tariff, _, zone = resolve_tariff(None, None)
    assert isinstance(tariff, HourlySeriesTariff)
    assert len(tariff.times) == 168 and tariff.cyclic
    assert zone == ("US-CAL-CISO", None)
    sc = load_scenario(ScenarioOptions(data_dir=Path("none"), limit=10))
    assert sc.carbon is not None and sc.carbon.basis == "LCA"
    assert sc.start_epoch_s == tariff.start


def test_zone_tariff_and_carbon_from_the_data_folder(shared_data: Path) -> None:
    sc = load_scenario(ScenarioOptions(tariff="US-TEX-ERCO:2022", data_dir=shared_data, limit=5))
    assert "price_US-TEX-ERCO_2022_usd_mwh.csv" in sc.tariff_description
    assert sc.carbon is not None and "carbon_US-TEX-ERCO_2022_hourly.csv" in sc.carbon.source
    tariff = sc.catalog.tariffs[0]
    assert isinstance(tariff, HourlySeriesTariff) and len(tariff.times) == 8760
    none = load_scenario(ScenarioOptions(carbon="none", data_dir=shared_data, limit=5))
    assert none.carbon is None


def test_explicit_start_and_no_data_dir() -> None:
    sc = load_scenario(ScenarioOptions(data_dir=Path("none"), start="2023-06-07T12:00:00Z", limit=3))
    assert sc.start_epoch_s == 1686139200.0
    assert find_data_dir(Path("none")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Time,Carbon Intensity gCO₂eq/kWh (LCA)\n", r"c\.csv:1: no 'Datetime \(UTC\)' column"),
        ("Datetime (UTC),Price (USD/MWh)\n", r"c\.csv:1: no 'Carbon Intensity gCO₂eq/kWh \(LCA\)'-style column"),
        (
            "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (direct)\n2023-01-01 00:00,10\n2023-01-01 01:00,-1\n",
            r"c\.csv:3: Carbon Intensity gCO₂eq/kWh \(direct\): must be a non-negative number",
        ),
        (
            "Datetime (UTC),Carbon Intensity gCO2eq/kWh\n2023-01-01 01:00,10\n2023-01-01 00:00,20\n",
            r"c\.csv:3: Datetime \(UTC\): timestamps must increase",
        ),
        (
            "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (LCA)\n",
            r"c\.csv: no 'Carbon Intensity gCO₂eq/kWh \(LCA\)' values",
        ),
    ],
)
def test_bad_carbon_files_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_carbon_csv(path)


def test_carbon_prefers_the_life_cycle_column_and_zone_files_are_found_like_price_files(tmp_path: Path) -> None:
    header = "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA)\n"
    for year in (2022, 2023):
        (tmp_path / f"carbon_XX_{year}_hourly.csv").write_text(header + "2023-01-01 00:00,100,300\n", encoding="utf-8")
    path = resolve_carbon_zone(tmp_path, "XX")
    assert path.name == "carbon_XX_2023_hourly.csv"  # the latest year
    series = load_carbon_csv(path)
    assert series.basis == "LCA" and series.intensity.value_at(0.0) == 300.0
    with pytest.raises(ValueError, match=r"no carbon file for zone 'YY' .* \(zones there: XX\)"):
        resolve_carbon_zone(tmp_path, "YY")
    with pytest.raises(ValueError, match="cannot read carbon series"):
        load_carbon_csv(tmp_path / "missing.csv")
