"""The operator under a burst: 1,000 LeptonJobs x 4 workers applied at once, against the Kubernetes emulator.

What it does (all on 127.0.0.1, each side in its own process):

1. starts the emulator (``python -m tests.kube_emulator --no-cel``) with the LeptonJob CRD installed; CEL
   rules are skipped because cel-python interprets them at ~3 ms each, a cost of the emulator that an
   API server (compiled CEL) does not have; JSON-Schema validation, defaulting and pruning stay on;
2. **baseline**, measured in the same run: a client POSTs the same number of plain pods (jobs x workers)
   straight to the emulator with the operator's concurrency (64 in flight) — the floor set by the API
   server, whatever the operator does;
3. starts the real operator (``python -m lepton_operator --standalone``, i.e. ``lepton operator``, with
   every installed extension, live cost accounting included) and waits for its liveness endpoint;
4. creates all LeptonJobs as fast as the API takes them (64 in flight) and, through its own watch on
   pods, times when every worker pod **exists** and when every gang is **released** (gates removed);
5. samples the operator's resident memory (``/proc/<pid>/status``: VmRSS every 0.2 s, VmHWM at the end)
   and its CPU time;
6. kills the operator (SIGKILL) with all those jobs and pods in place, starts it again, submits one more
   job and times until that job's workers are released: the restart has to re-list everything before it
   acts (kopf's index barrier), so this is the recovery time at this scale.

Run: ``.venv/bin/python bench/operator_scale.py [--jobs 1000] [--workers 4]``. Prints a table with the
ratio operator / baseline; ``--json PATH`` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = 64
"""In-flight requests for the baseline and the job submitter: the operator's default bound."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _job(name: str, workers: int) -> dict[str, Any]:
    return {
        "apiVersion": "lepton.ai/v1alpha1",
        "kind": "LeptonJob",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {
            "workers": workers,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "trainer",
                            "image": "nvcr.io/nvidia/pytorch:24.05-py3",
                            "command": ["torchrun", "train.py"],
                            "resources": {
                                "requests": {"nvidia.com/gpu": 8, "cpu": "32"},
                                "limits": {"nvidia.com/gpu": 8},
                            },
                        }
                    ]
                }
            },
        },
    }


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "baseline"},
        "spec": {"containers": [{"name": "trainer", "image": "nvcr.io/nvidia/pytorch:24.05-py3"}]},
    }


async def _post_all(session: aiohttp.ClientSession, url: str, bodies: list[dict[str, Any]]) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def post(body: dict[str, Any]) -> None:
        async with (
            semaphore,
            session.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as response,
        ):
            if response.status != 201:
                raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(post(b) for b in bodies))
    return time.perf_counter() - started


class PodCounter:
    """Counts worker pods created and released, from a watch (no polling of 4,000-item lists)."""

    def __init__(self) -> None:
        self.existing: set[str] = set()
        self.released: set[str] = set()
        self.first_all_exist: float | None = None
        self.first_all_released: float | None = None

    async def follow(self, session: aiohttp.ClientSession, url: str, expected: int, started: float) -> None:
        params = {"watch": "true", "labelSelector": "lepton.ai/job-name", "allowWatchBookmarks": "true"}
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                event = orjson.loads(line)
                if event["type"] not in ("ADDED", "MODIFIED"):
                    continue
                pod = event["object"]
                name = pod["metadata"]["name"]
                self.existing.add(name)
                if not pod["spec"].get("schedulingGates"):
                    self.released.add(name)
                now = time.perf_counter() - started
                if self.first_all_exist is None and len(self.existing) >= expected:
                    self.first_all_exist = now
                if self.first_all_released is None and len(self.released) >= expected:
                    self.first_all_released = now
                    return


async def _start_operator(
    session: aiohttp.ClientSession, kubeconfig: Path, log_path: Path, profile: Path | None
) -> subprocess.Popen[bytes]:
    """``lepton operator`` as a process; returns once its liveness endpoint answers."""
    liveness = f"http://127.0.0.1:{_free_port()}/healthz"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO / "operator"), str(REPO / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                sys.executable,
                *profiler,
                "-m",
                "lepton_operator",
                "--standalone",
                "--metrics-port",
                "-1",
                "--liveness",
                liveness,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    ready_by = time.monotonic() + 120
    while time.monotonic() < ready_by:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(liveness) as response:
                if response.status == 200:
                    break
        await asyncio.sleep(0.2)
    return operator


async def run(jobs: int, workers: int, timeout_seconds: float, profile: Path | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lepton-bench-"))
    kubeconfig = tmp / "kubeconfig"
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.kube_emulator",
            "--kubeconfig",
            str(kubeconfig),
            "--apply",
            str(REPO / "deploy" / "base" / "crd-leptonjob.yaml"),
            "--namespace",
            "bench",
            "--namespace",
            "baseline",
            "--no-cel",
            "--history-limit",
            str(jobs * workers * 8),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    operator: subprocess.Popen[bytes] | None = None
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().split()[-1]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            baseline = await _post_all(
                session, f"{url}/api/v1/namespaces/baseline/pods", [_pod(f"p-{n}") for n in range(jobs * workers)]
            )

            operator = await _start_operator(session, kubeconfig, tmp / "operator.log", profile)
            idle = _proc_status(operator.pid)
            cpu_before = _cpu_seconds(operator.pid)

            counter = PodCounter()
            started = time.perf_counter()
            follower = asyncio.create_task(
                counter.follow(session, f"{url}/api/v1/namespaces/bench/pods", jobs * workers, started)
            )
            peak_rss = idle.get("VmRSS", 0)

            async def sample() -> None:
                nonlocal peak_rss
                while True:
                    peak_rss = max(peak_rss, _proc_status(operator.pid).get("VmRSS", 0))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample())
            submit = await _post_all(
                session,
                f"{url}/apis/lepton.ai/v1alpha1/namespaces/bench/leptonjobs",
                [_job(f"job-{n:04d}", workers) for n in range(jobs)],
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(follower, timeout_seconds)
            sampler.cancel()
            final = _proc_status(operator.pid)
            cpu = _cpu_seconds(operator.pid) - cpu_before

            operator.kill()
            operator.wait(30)
            restarted = time.perf_counter()
            operator = await _start_operator(session, kubeconfig, tmp / "operator-restarted.log", None)
            live_after_restart = time.perf_counter() - restarted
            after = PodCounter()
            follower = asyncio.create_task(
                after.follow(
                    session,
                    f"{url}/api/v1/namespaces/bench/pods?labelSelector=lepton.ai/job-name%3Dafter-restart",
                    workers,
                    restarted,
                )
            )
            await _post_all(
                session, f"{url}/apis/lepton.ai/v1alpha1/namespaces/bench/leptonjobs", [_job("after-restart", workers)]
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(follower, timeout_seconds)
            restart_cpu = _cpu_seconds(operator.pid)
            restart_rss = _proc_status(operator.pid)
    finally:
        for process in (operator, emulator):
            if process is not None and process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(30)
    return {
        "jobs": jobs,
        "workers": workers,
        "pods": jobs * workers,
        "baseline_post_pods_seconds": round(baseline, 2),
        "submit_jobs_seconds": round(submit, 2),
        "all_pods_exist_seconds": None if counter.first_all_exist is None else round(counter.first_all_exist, 2),
        "all_gangs_released_seconds": (
            None if counter.first_all_released is None else round(counter.first_all_released, 2)
        ),
        "pods_seen": len(counter.existing),
        "pods_released": len(counter.released),
        "operator_cpu_seconds": round(cpu, 1),
        "operator_rss_idle_mib": round(idle.get("VmRSS", 0) / 1024, 1),
        "operator_rss_peak_mib": round(max(peak_rss, final.get("VmHWM", 0)) / 1024, 1),
        "operator_rss_end_mib": round(final.get("VmRSS", 0) / 1024, 1),
        "restart_live_seconds": round(live_after_restart, 2),
        "restart_new_job_released_seconds": (
            None if after.first_all_released is None else round(after.first_all_released, 2)
        ),
        "restart_cpu_seconds": round(restart_cpu, 1),
        "restart_rss_mib": round(restart_rss.get("VmHWM", 0) / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="run the operator under cProfile, writing the stats here")
    args = parser.parse_args()
    result = asyncio.run(run(args.jobs, args.workers, args.timeout, args.profile))  # operator logs stay in /tmp
    exist = result["all_pods_exist_seconds"]
    ratio = f"{exist / result['baseline_post_pods_seconds']:.1f}x" if exist else "n/a"
    rows = [
        ("LeptonJobs x workers", f"{result['jobs']} x {result['workers']} = {result['pods']} pods"),
        ("baseline: POST the pods directly", f"{result['baseline_post_pods_seconds']} s"),
        ("submit the LeptonJobs", f"{result['submit_jobs_seconds']} s"),
        ("every worker pod exists", f"{exist} s ({ratio} the baseline)"),
        ("every gang released", f"{result['all_gangs_released_seconds']} s"),
        ("operator CPU time", f"{result['operator_cpu_seconds']} s"),
        (
            "operator RSS idle / peak / end",
            f"{result['operator_rss_idle_mib']} / {result['operator_rss_peak_mib']} / "
            f"{result['operator_rss_end_mib']} MiB",
        ),
        ("after SIGKILL + restart: live", f"{result['restart_live_seconds']} s"),
        (
            "  a new job's workers released",
            f"{result['restart_new_job_released_seconds']} s after the restart "
            f"(CPU {result['restart_cpu_seconds']} s, "
            f"RSS {result['restart_rss_mib']} MiB)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["pods_released"] == result["pods"] else 1


if __name__ == "__main__":
    sys.exit(main())
