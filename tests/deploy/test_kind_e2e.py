"""hack/kind-e2e.sh cannot run here (it needs Docker with network and kind); these checks keep it honest.

The script is valid bash (and shellcheck-clean where shellcheck is installed), every file it applies
exists, the workloads it waits for are the ones the kind overlay creates, the sample job it waits on is
the sample's real name, its kind node image matches the kube-scheduler version (skew policy), and it
refuses to start, saying why, when a tool is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO_ROOT, one, render

SCRIPT = REPO_ROOT / "hack" / "kind-e2e.sh"


def script() -> str:
    return SCRIPT.read_text()


def test_is_valid_bash() -> None:
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert os.access(SCRIPT, os.X_OK)


def test_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (Debian package shellcheck)")
    done = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_every_file_it_applies_exists() -> None:
    paths = re.findall(r'"\$ROOT/([^"]+)"', script())
    assert "deploy/overlays/kind" in paths
    for path in paths:
        assert (REPO_ROOT / path).exists(), path


def test_waits_for_the_workloads_the_kind_overlay_creates() -> None:
    manifests = render(DEPLOY / "overlays" / "kind")
    [loop] = re.findall(r"for workload in ([^;]+); do", script())
    for ref in loop.split():
        kind, name = ref.split("/")
        one(manifests, {"deployment": "Deployment", "statefulset": "StatefulSet"}[kind], name)
    for crd in re.findall(r"crd/([a-z.]+)", script()):
        one(manifests, "CustomResourceDefinition", crd)


def test_waits_on_the_sample_job_by_its_real_name() -> None:
    sample = yaml.safe_load((DEPLOY / "samples" / "cpu-single-worker.yaml").read_text())
    [jobs] = re.findall(r"for job in ([^;]+); do", script())
    assert sample["metadata"]["name"] in jobs.split()


def test_kind_node_matches_the_scheduler_version() -> None:
    [node_image] = re.findall(r"NODE_IMAGE=\$\{NODE_IMAGE:-kindest/node:(v[\d.]+)\}", script())
    scheduler = one(render(DEPLOY / "overlays" / "kind"), "Deployment", "lepton-scheduler")
    image = scheduler["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":{node_image}"), f"kube-scheduler {image} on a {node_image} cluster"


def test_every_kubectl_call_names_the_kind_context() -> None:
    """kubectl runs only through k(), which pins --context kind-$CLUSTER: never the user's own cluster."""
    code = [line.split("#", 1)[0] for line in script().splitlines() if not line.lstrip().startswith("#")]
    invocations = [line.strip() for line in code if re.search(r"\bkubectl\s+-", line)]
    assert invocations == ['k() { kubectl --context "kind-$CLUSTER" "$@"; }']


def test_refuses_to_start_without_its_tools(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):  # just what runs before the tool check
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", bin_dir / tool)
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT)], capture_output=True, text=True, timeout=30, env={"PATH": str(bin_dir)}
    )
    assert done.returncode == 1
    assert "FAIL: docker not found" in done.stderr
    assert "==" not in done.stdout, "it started a step before checking its tools"
