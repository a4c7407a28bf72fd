"""deploy/monitoring: the rules pass ``promtool check rules`` and their unit tests; the scrape setup fits.

The PrometheusRule is the one source of the rules; its ``spec`` (plain Prometheus rule groups) is written
to a file for promtool. The unit tests in tests/deploy/rules/*.test.yaml feed series shaped like the
operator's and the extender's (two operator replicas where HA matters) and check the recording rules'
values and when each alert fires. Every metric a rule reads is one Lepton exports (``metrics_names``), one
its rules record, or one the operator is expected to add (``series.PROPOSED_METRICS``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deploy.conftest import DEPLOY, Manifest, by_kind, labels_match, one, pod_templates, render
from tests.deploy.series import PROPOSED_METRICS, exported_series, metric_names_in, promtool, rule_groups

RULE_TESTS = Path(__file__).parent / "rules"


def _write_rules(directory: Path) -> Path:
    path = directory / "lepton.rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
    return path


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(_write_rules(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    _write_rules(tmp_path)
    tests = sorted(RULE_TESTS.glob("*.test.yaml"))
    assert tests
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    done = subprocess.run(
        [promtool(), "test", "rules", *(t.name for t in tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_and_documented() -> None:
    alerts = {r["alert"]: r for g in rule_groups()["groups"] for r in g["rules"] if "alert" in r}
    tested = {
        case["alertname"]
        for test in RULE_TESTS.glob("*.test.yaml")
        for group in yaml.safe_load(test.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(alerts) <= tested, f"alerts never shown firing in a unit test: {sorted(set(alerts) - tested)}"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40, name


def test_rules_read_only_series_that_exist() -> None:
    groups = rule_groups()["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = exported_series() | recorded | PROPOSED_METRICS
    for group in groups:
        for rule in group["rules"]:
            unknown = metric_names_in(rule["expr"]) - known
            assert not unknown, f"{rule.get('record') or rule.get('alert')} reads unknown series {unknown}"
    still_proposed = PROPOSED_METRICS & exported_series()
    assert not still_proposed, f"now exported, drop from PROPOSED_METRICS: {still_proposed}"


def test_servicemonitors_select_the_services_and_their_ports() -> None:
    manifests = render(DEPLOY / "overlays" / "production")
    services = by_kind(manifests, "Service")
    monitors = by_kind(manifests, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"lepton-operator", "lepton-extender"}
    for monitor in monitors:
        selected = [
            s for s in services if labels_match(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(selected) == 1, monitor["metadata"]["name"]
        assert selected[0]["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
        ports = {p["name"] for p in selected[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"
    # The operator's series carry the LeptonJob's own namespace/job labels; they must win over the target's.
    operator = one(monitors, "ServiceMonitor", "lepton-operator")
    assert all(e.get("honorLabels") is True for e in operator["spec"]["endpoints"])


def test_pods_carry_scrape_annotations_for_their_metrics_port(manifests: list[Manifest]) -> None:
    for workload, spec in pod_templates(manifests):
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        if workload["metadata"]["name"] == "lepton-scheduler":
            continue  # kube-scheduler's /metrics needs authentication; it is not scraped by annotation
        assert annotations.get("prometheus.io/scrape") == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        ports = {p["containerPort"] for c in spec["containers"] for p in c["ports"]}
        assert int(annotations["prometheus.io/port"]) in ports


def test_dashboards_configmap_is_labelled_for_the_grafana_sidecar() -> None:
    [config_map] = [
        c for c in by_kind(render(DEPLOY / "monitoring"), "ConfigMap") if "dashboards" in c["metadata"]["name"]
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["name"] == "lepton-dashboards"  # no hash suffix: upgrades replace in place
    assert all(key.endswith(".json") for key in config_map["data"])
