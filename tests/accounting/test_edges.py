"""The edges where raw data enters: Prometheus answers, Kubernetes objects, stored status, settings.

Fuzzed (hypothesis): any bytes or JSON from Prometheus either parse or raise ``PrometheusError``; any
object from the API either parses or raises ``ValueError`` naming the field, never a crash that would
stop the accounting of every other job. Stored status round-trips exactly, and a month of history
written and read back through the status stays bounded and equal to the ledger.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_core.accounting.amounts import NANO_PER_UNIT, Amounts
from lepton_core.accounting.budget import Budget, BudgetAction, check_budget, cost_to_complete
from lepton_core.accounting.history import HistoryPolicy
from lepton_core.accounting.ledger import Increment, new_ledger
from lepton_core.kube import Resources
from lepton_core.kube.fields import non_negative_quantity
from lepton_core.kube.objects import read_node, read_pod
from lepton_core.telemetry.identity import NodeIdentity, RelabelRule
from lepton_core.telemetry.prometheus import PrometheusError, parse_query_response
from lepton_core.telemetry.promql import MetricVariant, promql_duration
from lepton_operator.accounting.inventory import format_time, parse_job, parse_node, parse_pod, parse_time
from lepton_operator.accounting.service import settings_from_options
from lepton_operator.accounting.status import ledger_from_status, status_patch

_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _dumps(doc: Any) -> bytes:
    # orjson refuses NaN/Inf; Prometheus never sends them as JSON numbers either (it quotes them).
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


@st.composite
def _prometheus_like(draw: st.DrawFn) -> Any:
    """Documents near the real shape, so the fuzzer reaches deep into the parser."""
    value = st.lists(st.one_of(st.floats(), st.text(max_size=6), st.integers(-(2**53), 2**53), st.none()), max_size=3)
    series = st.fixed_dictionaries(
        {},
        optional={
            "metric": st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers(0, 9), max_size=3),
            "value": value,
            "values": st.lists(value, max_size=3),
        },
    )
    return {
        "status": draw(st.sampled_from(["success", "error", "weird", None])),
        "data": {
            "resultType": draw(st.sampled_from(["vector", "matrix", "scalar", "string", 3])),
            "result": draw(st.lists(series, max_size=3) | value | _json),
        },
        "errorType": "bad_data",
        "error": draw(st.text(max_size=10)),
    }


@settings(max_examples=300)
@given(st.binary(max_size=200) | _json.map(_dumps) | _prometheus_like().map(_dumps))
def test_any_prometheus_answer_parses_or_raises_prometheus_error(body: bytes) -> None:
    try:
        data = parse_query_response(body)
    except PrometheusError:
        return
    assert data.result_type in ("vector", "matrix", "scalar")
    for s in data.samples:
        assert isinstance(s.value, float) and isinstance(s.time, float)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in s.labels.items())


def test_a_prometheus_error_answer_names_its_type() -> None:
    with pytest.raises(PrometheusError, match="bad_data: parse error"):
        parse_query_response(b'{"status":"error","errorType":"bad_data","error":"parse error"}')
    data = parse_query_response(
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1.5,"NaN"]}]}}'
    )
    assert math.isnan(data.samples[0].value)  # the fetcher drops it: NaN is "no data", never a number


@settings(max_examples=300)
@given(_json)
def test_any_kubernetes_object_parses_or_raises_value_error(obj: Any) -> None:
    for parse in (lambda o: parse_pod(o, {}), parse_job, parse_node):
        try:
            parse(obj if isinstance(obj, dict) else {"metadata": obj})
        except ValueError:
            pass
        except (AttributeError, TypeError) as exc:  # pragma: no cover - the failure being hunted
            pytest.fail(f"crashed on {obj!r}: {exc!r}")


def _pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "p", "labels": {"lepton.ai/job-name": "j"}},
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1500m", "memory": "2Gi", "nvidia.com/gpu": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": "0.5"}}},
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "4"}}}],
        },
        "status": status,
    }


def test_pods_are_charged_from_their_containers_start_to_their_finish() -> None:
    jobs = {"uid-1": ("ns", "j")}
    running = parse_pod(
        _pod(
            phase="Running",
            startTime="2024-03-04T00:00:00Z",
            containerStatuses=[{"state": {"running": {"startedAt": "2024-03-04T00:00:05.250Z"}}}],
        ),
        jobs,
    )
    assert running is not None
    assert running.start_s == parse_time("2024-03-04T00:00:05.250Z", "t")
    assert math.isinf(running.end_s)
    assert running.requests == Resources(4.0, 2 * 2**30, 1.0)  # init max wins
    assert running.job_uid == "uid-1"  # through the label when there is no owner reference
    done = parse_pod(
        _pod(
            phase="Succeeded",
            containerStatuses=[
                {
                    "state": {
                        "terminated": {"startedAt": "2024-03-04T00:00:05Z", "finishedAt": "2024-03-04T01:00:00.500Z"}
                    }
                }
            ],
        ),
        jobs,
    )
    assert done is not None and done.end_s - done.start_s == pytest.approx(3595.5)
    assert parse_pod(_pod(phase="Pending"), jobs) is None  # not started: nothing to charge
    bad = _pod(phase="Running", startTime="2024-03-04T00:00:00Z")
    bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    with pytest.raises(ValueError, match=r"pod ns/p: spec.containers\[0\].resources.requests.cpu"):
        parse_pod(bad, jobs)


GIB = 2**30
MIB = 2**20


def _running(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "p", "uid": "u-p"},
        "spec": {"nodeName": "n1", **spec},
        "status": {"phase": "Running", "startTime": "2024-03-04T00:00:00Z"},
    }


def _container(name: str, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Any:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v is not None}
    return {"name": name, "resources": resources}


_SIDECAR = {**_container("proxy", {"cpu": "1", "memory": "256Mi"}), "restartPolicy": "Always"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(  # the init container needs more CPU than the containers: the pod reserves it
            {
                "containers": [_container("main", {"cpu": "2", "memory": "1Gi"})],
                "initContainers": [_container("setup", {"cpu": "3", "memory": "512Mi"})],
            },
            Resources(3.0, GIB, 0.0),
            id="init-container",
        ),
        pytest.param(  # a sidecar runs beside the containers and beside every init container after it
            {
                "containers": [_container("main", {"cpu": "2", "memory": "1Gi"})],
                "initContainers": [_SIDECAR, _container("migrate", {"cpu": "2.5"})],
            },
            Resources(3.5, GIB + 256 * MIB, 0.0),
            id="sidecar",
        ),
        pytest.param(  # the RuntimeClass's overhead is added on top
            {
                "containers": [_container("main", {"cpu": "2", "memory": "1Gi"})],
                "overhead": {"cpu": "250m", "memory": "128Mi"},
            },
            Resources(2.25, GIB + 128 * MIB, 0.0),
            id="overhead",
        ),
        pytest.param(  # a missing request defaults to the limit (GPUs are usually given as limits only)
            {"containers": [_container("main", {"cpu": "1"}, {"cpu": "4", "memory": "2Gi", "nvidia.com/gpu": "2"})]},
            Resources(1.0, 2 * GIB, 2.0),
            id="limits-only",
        ),
        pytest.param(
            {
                "containers": [
                    _container("main", {"cpu": "1", "memory": "1Gi"}, {"nvidia.com/gpu": "2"}),
                    _container("logger", None, {"cpu": "2", "memory": "2Gi"}),
                ],
                "initContainers": [
                    _container("setup", {"cpu": "4"}),
                    _SIDECAR,
                    _container("warmup", {"cpu": "4.5"}),
                ],
                "overhead": {"cpu": "250m", "memory": "128Mi"},
            },
            Resources(5.75, 3 * GIB + 384 * MIB, 2.0),  # accounting used to charge (4.5 CPU, 1 GiB, no GPU)
            id="all-together",
        ),
    ],
)
def test_accounting_charges_a_pod_for_what_the_scheduler_places_it_by(
    spec: dict[str, Any], expected: Resources
) -> None:
    pod = _running(spec)
    charged = parse_pod(pod, {})
    assert charged is not None
    assert charged.requests == read_pod(pod).requests  # the extender's view of the same object
    assert charged.requests.cpu_cores == pytest.approx(expected.cpu_cores)
    assert (charged.requests.memory_bytes, charged.requests.gpus) == (expected.memory_bytes, expected.gpus)


def test_accounting_prices_a_node_by_the_allocatable_the_scheduler_sees() -> None:
    node = {
        "metadata": {"name": "n1", "labels": {"node.kubernetes.io/instance-type": "mi300x"}},
        "status": {"capacity": {"cpu": "96", "memory": "1Ti", "amd.com/gpu": "8"}},  # no allocatable: capacity
    }
    info = parse_node(node)
    assert info.allocatable == read_node(node).allocatable == Resources(96.0, 2.0**40, 8.0)
    assert info.instance_type == "mi300x"
    bad = {"metadata": {"name": "n2"}, "status": {"allocatable": {"cpu": "lots"}}}
    with pytest.raises(ValueError, match=r"node n2: status.allocatable.cpu: not a quantity"):
        parse_node(bad)


def test_job_budgets_are_validated_naming_the_field() -> None:
    base = {"metadata": {"namespace": "ns", "name": "j", "uid": "u"}, "spec": {}}
    with pytest.raises(ValueError, match=r"spec.budget.action: expected notify, suspend or stop"):
        parse_job({**base, "spec": {"budget": {"maxCost": 1, "action": "explode"}}})
    with pytest.raises(ValueError, match=r"spec.budget.maxCost: expected a non-negative number"):
        parse_job({**base, "spec": {"budget": {"maxCost": -1}}})
    job = parse_job({**base, "spec": {"budget": {"maxEnergyKWh": 2.5, "action": "suspend"}}})
    assert job.budget == Budget(None, 2.5, BudgetAction.SUSPEND)


def test_quantities_and_times() -> None:
    # Accounting reads quantities through the shared field reader: every error names the field.
    assert non_negative_quantity("500m", "x") == 0.5
    assert non_negative_quantity("16Gi", "x") == 16 * 2**30
    assert non_negative_quantity("1e3", "x") == 1000.0
    assert non_negative_quantity(2, "x") == 2.0
    for bad in ("-1", "1.5.5", "Gi", True, None, "9" * 80, "1e999"):
        with pytest.raises(ValueError, match="x: "):
            non_negative_quantity(bad, "x")
    t = 1_709_510_400.125
    assert parse_time(format_time(t), "t") == t


def test_budget_verdicts_and_cost_to_complete() -> None:
    budget = Budget(max_cost=10.0, max_energy_kwh=5.0, action=BudgetAction.STOP)
    assert not check_budget(budget, 10.0, 5.0, "EUR").exceeded  # spending exactly the budget is within it
    over = check_budget(budget, 10.01, 6.0, "EUR")
    assert over.exceeded and over.reason == "CostBudgetExceeded"
    assert "cost 10.01 EUR passed spec.budget.maxCost 10 EUR" in over.message
    assert "energy 6.000 kWh passed spec.budget.maxEnergyKWh 5 kWh" in over.message
    assert over.message.endswith("(action: stop)")
    assert cost_to_complete(None, 100.0, 5.0) is None
    assert cost_to_complete(7200.0, 3600.0, 5.0) == pytest.approx(5.0)
    assert cost_to_complete(3600.0, 7200.0, 5.0) == 0.0  # past its expected duration


def test_status_round_trips_exactly_and_rebuilds_from_floats() -> None:
    policy = HistoryPolicy()
    ledger = new_ledger(policy).settle(
        [
            Increment(1_000, 61_000, Amounts.of(0.1, 0.2, 0.3, 1234.5), 60_000, estimated=True),
            Increment(61_000, 121_000, Amounts.of(0.1, 0.2, 0.3, 1234.5), 60_000),
        ]
    )
    patch = status_patch(ledger, currency="EUR", per_hour=1.5, to_complete=None)
    status = orjson.loads(orjson.dumps(patch))  # what the API server stores
    assert status["cost"]["total"] == pytest.approx(1.2)
    assert status["cost"]["toComplete"] is None
    assert status["energy"]["averageWatts"] == pytest.approx(2469.0 / 120.0)
    back = ledger_from_status(status, policy)
    assert back.amounts == ledger.amounts
    assert back.observed_at_ms == 121_000
    assert back.estimated_ms == 60_000 and back.active_ms == 120_000
    assert back.history.total() == back.amounts
    # A status written by hand (or by an older version): floats only, still exact to the nano-unit.
    by_hand = {
        "cost": {"hardware": 1.5, "energy": 0.25, "operations": 0, "observedAt": "2024-03-04T00:00:00Z"},
        "energy": {"joules": 10.0},
    }
    rebuilt = ledger_from_status(by_hand, policy)
    assert rebuilt.amounts == Amounts(1_500_000_000, 250_000_000, 0, 10_000)
    assert rebuilt.history.total() == rebuilt.amounts
    with pytest.raises(ValueError, match=r"status.cost.observedAt"):
        ledger_from_status({"cost": {"observedAt": "yesterday"}}, policy)
    with pytest.raises(ValueError, match=r"status.cost.history.total"):
        ledger_from_status(
            {"cost": {"observedAt": "2024-03-04T00:00:00Z", "history": {"version": 1, "total": [1]}}}, policy
        )


def test_a_month_written_to_status_every_ten_minutes_stays_bounded_and_exact() -> None:
    policy = HistoryPolicy()
    status: dict[str, Any] = {}
    total = Amounts()
    step = 60_000
    month = 30 * 86_400_000
    batch: list[Increment] = []
    biggest = 0
    for t in range(0, month, step):
        inc = Increment(t, t + step, Amounts(1_234_567 + t % 7, 7_654_321, 55_555, 60_000_000 + t % 13), step)
        total = total + inc.amounts
        batch.append(inc)
        if len(batch) == 10:  # one status write per ten windows, as the rate limit would have it
            ledger = ledger_from_status(status, policy).settle(batch)
            status = orjson.loads(orjson.dumps(status_patch(ledger, currency="USD", per_hour=0.0, to_complete=None)))
            biggest = max(biggest, len(status["cost"]["history"]["buckets"]))
            batch = []
    final = ledger_from_status(status, policy)
    assert final.amounts == total
    assert final.history.total() == total
    assert biggest <= policy.max_buckets
    assert status["cost"]["total"] == pytest.approx(total.total / NANO_PER_UNIT)
    assert status["cost"]["history"]["windows"] == month // step
    assert status["cost"]["history"]["compressionRatio"] > 300
    assert len(orjson.dumps(status)) < 16_000  # a month of history costs a few kB of etcd


def test_node_identity_is_explicit() -> None:
    identity = NodeIdentity(rules=(RelabelRule(r"(.+)\.cluster\.local:\d+", "$1"), RelabelRule(r"(.+):\d+")))
    known = identity.with_nodes({"node-a": ["10.0.0.7", "node-a.example"], "node-b": []})
    assert known.resolve("10.0.0.7:9100") == "node-a"  # node_exporter: InternalIP:port
    assert known.resolve("node-b.cluster.local:9102") == "node-b"  # legacy Kepler instance
    assert known.resolve("node-a.example") == "node-a"
    assert known.resolve("10.9.9.9:9100") is None  # not a node we know: reported, never guessed
    assert identity.resolve("anything:1") == "anything"  # without a node list, rules alone decide
    with pytest.raises(ValueError, match="relabel regex"):
        RelabelRule("(")


def test_metric_variants_and_durations_are_validated() -> None:
    with pytest.raises(ValueError, match="metric: 'bad name'"):
        MetricVariant("bad name")
    with pytest.raises(ValueError, match="node_label"):
        MetricVariant("ok", node_label="not-a-label")
    with pytest.raises(ValueError, match="without braces"):
        MetricVariant("ok", matchers="{a='b'}")
    assert promql_duration(30) == "30s"
    assert promql_duration(1.5) == "1500ms"
    with pytest.raises(ValueError, match="positive"):
        promql_duration(0)


def test_flags_become_settings_or_a_clear_error() -> None:
    s = settings_from_options(
        {
            "prometheus_url": "http://prom:9090",
            "accounting_interval": 15,
            "prometheus_node_relabel": [r"(.+)\.internal=$1"],
            "attribution": "measured-usage",
        }
    )
    assert s.interval_seconds == 15 and s.prometheus is not None
    assert s.prometheus.identity.resolve("n1.internal") == "n1"
    assert s.prometheus.sources.pod_cpu is not None
    assert settings_from_options({}).prometheus is None
    with pytest.raises(ValueError, match="--prometheus-node-relabel: expected REGEX=REPLACEMENT"):
        settings_from_options({"prometheus_node_relabel": ["oops"]})
