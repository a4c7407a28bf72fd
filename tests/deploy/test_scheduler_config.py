"""lepton-scheduler's KubeSchedulerConfiguration, checked against the upstream v1 API field by field.

kube-scheduler decodes its config strictly: one misspelt field (``nodeCacheable``) and the pod crash-loops
with a decode error, which no YAML linter notices. The allowed field names below are transcribed from the
json tags of upstream's types: ``staging/src/k8s.io/kube-scheduler/config/v1/types.go``
(KubeSchedulerConfiguration, KubeSchedulerProfile, Plugins, PluginSet, Plugin, PluginConfig, Extender,
ExtenderManagedResource, ExtenderTLSConfig) and ``staging/src/k8s.io/component-base/config/v1alpha1/types.go``
(LeaderElectionConfiguration, ClientConnectionConfiguration, and DebuggingConfiguration, which is
embedded inline). Fields upstream added after the pinned kube-scheduler v1.33 are left out on purpose
(``percentageOfPlacementsToScore`` and the ``placement*``/``podGroupPostFilter`` plugin points, behind the
TopologyAwareWorkloadScheduling gate): that scheduler would reject them. Then the values that make this
scheduler work with Lepton are checked against the rest of the rendered overlay: the extender's Service, the
lease RBAC, the operator's scheduler name.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from lepton_operator.crd import DEFAULT_SCHEDULER_NAME
from tests.deploy.conftest import Manifest, by_kind, one

_TYPE_META = {"apiVersion", "kind"}
_DEBUGGING = {"enableProfiling", "enableContentionProfiling"}  # embedded inline (json:"")

# type name -> {json field -> type of the value (a type name here, or None for a scalar)}
UPSTREAM_V1: dict[str, dict[str, str | None]] = {
    "KubeSchedulerConfiguration": {
        **dict.fromkeys(_TYPE_META | _DEBUGGING),
        "parallelism": None,
        "leaderElection": "LeaderElectionConfiguration",
        "clientConnection": "ClientConnectionConfiguration",
        "percentageOfNodesToScore": None,
        "podInitialBackoffSeconds": None,
        "podMaxBackoffSeconds": None,
        "profiles": "KubeSchedulerProfile",
        "extenders": "Extender",
        "delayCacheUntilActive": None,
    },
    "LeaderElectionConfiguration": dict.fromkeys(
        (
            "leaderElect",
            "leaseDuration",
            "renewDeadline",
            "retryPeriod",
            "resourceLock",
            "resourceName",
            "resourceNamespace",
        )
    ),
    "ClientConnectionConfiguration": dict.fromkeys(("kubeconfig", "acceptContentTypes", "contentType", "qps", "burst")),
    "KubeSchedulerProfile": {
        "schedulerName": None,
        "percentageOfNodesToScore": None,
        "plugins": "Plugins",
        "pluginConfig": "PluginConfig",
    },
    "Plugins": dict.fromkeys(
        (
            "preEnqueue",
            "queueSort",
            "preFilter",
            "filter",
            "postFilter",
            "preScore",
            "score",
            "reserve",
            "permit",
            "preBind",
            "bind",
            "postBind",
            "multiPoint",
        ),
        "PluginSet",
    ),
    "PluginSet": {"enabled": "Plugin", "disabled": "Plugin"},
    "Plugin": {"name": None, "weight": None},
    "PluginConfig": {"name": None, "args": None},  # args: the plugin's own type (runtime.RawExtension)
    "Extender": {
        "urlPrefix": None,
        "filterVerb": None,
        "preemptVerb": None,
        "prioritizeVerb": None,
        "weight": None,
        "bindVerb": None,
        "enableHTTPS": None,
        "tlsConfig": "ExtenderTLSConfig",
        "httpTimeout": None,
        "nodeCacheCapable": None,
        "managedResources": "ExtenderManagedResource",
        "ignorable": None,
    },
    "ExtenderManagedResource": {"name": None, "ignoredByScheduler": None},
    "ExtenderTLSConfig": dict.fromkeys(
        ("insecure", "serverName", "certFile", "keyFile", "caFile", "certData", "keyData", "caData")
    ),
}


def unknown_fields(value: Any, type_name: str, path: str = "") -> list[str]:
    """Paths of every field in ``value`` that the upstream type ``type_name`` does not declare."""
    if isinstance(value, list):
        return [err for i, item in enumerate(value) for err in unknown_fields(item, type_name, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: expected an object of type {type_name}, got {type(value).__name__}"]
    fields = UPSTREAM_V1[type_name]
    errors: list[str] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            errors.append(f"{where}: not a field of {type_name}")
        elif fields[key] is not None:
            errors.extend(unknown_fields(item, str(fields[key]), where))
    return errors


def _duration_seconds(text: str) -> float:
    """A Go duration as metav1.Duration accepts it, limited to the units a config would use."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?", text)
    assert parts and text, f"not a duration: {text!r}"
    minutes, seconds, millis = parts.groups()
    return int(minutes or 0) * 60 + float(seconds or 0) + int(millis or 0) / 1000


@pytest.fixture
def config(manifests: list[Manifest]) -> dict[str, Any]:
    deployment = one(manifests, "Deployment", "lepton-scheduler")
    spec = deployment["spec"]["template"]["spec"]
    command = spec["containers"][0]["command"]
    [config_path] = [arg.split("=", 1)[1] for arg in command if arg.startswith("--config=")]
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    config_map = one(manifests, "ConfigMap", volume["configMap"]["name"])  # hash-suffixed name resolved
    text = config_map["data"][config_path.rsplit("/", 1)[1]]
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_checker_rejects_misspelt_and_misplaced_fields() -> None:
    bad = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "extenders": [{"urlPrefix": "http://x", "nodeCacheable": True}],
        "profiles": [{"schedulerName": "s", "plugins": {"score": {"enabled": [{"name": "a", "weigth": 2}]}}}],
        "leaderElection": {"leaseName": "x"},
    }
    assert unknown_fields(bad, "KubeSchedulerConfiguration") == [
        "extenders[0].nodeCacheable: not a field of Extender",
        "profiles[0].plugins.score.enabled[0].weigth: not a field of Plugin",
        "leaderElection.leaseName: not a field of LeaderElectionConfiguration",
    ]


def test_every_field_is_an_upstream_v1_field(config: dict[str, Any]) -> None:
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert unknown_fields(config, "KubeSchedulerConfiguration") == []


def test_one_profile_named_as_the_operator_expects(config: dict[str, Any]) -> None:
    # LeptonJob pods carry spec.schedulerName = the CRD default; a mismatch leaves them Pending forever.
    assert [p["schedulerName"] for p in config["profiles"]] == [DEFAULT_SCHEDULER_NAME]


def test_extender_is_cache_capable_ignorable_and_quick(config: dict[str, Any]) -> None:
    [extender] = config["extenders"]
    assert extender["filterVerb"] == "filter"
    assert extender["prioritizeVerb"] == "prioritize"
    assert isinstance(extender["weight"], int) and extender["weight"] > 0
    assert extender["nodeCacheCapable"] is True
    assert extender["ignorable"] is True
    assert 0 < _duration_seconds(extender["httpTimeout"]) <= 5
    assert "bindVerb" not in extender and "preemptVerb" not in extender


def test_extender_url_is_the_extender_service(config: dict[str, Any], manifests: list[Manifest]) -> None:
    [extender] = config["extenders"]
    url = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)/?", extender["urlPrefix"])
    assert url, extender["urlPrefix"]
    name, namespace, port = url.groups()
    service = one(manifests, "Service", name)
    assert service["metadata"]["namespace"] == namespace
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}


def test_own_lease_and_rbac_for_exactly_that_lease(config: dict[str, Any], manifests: list[Manifest]) -> None:
    election = config["leaderElection"]
    assert election["leaderElect"] is True
    assert election["resourceLock"] == "leases"
    # Never the default scheduler's lease: the two schedulers must not contend.
    assert (election["resourceNamespace"], election["resourceName"]) != ("kube-system", "kube-scheduler")
    roles = [
        r
        for r in by_kind(manifests, "Role")
        if r["metadata"]["namespace"] == election["resourceNamespace"]
        and any("leases" in rule["resources"] for rule in r["rules"])
    ]
    assert len(roles) == 1
    named = [rule for rule in roles[0]["rules"] if rule.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [election["resourceName"]],
            "verbs": ["get", "update"],
        }
    ]
    binding = [b for b in by_kind(manifests, "RoleBinding") if b["roleRef"]["name"] == roles[0]["metadata"]["name"]]
    assert [s["name"] for s in binding[0]["subjects"]] == ["lepton-scheduler"]
