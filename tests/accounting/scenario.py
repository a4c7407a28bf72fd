"""The scripted accounting scenario: known power, utilization and price series, and jobs on three nodes.

Everything a test needs to compute each job's cost *independently* of Lepton's pipeline: the series are
plain Python (per-minute step functions), the cost profiles are linear, and ``expected_job_cost``
integrates share × (hardware + operations + power × price) by hand, minute by minute. The same series are
written as timestamped samples for a Prometheus backfill (``samples``), shaped like node_exporter, DCGM,
Kepler 0.10+ (gpu-a) and legacy Kepler (gpu-b).

Power and utilization change only on whole minutes, and accounting ticks fall on whole minutes, so a
counter's rate over a tick window is exactly the window's mean power; samples sit 2.5 s off the minute
so no sample lies on a window edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lepton_core.models.cost import HardwareAmortization, OperationsCost
from lepton_core.models.power import GpuPowerModel, PowerCurve
from lepton_core.models.tariff import HourlySeriesTariff
from lepton_core.profiles import CostProfile, ProfileSet
from lepton_core.units import HOURS_PER_YEAR, JOULES_PER_KWH
from tests.prometheus_fixture import OpenMetricsWriter

T0 = 1_709_510_400.0
"""2024-03-04 00:00:00 UTC."""
MINUTE = 60.0
HOUR = 3600.0
PUE = 1.25
PRICES = (0.20, 0.10, 0.25, 0.05, 0.40)
"""USD per kWh for the hours starting at T0 - 1 h, T0, T0 + 1 h, …: the tariff changes every hour."""
SAMPLE_STEP = 5.0
SAMPLE_OFFSET = 2.5


def tariff() -> HourlySeriesTariff:
    return HourlySeriesTariff(tuple(T0 + (h - 1) * HOUR for h in range(len(PRICES))), PRICES, currency="USD")


def price_at(t: float) -> float:
    return PRICES[int((t - (T0 - HOUR)) // HOUR)]


LIFETIME_YEARS = 4.0


def profiles() -> ProfileSet:
    t = tariff()
    gpu = CostProfile(
        name="gpu",
        platform=PowerCurve.linear(100.0, 300.0),
        gpu=GpuPowerModel(50.0, 250.0, 1.0),
        gpu_count=4,
        gpu_model="test",
        hardware=HardwareAmortization(20_000.0, LIFETIME_YEARS),
        price_per_gpu=10_000.0,
        operations=OperationsCost(3000.0),
        tariff=t,
        pue=PUE,
        currency="USD",
        selectors=({"lepton.ai/node-class": "gpu"},),
    )
    cpu = CostProfile(
        name="cpu",
        platform=PowerCurve.linear(80.0, 240.0),
        gpu=None,
        gpu_count=0,
        gpu_model=None,
        hardware=HardwareAmortization(8_000.0, LIFETIME_YEARS),
        price_per_gpu=0.0,
        operations=OperationsCost(1500.0),
        tariff=t,
        pue=PUE,
        currency="USD",
        selectors=({"lepton.ai/node-class": "cpu"},),
    )
    return ProfileSet(profiles=(gpu, cpu), default=cpu, currency="USD")


def fixed_per_hour(node: str) -> float:
    """Hardware + operations per hour, by hand."""
    if node == "cpu-c":
        return 8_000.0 / (LIFETIME_YEARS * HOURS_PER_YEAR) + 1500.0 / HOURS_PER_YEAR
    return (20_000.0 + 4 * 10_000.0) / (LIFETIME_YEARS * HOURS_PER_YEAR) + 3000.0 / HOURS_PER_YEAR


# --- the known series, per minute m (minute 0 starts at T0) --------------------------------------------


def cpu_busy(node: str, m: int) -> float:
    k = {"gpu-a": 1, "gpu-b": 4, "cpu-c": 7}[node]
    return ((m * 7 + k) % 10) / 10.0


def gpu_a_kepler_watts(m: int) -> float:
    """Kepler 0.10+ RAPL package + dram of gpu-a (no GPUs)."""
    return 100.0 + ((m * 37) % 17) * 5.0


def gpu_a_dcgm_watts(m: int, gpu: int) -> float:
    return 60.0 + ((m * 13 + gpu * 7) % 11) * 15.0


def gpu_a_dcgm_util(m: int, gpu: int) -> float:
    return float((m * 11 + gpu * 3) % 101)


def gpu_b_platform_watts(m: int) -> float:
    """Legacy Kepler platform power of gpu-b (GPUs included)."""
    return 600.0 + ((m * 29) % 13) * 20.0


def measured_power(node: str, m: int) -> float:
    """Facility watts the accounting should use for minute m when Prometheus answers."""
    if node == "gpu-a":
        return (gpu_a_kepler_watts(m) + sum(gpu_a_dcgm_watts(m, g) for g in range(4))) * PUE
    if node == "gpu-b":
        return gpu_b_platform_watts(m) * PUE
    return (80.0 + 160.0 * cpu_busy("cpu-c", m)) * PUE  # modelled at measured utilization


def model_power_on_requests(node: str, cpu_alloc: float, gpu_alloc: float) -> float:
    """The linear models at the allocation (requests / allocatable), facility watts."""
    if node == "cpu-c":
        return (80.0 + 160.0 * cpu_alloc) * PUE
    return (100.0 + 200.0 * cpu_alloc + 4 * (50.0 + 200.0 * gpu_alloc)) * PUE


def samples(first_minute: int, last_minute: int, ips: dict[str, str]) -> OpenMetricsWriter:
    """The series as timestamped samples every 5 s (2.5 s off the minute), counters integrated exactly."""
    w = OpenMetricsWriter()
    start = T0 + first_minute * MINUTE
    times = [start + SAMPLE_OFFSET + i * SAMPLE_STEP for i in range(int((last_minute - first_minute) * 12))]

    def minute(t: float) -> int:
        return math.floor((t - T0) / MINUTE)

    def counter(rate_per_minute: Iterable[float]) -> list[tuple[float, float]]:
        rates = list(rate_per_minute)
        out = []
        value = 0.0
        prev = start
        for t in times:
            # Integrate the per-minute step function from prev to t.
            while prev < t:
                m = minute(prev)
                edge = min(t, T0 + (m + 1) * MINUTE)
                value += rates[m - first_minute] * (edge - prev)
                prev = edge
            out.append((t, value))
        return out

    minutes = range(first_minute, last_minute)
    for node in ("gpu-a", "gpu-b", "cpu-c"):
        for cpu in range(2):
            labels = {"instance": f"{ips[node]}:9100", "cpu": str(cpu)}
            w.add(
                "node_cpu_seconds_total",
                "counter",
                {**labels, "mode": "idle"},
                counter(1.0 - cpu_busy(node, m) for m in minutes),
            )
            w.add(
                "node_cpu_seconds_total",
                "counter",
                {**labels, "mode": "user"},
                counter(cpu_busy(node, m) for m in minutes),
            )
    # gpu-a: Kepler 0.10+ (package 80 %, dram 20 %; the core zone sits inside package) and DCGM.
    w.add(
        "kepler_node_cpu_joules_total",
        "counter",
        {"node_name": "gpu-a", "zone": "package"},
        counter(0.8 * gpu_a_kepler_watts(m) for m in minutes),
    )
    w.add(
        "kepler_node_cpu_joules_total",
        "counter",
        {"node_name": "gpu-a", "zone": "dram"},
        counter(0.2 * gpu_a_kepler_watts(m) for m in minutes),
    )
    w.add(
        "kepler_node_cpu_joules_total",
        "counter",
        {"node_name": "gpu-a", "zone": "core"},
        counter(0.5 * gpu_a_kepler_watts(m) for m in minutes),
    )
    for g in range(4):
        labels = {"Hostname": "gpu-a", "gpu": str(g), "UUID": f"GPU-a-{g}"}
        w.add("DCGM_FI_DEV_POWER_USAGE", "gauge", labels, ((t, gpu_a_dcgm_watts(minute(t), g)) for t in times))
        w.add("DCGM_FI_DEV_GPU_UTIL", "gauge", labels, ((t, gpu_a_dcgm_util(minute(t), g)) for t in times))
    # gpu-b: legacy Kepler, platform energy split by mode, identified by `instance`.
    for mode, part in (("idle", 0.35), ("dynamic", 0.65)):
        w.add(
            "kepler_node_platform_joules_total",
            "counter",
            {"instance": "gpu-b:9102", "mode": mode},
            counter(part * gpu_b_platform_watts(m) for m in minutes),
        )
    return w


# --- jobs --------------------------------------------------------------------------------------------


@dataclass
class PodPlan:
    name: str
    node: str
    cpu: float
    gpus: float
    start: float
    end: float = math.inf
    created: bool = False
    finished: bool = False

    def share(self) -> float:
        allocatable_gpus = 0.0 if self.node == "cpu-c" else 4.0
        cpu_share = self.cpu / 32.0
        gpu_share = self.gpus / allocatable_gpus if allocatable_gpus else (1.0 if self.gpus else 0.0)
        return min(1.0, max(cpu_share, gpu_share))


@dataclass
class JobPlan:
    name: str
    pods: list[PodPlan]
    budget: dict[str, object] | None = None
    expected_duration_seconds: int | None = None
    uid: str = ""
    created: bool = False
    first_start: float = field(init=False)

    def __post_init__(self) -> None:
        self.first_start = min(p.start for p in self.pods)


def jobs() -> list[JobPlan]:
    return [
        JobPlan("alpha", [PodPlan("alpha-0", "gpu-a", 4, 2, T0 + 197.25, T0 + 7805.5)]),
        JobPlan("beta", [PodPlan("beta-0", "gpu-a", 8, 2, T0 + 2400.0)], expected_duration_seconds=3 * 3600),
        JobPlan("gamma", [PodPlan("gamma-0", "gpu-b", 2, 1, T0 + 630.5, T0 + 4845.125)]),
        JobPlan("delta", [PodPlan("delta-0", "cpu-c", 8, 0, T0 + 300.0)]),
        JobPlan(
            "multi",
            [
                PodPlan("multi-0", "cpu-c", 16, 0, T0 + 1200.75, T0 + 9000.0),
                PodPlan("multi-1", "gpu-b", 8, 0, T0 + 1210.0, T0 + 9000.0),
            ],
        ),
        JobPlan("epsilon", [PodPlan("epsilon-0", "gpu-b", 4, 2, T0 + 5430.0, T0 + 10_200.0)]),
        JobPlan(
            "notify", [PodPlan("notify-0", "cpu-c", 4, 0, T0 + 600.0)], budget={"maxCost": 0.05, "action": "notify"}
        ),
        JobPlan(
            "stopper", [PodPlan("stopper-0", "gpu-b", 2, 1, T0 + 900.0)], budget={"maxEnergyKWh": 0.2, "action": "stop"}
        ),
        JobPlan(
            "suspender",
            [PodPlan("suspender-0", "cpu-c", 4, 0, T0 + 1500.0)],
            budget={"maxCost": 0.02, "action": "suspend"},
        ),
    ]


@dataclass(frozen=True)
class Outage:
    start: float
    end: float
    """Windows ending in (start, end] are accounted without Prometheus."""

    def covers(self, window_end: float) -> bool:
        return self.start < window_end <= self.end


def _alloc_integral(pods: Sequence[PodPlan], node: str, a: float, b: float) -> tuple[float, float]:
    """∫ requested cpu and gpus on ``node`` over [a, b] (pod-seconds)."""
    cpu = gpu = 0.0
    for p in pods:
        if p.node != node:
            continue
        lo, hi = max(a, p.start), min(b, p.end)
        if hi > lo:
            cpu += p.cpu * (hi - lo)
            gpu += p.gpus * (hi - lo)
    return cpu, gpu


def window_power(node: str, a: float, b: float, all_pods: Sequence[PodPlan], outage: Outage | None) -> float:
    """Facility watts for the window [a, b] (one whole minute)."""
    if outage is not None and outage.covers(b):
        cpu, gpu = _alloc_integral(all_pods, node, a, b)
        cpu_alloc = min(1.0, cpu / (b - a) / 32.0)
        gpu_alloc = 0.0 if node == "cpu-c" else min(1.0, gpu / (b - a) / 4.0)
        return model_power_on_requests(node, cpu_alloc, gpu_alloc)
    return measured_power(node, math.floor((a - T0) / MINUTE))


def expected_job_cost(
    job: JobPlan, all_pods: Sequence[PodPlan], until: float, outage: Outage | None
) -> tuple[float, float]:
    """(money, joules) the job should have been charged up to ``until``: by hand, minute by minute."""
    money = joules = 0.0
    for p in job.pods:
        end = min(p.end, until)
        t = p.start
        while t < end:
            m = math.floor((t - T0) / MINUTE)
            a, b = T0 + m * MINUTE, T0 + (m + 1) * MINUTE
            seg = min(b, end) - t
            watts = window_power(p.node, a, b, all_pods, outage)
            share = p.share()
            money += share * seg * (fixed_per_hour(p.node) / HOUR + watts * price_at(t) / JOULES_PER_KWH)
            joules += share * seg * watts
            t = min(b, end)
    return money, joules


def expected_node_cost(
    node: str, start: float, end: float, all_pods: Sequence[PodPlan], outage: Outage | None
) -> float:
    money = 0.0
    t = start
    while t < end:
        m = math.floor((t - T0) / MINUTE)
        a, b = T0 + m * MINUTE, T0 + (m + 1) * MINUTE
        seg = min(b, end) - t
        watts = window_power(node, a, b, all_pods, outage)
        money += seg * (fixed_per_hour(node) / HOUR + watts * price_at(t) / JOULES_PER_KWH)
        t = min(b, end)
    return money
