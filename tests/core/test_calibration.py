"""The GPU load curve in the shipped profiles is the one the Zeus measurements give (issue 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_core.calibration import ZeusPowerRow, fit_gpu_curve, load_zeus_power_csv
from lepton_core.profiles import default_profiles


def test_fit_recovers_a_known_curve() -> None:
    # Synthetic workloads drawn exactly from P = 30 + (top - 30) u^2: the fit must find k = 2, error 0.
    rows = [
        ZeusPowerRow(("d", "n", str(top), "o"), limit, 10.0 / u, 30 + (top - 30) * u**2)
        for top in (150.0, 250.0)
        for limit, u in ((100, 0.5), (150, 0.8), (200, 1.0))
    ]
    fit = fit_gpu_curve(rows, idle_watts=30.0, tdp_watts=300.0)
    assert fit.exponent == pytest.approx(2.0)
    assert fit.shape_rmse_watts == pytest.approx(0.0, abs=1e-9)
    assert fit.median_top_fraction_of_tdp == pytest.approx(200 / 300)


@pytest.mark.parametrize(
    ("gpu", "idle", "tdp", "profile"), [("v100", 25, 250, "gpu-v100-16gb"), ("a40", 30, 300, "gpu-a10")]
)
def test_default_gpu_curves_match_the_zeus_fit(
    shared_data: Path, gpu: str, idle: float, tdp: float, profile: str
) -> None:
    rows = load_zeus_power_csv(shared_data / "zeus-gpu-power" / f"summary_power_{gpu}.csv")
    fit = fit_gpu_curve(rows, idle_watts=idle, tdp_watts=tdp)
    p = default_profiles().by_name(profile)
    assert p.gpu is not None
    assert p.gpu.exponent == pytest.approx(fit.exponent, abs=0.05)
    # The shipped max is 0.69 x TDP: within 3 % of each GPU's median measured training draw.
    assert fit.median_top_fraction_of_tdp == pytest.approx(0.69, abs=0.03)
    # Documented error of the load-curve shape (docs/models.md): about 10 % mean absolute error.
    assert fit.shape_mape < 0.12
