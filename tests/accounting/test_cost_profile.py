"""``spec.costProfile``: a job's share of its nodes priced with the profile it names, the ledger still exact.

Real wire: the Kubernetes emulator holds the nodes, LeptonJobs and pods; the accounting loop reads them
and writes status, conditions and events over HTTP. No Prometheus: every window is accounted from the
profiles' models on requested resources, so the expected cost is plain arithmetic done here by hand.

What the override means (docs/notes/accounting.md): the job pays the *same share* of the node as if the
node had the named profile's parameters — hardware, operations, power model, PUE, tariff. The node's own
totals, idle cost and other jobs stay on the node's matched profile, and the difference is reported as
re-pricing, so Σ jobs + other + idle = node total + re-pricing exactly.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lepton_core.accounting.amounts import NANO_PER_UNIT
from lepton_core.models.cost import HardwareAmortization, OperationsCost
from lepton_core.models.power import GpuPowerModel, PowerCurve
from lepton_core.models.tariff import FlatTariff
from lepton_core.profiles import CostProfile, ProfileSet
from lepton_core.units import HOURS_PER_YEAR
from lepton_operator.accounting.kube import KubeApi
from lepton_operator.accounting.loop import COST_PROFILE_CONDITION, AccountingLoop
from lepton_operator.accounting.settings import AccountingSettings
from lepton_operator.accounting.status import ledger_from_status
from lepton_operator.metrics import accounting_registry
from tests.accounting import cluster
from tests.kube_emulator.client import KubeClient
from tests.kube_emulator.runner import EmulatorThread

NS = "repricing"
T0 = 1_709_510_400.0
MINUTE = 60.0
YEARS = 4.0


def _profile(name: str, *, watts: tuple[float, float], gpu: tuple[float, float] | None, price: float, pue: float,
             kwh: float, ops: float, node_class: str | None) -> CostProfile:  # fmt: skip
    return CostProfile(
        name=name,
        platform=PowerCurve.linear(*watts),
        gpu=GpuPowerModel(*gpu, 1.0) if gpu else None,
        gpu_count=4 if gpu else 0,
        gpu_model="test" if gpu else None,
        hardware=HardwareAmortization(price, YEARS),
        price_per_gpu=5_000.0 if gpu else 0.0,
        operations=OperationsCost(ops),
        tariff=FlatTariff(kwh),
        pue=pue,
        currency="USD",
        selectors=({"lepton.ai/node-class": node_class},) if node_class else (),
    )


GPU = _profile("gpu", watts=(100.0, 300.0), gpu=(50.0, 250.0), price=20_000.0, pue=1.25, kwh=0.10, ops=3000.0,
               node_class="gpu")  # fmt: skip
CPU = _profile("cpu", watts=(80.0, 240.0), gpu=None, price=8_000.0, pue=1.25, kwh=0.10, ops=1500.0, node_class="cpu")
PREMIUM = _profile("premium", watts=(150.0, 400.0), gpu=(60.0, 300.0), price=60_000.0, pue=1.5, kwh=0.30, ops=9000.0,
                   node_class=None)  # fmt: skip


def profiles() -> ProfileSet:
    return ProfileSet(profiles=(GPU, CPU, PREMIUM), default=CPU, currency="USD")


def rate_per_hour(profile: CostProfile, *, gpus: int, u_cpu: float, u_gpu: float) -> float:
    """A whole node's cost per hour at these utilizations, by hand from the profile's figures."""
    hardware = (profile.hardware.purchase_price + gpus * profile.price_per_gpu) / (YEARS * HOURS_PER_YEAR)
    operations = profile.operations.per_node_year / HOURS_PER_YEAR
    lo, hi = profile.platform.watts[0], profile.platform.watts[-1]
    watts = lo + (hi - lo) * u_cpu
    if gpus:
        assert profile.gpu is not None
        watts += gpus * (profile.gpu.idle_watts + (profile.gpu.max_watts - profile.gpu.idle_watts) * u_gpu)
    energy = watts * profile.pue / 1000.0 * profile.tariff.price_per_kwh_at(T0)
    return hardware + operations + energy


def node_watts(profile: CostProfile, *, gpus: int, u_cpu: float, u_gpu: float) -> float:
    lo, hi = profile.platform.watts[0], profile.platform.watts[-1]
    watts = lo + (hi - lo) * u_cpu
    if gpus and profile.gpu is not None:
        watts += gpus * (profile.gpu.idle_watts + (profile.gpu.max_watts - profile.gpu.idle_watts) * u_gpu)
    return watts * profile.pue


def _condition(kube: KubeClient, name: str) -> dict[str, str]:
    status = kube.get("leptonjobs.lepton.ai", NS, name).get("status") or {}
    return next(c for c in status.get("conditions") or [] if c["type"] == COST_PROFILE_CONDITION)


def _money(kube: KubeClient, name: str) -> tuple[float, float]:
    status = kube.get("leptonjobs.lepton.ai", NS, name).get("status") or {}
    ledger = ledger_from_status(status, AccountingSettings().history)
    return ledger.amounts.total / NANO_PER_UNIT, ledger.amounts.joules


async def test_a_named_profile_prices_the_jobs_share_and_the_ledger_stays_exact(
    kube: KubeClient, kube_emulator: EmulatorThread
) -> None:
    cluster.install(kube, NS)
    cluster.add_node(kube, "gpu-a", cpu=32, gpus=4, node_class="gpu")
    cluster.add_node(kube, "cpu-c", cpu=32, gpus=0, node_class="cpu")
    plan = {  # job: (node, cpu, gpus, costProfile)
        "base": ("gpu-a", 8, 1, None),
        "charged": ("gpu-a", 8, 1, "premium"),
        "mismatch": ("gpu-a", 8, 1, "cpu"),  # a profile without GPUs cannot price a GPU node
        "typo": ("cpu-c", 8, 0, "premum"),
    }
    jobs = {}
    for name, (node_name, cpu, gpus, profile) in plan.items():
        jobs[name] = cluster.add_job(kube, NS, name, cost_profile=profile)
        cluster.start_pod(kube, jobs[name], f"{name}-0", node_name=node_name, cpu=cpu, gpus=gpus, started_at=T0)

    api = KubeApi.for_url(kube_emulator.url)
    settings = AccountingSettings(interval_seconds=MINUTE, min_flush_interval_seconds=0.0)
    loop = AccountingLoop(api, profiles(), settings)
    fix_at, end = T0 + 10 * MINUTE, T0 + 20 * MINUTE
    t = T0
    while t <= end:
        await loop.tick(t)
        await loop.write_due()
        if t == fix_at:
            first = _condition(kube, "typo")
            assert (first["status"], first["reason"]) == ("False", "UnknownCostProfile")
            assert "spec.costProfile" in first["message"] and "'premum'" in first["message"]
            # The user fixes the typo: a window is priced with the spec seen when it is accounted, so every
            # window after this tick is priced with "premium".
            kube.patch("leptonjobs.lepton.ai", NS, "typo", {"spec": {"costProfile": "premium"}})
        t += MINUTE
    await loop.flush_all()

    # --- what each job was charged, by hand: share 1/4 of a node whose allocation is 3/4 (gpu-a) or 1/4
    hours = (end - T0) / 3600.0
    on_gpu = {"gpus": 4, "u_cpu": 24 / 32, "u_gpu": 3 / 4}
    on_cpu = {"gpus": 0, "u_cpu": 8 / 32, "u_gpu": 0.0}
    expected = {
        "base": 0.25 * rate_per_hour(GPU, **on_gpu) * hours,
        "charged": 0.25 * rate_per_hour(PREMIUM, **on_gpu) * hours,
        "mismatch": 0.25 * rate_per_hour(GPU, **on_gpu) * hours,
        "typo": 0.25 * (rate_per_hour(CPU, **on_cpu) + rate_per_hour(PREMIUM, **on_cpu)) * hours / 2,
    }
    # Ledgers hold integers (1e-9 currency units, millijoules): each of 20 windows rounds each component once.
    rounding = 20 * 3 * 0.5e-9
    for name, money in expected.items():
        got, _ = _money(kube, name)
        assert got == pytest.approx(money, rel=1e-9, abs=rounding), name
    _, charged_joules = _money(kube, "charged")
    assert charged_joules == pytest.approx(0.25 * node_watts(PREMIUM, **on_gpu) * (end - T0), abs=20 * 1e-3)

    # --- conditions say what happened, naming the field; one warning event per problem, none when applied
    applied = _condition(kube, "charged")
    assert (applied["status"], applied["reason"]) == ("True", "CostProfileApplied") and "'premium'" in applied[
        "message"
    ]
    mismatch = _condition(kube, "mismatch")
    assert (mismatch["status"], mismatch["reason"]) == ("False", "CostProfileMismatch")
    assert "spec.costProfile" in mismatch["message"] and "gpu-a" in mismatch["message"]
    fixed = _condition(kube, "typo")
    assert (fixed["status"], fixed["reason"]) == ("True", "CostProfileApplied")
    base_conditions = kube.get("leptonjobs.lepton.ai", NS, "base").get("status", {}).get("conditions") or []
    assert all(c["type"] != COST_PROFILE_CONDITION for c in base_conditions)
    reasons = {name: [e["reason"] for e in kube.events(NS, name)] for name in plan}
    assert reasons == {"base": [], "charged": [], "mismatch": ["CostProfileMismatch"], "typo": ["UnknownCostProfile"]}

    # --- node totals stay physical (the node's own profile); the difference is re-pricing, exactly
    totals = loop.view().totals
    node_gpu = float(totals.cost["gpu-a"].sum())
    assert node_gpu == pytest.approx(rate_per_hour(GPU, **on_gpu) * hours, rel=1e-9)
    repriced = float(totals.repricing["gpu-a"].sum())
    assert repriced == pytest.approx(expected["charged"] - 0.25 * rate_per_hour(GPU, **on_gpu) * hours, rel=1e-9)
    on_gpu_jobs = sum(_money(kube, n)[0] for n in ("base", "charged", "mismatch"))
    idle_other = float(totals.idle["gpu-a"].sum() + totals.other["gpu-a"].sum())
    assert on_gpu_jobs + idle_other == pytest.approx(node_gpu + repriced, rel=1e-9, abs=3 * rounding)
    joules = sum(_money(kube, n)[1] for n in ("base", "charged", "mismatch")) + totals.idle_joules["gpu-a"]
    assert joules == pytest.approx(totals.joules["gpu-a"] + totals.repricing_joules["gpu-a"], abs=3 * 20 * 1e-3)

    # --- /metrics: the re-pricing per node, only where a job was re-priced
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(accounting_registry(loop.view)).decode())
    }
    samples = {
        (s.labels["node"], s.labels["component"]): s.value for s in families["lepton_node_repricing_cost"].samples
    }
    assert {node for node, _ in samples} == {"gpu-a", "cpu-c"}
    assert sum(v for (node, _), v in samples.items() if node == "gpu-a") == pytest.approx(repriced, rel=1e-9)

    # --- a restarted operator reads the conditions back: no second event
    again = AccountingLoop(api, profiles(), settings)
    await again.tick(end + MINUTE)
    await again.write_due()
    assert [e["reason"] for e in kube.events(NS, "mismatch")] == ["CostProfileMismatch"]
    await again.close()
    await api.close()


async def test_pods_of_no_job_and_jobs_naming_no_profile_are_priced_as_their_nodes() -> None:
    """The inventory is given (no API call): pods outside any LeptonJob, and a job without spec.costProfile."""
    loop = AccountingLoop(KubeApi.for_url("http://127.0.0.1:9"), profiles(), AccountingSettings(interval_seconds=60))
    node = {"metadata": {"name": "cpu-c", "labels": {"lepton.ai/node-class": "cpu"}, "resourceVersion": "1"},
            "status": {"allocatable": {"cpu": "32"}}}  # fmt: skip
    running = {"phase": "Running", "containerStatuses": [{"state": {"running": {"startedAt": "2024-03-04T00:00:00Z"}}}]}
    container = {"name": "c", "resources": {"requests": {"cpu": "8"}}}
    pod = {"metadata": {"namespace": NS, "name": "loose", "resourceVersion": "2"}, "status": running,
           "spec": {"nodeName": "cpu-c", "containers": [container]}}  # fmt: skip
    for now in (T0 + MINUTE, T0 + 2 * MINUTE):  # the first tick starts the clock (no job to recompute for)
        await loop.account(now, [node], [pod], [])
    totals = loop.view().totals
    assert float(totals.other["cpu-c"].sum()) == pytest.approx(
        0.25 * rate_per_hour(CPU, gpus=0, u_cpu=0.25, u_gpu=0.0) * MINUTE / 3600.0, rel=1e-9
    )
    assert not totals.repricing["cpu-c"].any()
    job = {"metadata": {"namespace": NS, "name": "plain", "uid": "u1", "resourceVersion": "3"}, "spec": {}}
    await loop.account(T0 + 3 * MINUTE, [node], [pod], [job])
    assert loop.jobs["u1"].profile_condition is None and not loop.jobs["u1"].profile_condition_pending
    await loop.kube.close()
