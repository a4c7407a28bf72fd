"""Fixtures for the deploy/ tests: rendered kustomize overlays, the repository paths, tool lookup.

Neighbours: ``deploy/`` (kustomize base, overlays, monitoring), ``Dockerfile``, ``hack/``. Every tool
these tests drive (kubectl, promtool, checkov, dockerd) is a real binary; each test skips, with the
reason, where its tool is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
OVERLAYS = ("kind", "production")

Manifest = dict[str, Any]


def kubectl() -> str:
    """Path of kubectl (it embeds kustomize), or skip with the reason."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl not found: it renders the kustomize overlays (install kubectl >= 1.27)")
    return path


@cache
def _render(directory: Path) -> tuple[Manifest, ...]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{done.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def render(directory: Path) -> list[Manifest]:
    """``kubectl kustomize DIRECTORY`` parsed into manifests (cached per directory for the run)."""
    return [dict(doc) for doc in _render(directory)]


def render_text(directory: Path) -> str:
    """The rendered overlay as one multi-document YAML text (what ``kubectl apply -k`` would send)."""
    return yaml.safe_dump_all(_render(directory), sort_keys=False)


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in manifests if m.get("kind") == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_templates(manifests: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod spec) for every Deployment, StatefulSet, DaemonSet and Job."""
    for m in manifests:
        if m.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield m, m["spec"]["template"]["spec"]


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def manifests(overlay: str) -> list[Manifest]:
    return render(DEPLOY / "overlays" / overlay)
