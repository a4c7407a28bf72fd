"""checkov's Kubernetes policies on each rendered overlay: no failed check, and every skip gives its reason.

Skips are ``checkov.io/skipN: CKV_ID=reason`` annotations next to the object they concern
(deploy/base/*/deployment.yaml, deploy/overlays/kind/local-image.yaml). checkov pins its own dependency
versions, so it lives in a virtualenv of its own (``.ci/run`` installs it); the test skips, saying so,
where it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, render_text

pytestmark = pytest.mark.slow

# Checks that may be skipped at all, each with why it cannot pass for Lepton; a new skip must be argued
# here as well as next to the object.
ALLOWED_SKIPS = {
    "CKV_K8S_38": "the three workloads talk to the API server, so they need their service account token",
    "CKV_K8S_43": "images are tags in the base; pinning digests is the installing overlay's job",
    "CKV_K8S_15": "kind runs a locally loaded image that no registry has",
}


def checkov() -> str:
    candidates = [
        os.environ.get("CHECKOV", ""),
        shutil.which("checkov") or "",
        str(
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            / "lepton"
            / "checkov-venv"
            / "bin"
            / "checkov"
        ),
    ]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    pytest.skip("checkov not found (set CHECKOV, or let .ci/run install it into ~/.cache/lepton/checkov-venv)")


def run_checkov(manifest_file: Path) -> dict[str, Any]:
    done = subprocess.run(
        # --skip-download: no call home for guidelines (and no network here anyway).
        [checkov(), "--file", str(manifest_file), "--framework", "kubernetes", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
    )
    start = done.stdout.find("{")
    if start < 0:
        raise AssertionError(f"checkov printed no report (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout[start:])
    return report


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_no_failed_checks_and_every_skip_justified(overlay: str, tmp_path: Path) -> None:
    manifest_file = tmp_path / f"{overlay}.yaml"
    manifest_file.write_text(render_text(DEPLOY / "overlays" / overlay))
    report = run_checkov(manifest_file)
    results = report["results"]
    failed = [f"{c['check_id']} {c['check_name']} on {c['resource']}" for c in results.get("failed_checks", [])]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 100, "checkov ran suspiciously few checks"
    skipped_checks = results.get("skipped_checks", [])
    # The annotations were read (a renamed annotation would silently turn skips into failures or no-ops).
    assert {s["check_id"] for s in skipped_checks} >= {"CKV_K8S_38", "CKV_K8S_43"}
    for skipped in skipped_checks:
        check_id = skipped["check_id"]
        assert check_id in ALLOWED_SKIPS, f"{check_id} skipped on {skipped['resource']} without an entry here"
        reason = (skipped.get("check_result", {}).get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"{check_id} on {skipped['resource']}: skip without a real reason ({reason!r})"
