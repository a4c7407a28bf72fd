"""Energy = power × time, integrated exactly for piecewise-constant power samples.

A power sample taken at ``t_i`` is taken to hold until the next sample ``t_{i+1}`` (the last one until
``end``): that is what a Prometheus gauge or a rate over a scrape interval means. Energy is kept in
joules; kWh appears only for display and tariffs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lepton_core.units import JOULES_PER_KWH, SECONDS_PER_HOUR


def energy_joules(
    times: Sequence[float], power_watts: Sequence[float], end: float, start: float | None = None
) -> float:
    """∫ P dt over [start, end] for samples (times[i], power_watts[i]) held until the next sample.

    ``start`` defaults to the first sample time; it may not precede it (power before the first sample
    is unknown).
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(power_watts, dtype=np.float64)
    if t.size == 0 or t.shape != p.shape:
        raise ValueError("need one power value per sample time, and at least one sample")
    if np.any(np.diff(t) <= 0.0):
        raise ValueError("sample times must be strictly increasing")
    if np.any(~np.isfinite(p)) or np.any(p < 0.0):
        raise ValueError("power must be a finite, non-negative number of watts")
    t0 = float(t[0]) if start is None else start
    if t0 < t[0]:
        raise ValueError("the window starts before the first power sample: power there is unknown")
    if end < t0:
        raise ValueError("the window ends before it starts")
    seg_start = np.clip(t, t0, end)
    seg_end = np.clip(np.append(t[1:], end), t0, end)
    return float(np.sum(p * (seg_end - seg_start)))


def energy_from_constant_power(power_watts: float, seconds: float) -> float:
    """Joules drawn by a constant load: the founding document's energy = power × time."""
    if power_watts < 0.0 or seconds < 0.0:
        raise ValueError("power and duration must not be negative")
    return power_watts * seconds


def energy_kwh_from_compute(tflops: float, hours: float, kwh_per_tflops_hour: float) -> float:
    """Energy of a compute budget expressed as TFLOPS sustained for some hours (founding document, §1)."""
    return tflops * hours * kwh_per_tflops_hour


def kwh_for(power_watts: float, hours: float) -> float:
    """kWh for a constant power over some hours (500 W for 8 h -> 4 kWh)."""
    return energy_from_constant_power(power_watts, hours * SECONDS_PER_HOUR) / JOULES_PER_KWH
