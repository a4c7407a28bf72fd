"""The image builds offline from the Dockerfile, runs as a non-root user on a read-only root, and serves.

A real ``dockerd`` (tests/deploy/docker_engine.py) builds the repository's Dockerfile with
``--network none`` on a debootstrapped Debian base, then runs the image the way the Deployments do
(unprivileged user, read-only root filesystem with a /tmp tmpfs, no capabilities) and talks to it over
the host's loopback. Skips, with the reason, where Docker cannot start (not root, no docker.io package,
no Debian mirror for the base, another run holding the cache).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, REPO_ROOT, one, render
from tests.deploy.docker_engine import (
    DockerEngine,
    EngineUnavailable,
    docker_engine,
    ensure_base_image,
    fill_wheelhouse,
    image_config,
)
from tests.extender.fixtures import node, pod

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "lepton:test"
# The pod's security settings (deploy/base/*/deployment.yaml), as docker run flags.
LOCKED_DOWN = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--user",
    "65532:65532",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    try:
        with docker_engine() as running:
            yield running
    except EngineUnavailable as exc:
        pytest.skip(f"Docker cannot run here: {exc}")


@pytest.fixture(scope="module")
def image(engine: DockerEngine) -> str:
    try:
        base = ensure_base_image(engine)
        fill_wheelhouse(REPO_ROOT, sys.executable)
    except EngineUnavailable as exc:
        pytest.skip(f"cannot prepare the offline build: {exc}")
    engine.run(
        [
            "build",
            "--network",
            "none",
            "--tag",
            IMAGE,
            "--build-arg",
            f"BASE_IMAGE={base}",
            # The Dockerfile copies build/wheelhouse to /wheels.
            "--build-arg",
            "PIP_INSTALL_ARGS=--no-index --find-links=/wheels",
            str(REPO_ROOT),
        ],
        timeout=900,
    )
    # Earlier builds of the tag become dangling; the cached data root would otherwise grow every run.
    engine.run(["image", "prune", "--force"], timeout=300)
    return IMAGE


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_image_runs_as_unprivileged_user_with_the_cli_as_entrypoint(engine: DockerEngine, image: str) -> None:
    config = image_config(engine, image)
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/opt/lepton/bin/lepton"]
    # The user the Deployments set (runAsUser) is the image's own: runAsNonRoot can verify it.
    for kind, name in (("StatefulSet", "lepton-operator"), ("Deployment", "lepton-extender")):
        pod = one(render(DEPLOY / "overlays" / "kind"), kind, name)["spec"]["template"]["spec"]
        assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == config["User"]


def test_help_works_on_a_read_only_root_without_network(engine: DockerEngine, image: str) -> None:
    done = engine.run(["run", "--rm", "--network", "none", *LOCKED_DOWN, image, "--help"])
    assert "extender" in done.stdout and "operator" in done.stdout
    for command in ("extender", "operator"):
        done = engine.run(["run", "--rm", "--network", "none", *LOCKED_DOWN, image, command, "--help"])
        assert done.stdout.startswith("usage: lepton " + command), done.stdout[:200]


def test_runtime_stage_has_no_build_tools_or_sources(engine: DockerEngine, image: str) -> None:
    probe = (
        "import shutil, pathlib, importlib.util as u; "
        "print([t for t in ('gcc', 'cc', 'make', 'pip', 'pip3') if shutil.which(t)]); "
        "print(pathlib.Path('/src').exists(), u.find_spec('pip') is not None, u.find_spec('setuptools') is not None)"
    )
    done = engine.run(
        ["run", "--rm", "--network", "none", *LOCKED_DOWN, "--entrypoint", "/opt/lepton/bin/python", image, "-c", probe]
    )
    tools, flags = done.stdout.splitlines()
    assert tools == "[]", f"build tools in the final stage: {tools}"
    assert flags == "False False False", "sources, pip or setuptools left in the final stage"


def test_extender_container_serves_over_loopback(engine: DockerEngine, image: str, tmp_path: Path) -> None:
    """The container the Deployment runs answers its probes, /metrics and a real filter call."""
    inventory = tmp_path / "nodes.json"
    inventory.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [node("n1"), node("n2")]}))
    inventory.chmod(0o644)  # read by uid 65532
    port = _free_port()
    name = f"lepton-extender-test-{port}"
    engine.run(
        [
            "run", "--detach", "--name", name, "--network", "host", *LOCKED_DOWN,
            "--volume", f"{inventory}:/etc/lepton/nodes.json:ro",
            image, "extender", "--host=127.0.0.1", f"--port={port}", "--inventory=/etc/lepton/nodes.json",
        ]
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert json.loads(_wait_for(f"{base}/healthz", engine, name)) == {"ok": True}
        assert json.loads(_wait_for(f"{base}/readyz", engine, name))["ready"] is True
        args = {"Pod": pod("trainer"), "Nodes": None, "NodeNames": ["n1", "n2"]}
        request = urllib.request.Request(
            f"{base}/filter", data=json.dumps(args).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            result = json.loads(resp.read())
        assert sorted(result["NodeNames"]) == ["n1", "n2"] and not result.get("Error")
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            assert b'lepton_extender_request_duration_seconds_count{code="200",verb="filter"} 1.0' in resp.read()
    finally:
        engine.run(["rm", "--force", name], check=False)


def _wait_for(url: str, engine: DockerEngine, container: str, timeout_seconds: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                text: str = resp.read().decode()
                assert resp.status == 200
                return text
        except (urllib.error.URLError, OSError, subprocess.SubprocessError):
            state = engine.run(["inspect", "--format", "{{.State.Running}}", container], check=False).stdout.strip()
            if state != "true" or time.monotonic() > deadline:
                logs = engine.run(["logs", "--tail", "40", container], check=False)
                pytest.fail(f"{url} never answered (running={state}):\n{logs.stdout}\n{logs.stderr}")
            time.sleep(0.5)
