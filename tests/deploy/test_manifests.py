"""deploy/: each overlay renders, validates strictly, and asks for no more than Lepton needs.

What a cluster admin reviewing ``kubectl apply -k deploy/overlays/<overlay>`` cares about: the objects
are valid for the Kubernetes versions we support, every container is locked down (non-root, read-only
root, no capabilities, seccomp, probes, requests and limits), RBAC has no wildcards and no Secrets, and
the pieces point at each other correctly (Services select pods, probes name real ports, service
accounts exist). The scheduler's configuration has its own file (test_scheduler_config.py).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest

from lepton_core.profiles import load_profile_set
from tests.deploy.conftest import DEPLOY, Manifest, by_kind, labels_match, one, pod_templates, render

# Oldest and newest Kubernetes minor the manifests are validated against (docs/deploy.md says 1.30+).
K8S_VERSIONS = ("1.30.0", "1.37.0")
# API groups whose kinds have no schema in kubernetes-validate: our CRDs' objects, kopf's peering and the
# Prometheus Operator's kinds. Their schemas are checked elsewhere (CRD samples by the operator's tests,
# rules by promtool in test_monitoring.py).
CUSTOM_GROUPS = {"lepton.ai", "kopf.dev", "monitoring.coreos.com"}
NAMESPACE = "lepton-system"


def _group(manifest: Manifest) -> str:
    api_version: str = manifest["apiVersion"]
    return api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""


def test_overlay_renders_unique_namespaced_objects(manifests: list[Manifest]) -> None:
    keys = [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests]
    assert len(keys) == len(set(keys)), "duplicate objects in the rendered overlay"
    kinds = {m["kind"] for m in manifests}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "Service", "ClusterRole"} <= kinds
    # Nothing lands in "default": every namespaced object names its namespace.
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterKopfPeering",
    }
    for m in manifests:
        if m["kind"] not in cluster_scoped:
            assert m["metadata"].get("namespace") in {NAMESPACE, "kube-system"}, f"{m['kind']}/{m['metadata']['name']}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_kinds_validate_strictly(manifests: list[Manifest], version: str) -> None:
    checked = 0
    for m in manifests:
        if _group(m) in CUSTOM_GROUPS:
            continue
        try:
            kubernetes_validate.validate(m, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{m['kind']}/{m['metadata']['name']} invalid for Kubernetes {version}: {exc.message}")
        checked += 1
    assert checked >= 20


def test_crds_are_shipped(manifests: list[Manifest]) -> None:
    names = {m["metadata"]["name"] for m in by_kind(manifests, "CustomResourceDefinition")}
    assert {"leptonjobs.lepton.ai", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= names


def test_every_container_is_locked_down(manifests: list[Manifest]) -> None:
    workloads = list(pod_templates(manifests))
    assert {w["metadata"]["name"] for w, _ in workloads} == {"lepton-operator", "lepton-extender", "lepton-scheduler"}
    for workload, spec in workloads:
        where = workload["metadata"]["name"]
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, where
        assert pod_sc.get("runAsUser", 0) >= 10000, f"{where}: run as a high, non-root uid"
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        ports = set()
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("privileged"), where
            assert "add" not in sc.get("capabilities", {}), where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(bound, {})), f"{where}: {bound}"
            ports |= {p["name"] for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in c, f"{where}: no {probe}"
                assert c[probe]["httpGet"]["port"] in ports, f"{where}: {probe} names an undeclared port"
            # A read-only root needs somewhere to write temporary files.
            assert any(v["mountPath"] == "/tmp" for v in c.get("volumeMounts", [])), where


def test_services_select_pods_and_target_declared_ports(manifests: list[Manifest]) -> None:
    workloads = list(pod_templates(manifests))
    for svc in by_kind(manifests, "Service"):
        selected = [
            (w, spec)
            for w, spec in workloads
            if labels_match(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, f"Service {svc['metadata']['name']} selects {len(selected)} workloads"
        _, spec = selected[0]
        declared = {p["name"] for c in spec["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in declared, f"{svc['metadata']['name']}: targetPort {port['targetPort']}"


def test_deployment_selectors_match_their_templates(manifests: list[Manifest]) -> None:
    for w, _ in pod_templates(manifests):
        assert labels_match(w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])


def test_workloads_use_existing_service_accounts_with_bindings(manifests: list[Manifest]) -> None:
    accounts = {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in by_kind(manifests, "ServiceAccount")}
    bound = {
        (s["namespace"], s["name"])
        for b in by_kind(manifests, "ClusterRoleBinding") + by_kind(manifests, "RoleBinding")
        for s in b["subjects"]
        if s["kind"] == "ServiceAccount"
    }
    for w, spec in pod_templates(manifests):
        account = (w["metadata"]["namespace"], spec["serviceAccountName"])
        assert account in accounts, f"{w['metadata']['name']} uses a missing ServiceAccount {account}"
        assert account in bound, f"{w['metadata']['name']}'s ServiceAccount has no role"
    assert bound <= accounts, "a binding names a ServiceAccount that is not shipped"


def _rules(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{m['kind']}/{m['metadata']['name']}", rule)
        for m in by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role")
        for rule in m.get("rules", [])
    ]


def test_rbac_has_no_wildcards_no_secrets_no_escalation(manifests: list[Manifest]) -> None:
    rules = _rules(manifests)
    assert rules
    for where, rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in item for item in rule.get(field, [])), f"{where}: wildcard in {field}"
        assert "secrets" not in rule.get("resources", []), f"{where} grants access to Secrets"
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), f"{where}: privilege escalation verb"
        assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings"} & set(rule.get("resources", [])), (
            where
        )
        assert "nonResourceURLs" not in rule, where


def test_bindings_reference_only_shipped_or_scheduler_builtin_roles(manifests: list[Manifest]) -> None:
    """Our own roles, plus exactly the built-in roles every kube-scheduler is bound to; never admin-like ones."""
    own = {(m["kind"], m["metadata"]["name"]) for m in by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role")}
    builtin_allowed = {
        ("ClusterRole", "system:kube-scheduler"),
        ("ClusterRole", "system:volume-scheduler"),
        ("Role", "extension-apiserver-authentication-reader"),
    }
    for b in by_kind(manifests, "ClusterRoleBinding") + by_kind(manifests, "RoleBinding"):
        ref = (b["roleRef"]["kind"], b["roleRef"]["name"])
        assert ref in own | builtin_allowed, f"{b['kind']}/{b['metadata']['name']} binds {ref}"
        if ref in builtin_allowed:
            assert [s["name"] for s in b["subjects"]] == ["lepton-scheduler"], "only the scheduler gets built-in roles"


def _granted(manifests: list[Manifest], role: str) -> set[tuple[str, str, str]]:
    role_obj = one(manifests, "ClusterRole", role)
    return {
        (group, resource, verb)
        for rule in role_obj["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _expand(table: dict[tuple[str, str], str]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for (g, r), verbs in table.items() for v in verbs.split()}


def test_extender_may_only_read_nodes_and_pods(manifests: list[Manifest]) -> None:
    assert _granted(manifests, "lepton-extender") == _expand(
        {("", "nodes"): "get list watch", ("", "pods"): "get list watch"}
    )


def test_operator_gets_exactly_what_it_uses(manifests: list[Manifest]) -> None:
    """The operator's grants, spelled out: adding a permission means adding it here, on purpose."""
    expected = _expand(
        {
            ("lepton.ai", "leptonjobs"): "get list watch patch delete",
            ("lepton.ai", "leptonjobs/status"): "get patch",
            ("lepton.ai", "leptonjobs/finalizers"): "update",
            ("", "pods"): "get list watch create patch delete",
            ("", "services"): "get create",
            ("", "events"): "create",
            ("", "nodes"): "list",
            ("scheduling.k8s.io", "priorityclasses"): "get",
            ("kopf.dev", "clusterkopfpeerings"): "get list watch patch",
            ("apiextensions.k8s.io", "customresourcedefinitions"): "list watch",
        }
    )
    assert _granted(manifests, "lepton-operator") == expected


def test_operator_peering_object_matches_its_flag(manifests: list[Manifest]) -> None:
    operator = one(manifests, "StatefulSet", "lepton-operator")
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "operator"
    assert "--all-namespaces" in args
    peering = [a.split("=", 1)[1] for a in args if a.startswith("--peering=")]
    assert len(peering) == 1
    # Cluster-wide operators use the cluster-scoped peering kind; kopf patches it but never creates it.
    one(manifests, "ClusterKopfPeering", peering[0])


def test_operator_replicas_get_distinct_peering_priorities(manifests: list[Manifest]) -> None:
    """kopf pauses every replica when two live ones share a priority: each must take its own pod index."""
    operator = one(manifests, "StatefulSet", "lepton-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert "--priority=$(POD_INDEX)" in container["args"]
    [env] = [e for e in container["env"] if e["name"] == "POD_INDEX"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"


def test_kind_runs_the_locally_loaded_image() -> None:
    manifests = render(DEPLOY / "overlays" / "kind")
    for kind, name in (("StatefulSet", "lepton-operator"), ("Deployment", "lepton-extender")):
        container = one(manifests, kind, name)["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "lepton:dev"
        assert container["imagePullPolicy"] == "IfNotPresent"


def test_production_is_highly_available() -> None:
    manifests = render(DEPLOY / "overlays" / "production")
    pdbs = by_kind(manifests, "PodDisruptionBudget")
    for w, spec in pod_templates(manifests):
        name = w["metadata"]["name"]
        assert w["spec"]["replicas"] >= 2, name
        template_labels = w["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs if labels_match(p["spec"]["selector"]["matchLabels"], template_labels)]
        assert len(covering) == 1 and covering[0]["spec"]["minAvailable"] == 1, name
        spread = spec["topologySpreadConstraints"]
        # Spreading counts the component's own replicas, not every Lepton pod.
        assert labels_match(spread[0]["labelSelector"]["matchLabels"], template_labels), name
        assert (
            spread[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"]
            == template_labels["app.kubernetes.io/component"]
        )


def _expand_env(arg: str, env: list[dict[str, Any]]) -> str:
    """$(VAR) as the kubelet expands it in args, with a stand-in value for each variable."""
    samples = {"POD_INDEX": "1", "PROMETHEUS_URL": "http://prometheus.monitoring.svc:9090"}
    for var in env:
        arg = arg.replace(f"$({var['name']})", samples[var["name"]])
    assert "$(" not in arg, f"unexpanded variable in {arg!r}"
    return arg


def test_lepton_containers_pass_only_flags_the_cli_accepts(manifests: list[Manifest]) -> None:
    """The real `lepton` parser reads each container's args: a renamed or removed flag fails here, not in a pod."""
    from lepton_cli.main import build_parser

    parser = build_parser()
    checked = 0
    for workload, spec in pod_templates(manifests):
        for container in spec["containers"]:
            if not container["image"].split(":")[0].endswith("lepton"):
                continue
            args = [_expand_env(a, container.get("env", [])) for a in container["args"]]
            parsed = parser.parse_args(args)
            assert parsed.command == args[0], workload["metadata"]["name"]
            checked += 1
    assert checked == 2


def test_custom_cost_profiles_are_valid_and_mounted_where_the_flags_point(tmp_path: Path) -> None:
    manifests = render(DEPLOY / "overlays" / "production")
    [profiles] = [c for c in by_kind(manifests, "ConfigMap") if c["metadata"]["name"].startswith("lepton-profiles")]
    for name, text in profiles["data"].items():
        (tmp_path / name).write_text(text)
    profile_set = load_profile_set(tmp_path / "profiles.yaml")  # the same loader the components use
    assert profile_set.profiles and profile_set.currency
    for workload, spec in pod_templates(manifests):
        if workload["metadata"]["name"] == "lepton-scheduler":
            continue
        container = spec["containers"][0]
        [flag] = [a for a in container["args"] if a.startswith(("--profiles=", "--cost-profiles="))]
        path = PurePosixPath(flag.split("=", 1)[1])
        [mount] = [m for m in container["volumeMounts"] if str(path.parent) == m["mountPath"]]
        [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == profiles["metadata"]["name"]
        assert path.name in profiles["data"]
