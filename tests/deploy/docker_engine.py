"""A private Docker engine for the image test, and the offline base image it builds on.

Neighbours: ``Dockerfile`` (what is built), ``tests/deploy/test_image.py`` (what is checked).

Image registries are unreachable where the tests run, so nothing is pulled: the base image is a Debian
bookworm root made with ``debootstrap`` (Python from Debian's packages, which the package mirror serves)
and loaded with ``docker import``; the Python dependencies come from a wheelhouse that the host's pip
fills (``build/wheelhouse``, the Dockerfile's offline path). The engine is ``dockerd`` started here with
its own socket, no bridge and no iptables (the containers use the host's loopback or no network), and
stopped afterwards.

Caching between runs: the debootstrap root is kept as a tarball and the engine's data root (images and
build layers) is kept too, both under ``$LEPTON_DOCKER_CACHE`` (default ``~/.cache/lepton/docker``),
guarded by a lock so two runs never share a data root at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BASE_IMAGE = "lepton-test-base:bookworm-py311"
DEBIAN_SUITE = "bookworm"
# python3-venv brings ensurepip (the Dockerfile's `python3 -m venv`); nothing else is added to minbase.
DEBOOTSTRAP_PACKAGES = ("python3", "python3-venv", "ca-certificates")


class EngineUnavailable(Exception):
    """Docker cannot run here; the message says why (the test skips with it)."""


def cache_dir() -> Path:
    return Path(os.environ.get("LEPTON_DOCKER_CACHE", Path.home() / ".cache" / "lepton" / "docker"))


def _debian_mirror() -> str:
    """The mirror apt already uses (it is the one reachable here), else Debian's CDN."""
    if mirror := os.environ.get("LEPTON_DEBIAN_MIRROR"):
        return mirror
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


@dataclass
class DockerEngine:
    """A running ``dockerd`` and a ``docker`` client bound to its socket."""

    process: subprocess.Popen[bytes]
    socket_path: Path
    workdir: Path
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        # The legacy builder: it needs no buildx plugin, and `--network none` on a build is honoured.
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket_path}", "DOCKER_BUILDKIT": "0"}

    def run(
        self, args: Sequence[str], *, timeout: float = 120, check: bool = True, stdin: IO[bytes] | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=stdin is None,
            text=True,
            timeout=timeout,
            check=False,
            stdin=stdin,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{done.stdout}")
        return done

    def has_image(self, tag: str) -> bool:
        return self.run(["image", "inspect", tag], check=False).returncode == 0

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


@contextlib.contextmanager
def docker_engine(start_timeout_seconds: float = 60.0) -> Iterator[DockerEngine]:
    """Start a private dockerd (raises ``EngineUnavailable`` with the reason when it cannot run)."""
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root")
    for tool in ("dockerd", "docker"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(f"{tool} not found (Debian package docker.io; .ci/run installs it)")
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    lock = (cache / "lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock.close()
        raise EngineUnavailable(f"another test run holds {cache}/lock") from exc
    # Short paths: containerd's socket lives under exec-root and a unix socket path has 107 bytes at most.
    workdir = Path(tempfile.mkdtemp(prefix="lpd-", dir="/tmp"))
    socket_path = workdir / "docker.sock"
    log_path = workdir / "dockerd.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            "dockerd",
            f"--host=unix://{socket_path}",
            f"--data-root={cache / 'data-root'}",
            f"--exec-root={workdir / 'x'}",
            f"--pidfile={workdir / 'dockerd.pid'}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    engine = DockerEngine(process, socket_path, workdir, log_path)
    try:
        deadline = time.monotonic() + start_timeout_seconds
        while engine.run(["info", "--format", "{{.ServerVersion}}"], check=False, timeout=10).returncode != 0:
            if process.poll() is not None:
                raise EngineUnavailable(f"dockerd exited with {process.returncode}:\n{engine.log_tail()}")
            if time.monotonic() > deadline:
                raise EngineUnavailable(f"dockerd not ready after {start_timeout_seconds} s:\n{engine.log_tail()}")
            time.sleep(0.5)
        yield engine
    finally:
        with contextlib.suppress(Exception):
            running = engine.run(["ps", "-q"], check=False, timeout=30).stdout.split()
            if running:
                engine.run(["rm", "-f", *running], check=False, timeout=60)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _unmount_below(workdir)  # dockerd leaves its default network namespace bind-mounted there
        shutil.rmtree(workdir, ignore_errors=True)
        lock.close()


def _unmount_below(directory: Path) -> None:
    prefix = f"{directory}/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):  # deepest first
        subprocess.run(["umount", point], capture_output=True, timeout=30, check=False)


def ensure_base_image(engine: DockerEngine) -> str:
    """``BASE_IMAGE`` in the engine: imported from the cached debootstrap tarball, built when missing."""
    if engine.has_image(BASE_IMAGE):
        return BASE_IMAGE
    tarball = cache_dir() / f"debootstrap-{DEBIAN_SUITE}-{'-'.join(DEBOOTSTRAP_PACKAGES)}.tar"
    if not tarball.is_file():
        if shutil.which("debootstrap") is None:
            raise EngineUnavailable("debootstrap not found (Debian package debootstrap; .ci/run installs it)")
        with tempfile.TemporaryDirectory(prefix="lepton-rootfs-", dir=cache_dir()) as tmp:
            root = Path(tmp) / "rootfs"
            done = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(DEBOOTSTRAP_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(root),
                    _debian_mirror(),
                ],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
                raise EngineUnavailable(f"debootstrap failed (no Debian mirror reachable?):\n{tail}")
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True, timeout=300)
            partial.replace(tarball)
    with tarball.open("rb") as stream:
        engine.run(["import", "-", BASE_IMAGE], stdin=stream, timeout=300)
    return BASE_IMAGE


def runtime_requirements(pyproject: Path) -> list[str]:
    """The project's runtime dependencies plus its build backend (pip builds the project in isolation)."""
    project = tomllib.loads(pyproject.read_text())
    requires: list[str] = project["build-system"]["requires"]
    dependencies: list[str] = project["project"]["dependencies"]
    return [*dependencies, *requires]


def fill_wheelhouse(repo: Path, python: str) -> Path:
    """``build/wheelhouse``: every wheel the offline image build needs, fetched by the host's pip.

    Wheels are chosen for CPython 3.11 (Debian bookworm's, the base's Python) on this machine's platform,
    binary only, so nothing compiles inside the build.
    """
    wheelhouse = repo / "build" / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = runtime_requirements(repo / "pyproject.toml")
    # Resolving against the index takes ~10 s even when every wheel is here: skip it when the
    # requirements are the ones this wheelhouse was filled for.
    stamp = wheelhouse / "requirements.stamp"
    if stamp.is_file() and stamp.read_text() == "\n".join(requirements):
        return wheelhouse
    done = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version=3.11",
            "--dest",
            str(wheelhouse),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise EngineUnavailable(f"could not fetch the wheels for the offline build:\n{done.stderr[-2000:]}")
    stamp.write_text("\n".join(requirements))
    return wheelhouse


def image_config(engine: DockerEngine, tag: str) -> dict[str, object]:
    doc = json.loads(engine.run(["image", "inspect", tag]).stdout)
    config: dict[str, object] = doc[0]["Config"]
    return config
