"""Unit constants. Internally Lepton uses SI base units: seconds, watts, joules.

kWh and hours appear only where people read them (display, tariffs quoted per kWh, prices per hour).
"""

from typing import Final

SECONDS_PER_HOUR: Final = 3600.0
HOURS_PER_YEAR: Final = 8760.0
"""A year is 8,760 hours (365 days): the convention used by amortization and per-node-year costs."""
SECONDS_PER_YEAR: Final = HOURS_PER_YEAR * SECONDS_PER_HOUR
JOULES_PER_KWH: Final = 3.6e6
WATTS_PER_KILOWATT: Final = 1000.0


def joules_to_kwh(energy_joules: float) -> float:
    """Joules -> kilowatt-hours, for display."""
    return energy_joules / JOULES_PER_KWH


def kwh_to_joules(energy_kwh: float) -> float:
    """Kilowatt-hours -> joules."""
    return energy_kwh * JOULES_PER_KWH
