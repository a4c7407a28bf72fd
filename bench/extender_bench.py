"""Extender throughput and latency vs a bare aiohttp endpoint, measured in the same run.

What it does (all on 127.0.0.1, each side in its own process):

1. writes a 5,000-node inventory (mixed CPU and GPU node classes, 5,000 bound pods);
2. starts ``lepton extender --inventory`` (default settings: ``cost`` preset, burst compensation on,
   decision log at INFO into a file) and a *bare* aiohttp endpoint on the same event loop that parses
   the same payload with orjson and answers the same shapes (all nodes pass, all scores 0) — the floor
   any Python extender on this stack pays;
3. a load generator process (a plain HTTP/1.1 keep-alive socket client, so that it costs far less
   than either server: calibrated below) sends requests with 500 candidate nodes (what kube-scheduler
   sends at 5,000 nodes), by name (``nodeCacheCapable: true``) and as full ``v1.Node`` objects
   (``false``). **Every request is a new pod** (a fresh UID; demands rotate over CPU-only, 1, 2 and 8
   GPUs and several sizes; node windows rotate), so the extender assumes a new placement each time and
   its state changes between requests, as in a cluster. Cases:

   * ``prioritize`` and ``filter`` alone, distinct pods, node windows starting at random nodes (200
     distinct candidate lists, more than the extender's lookup cache keeps: every lookup is done anew);
   * ``prioritize/kube-rotation``: distinct pods over the windows kube-scheduler's rotation produces on a
     stable 5,000-node cluster (10 distinct lists, which the lookup cache keeps);
   * ``prioritize/shuffled-order``: random windows over a fixed random permutation of the nodes (a
     stable candidate order unrelated to names, as kube-scheduler's zone-interleaving node tree may give:
     the extender's learned order still applies, but every name lands somewhere else in memory);
   * ``prioritize/shuffled, relaid``: the same against an extender that checks every second whether to
     lay its arrays out in the order requests use, after 3 s of those requests (so it has relaid out, as
     a long-running extender has after its first check). The main extender here checks every 10
     minutes, so that ``shuffled-order`` shows what a fresh extender serves before its first check (a
     minute by default);
   * ``filter+prioritize``: what kube-scheduler does per pod — filter, then prioritize the same pod with
     the nodes that passed. The extender may reuse the filter's scoring there; the figure is per request
     (two per pod), and the bare endpoint answers the same pairs;
   * full-node payloads (``nodeCacheCapable: false``, ~300 KiB per request).

   Each at one connection, back to back (requests/s, p50, p99), and at ``--connections`` (requests/s).
4. calibration: the bare endpoint against a second bare endpoint (ratio should be 1.00: the spread is the
   measurement's noise), and the load generator's own cost per request.

Besides requests/s, each server's CPU time per request is read from ``/proc`` (its ratio, bare / ours, is
the throughput ratio a dedicated core would give, and is steadier on a shared machine). With ``--pin``
(default on a machine with 2+ CPUs) the servers run on CPU 0 and the load generator on
CPU 1 (``taskset``), so client and server do not take turns on one core. The load average is reported;
``--repeat`` runs everything several times and reports the median of each figure.

Run: ``.venv/bin/python bench/extender_bench.py [--seconds 5] [--repeat 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
GPU_MODELS = ("A100", "H100", "V100M32", "T4", "A10")
CPU_CLASSES = ("cpu-small", "cpu-large", "cpu-xlarge")
# (cpu, memory, GPUs): what the rotating pods ask for.
DEMANDS = (
    ("500m", "2Gi", 0),
    ("4", "16Gi", 1),
    ("2", "8Gi", 0),
    ("8", "64Gi", 2),
    ("250m", "512Mi", 0),
    ("16", "128Gi", 8),
    ("1", "4Gi", 1),
)
UID_MARK = b"@@UID@@"


def make_node(i: int, rng: random.Random) -> dict[str, Any]:
    name = f"node-{i:05d}"
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % 3}"}
    alloc = {"cpu": "63500m", "memory": "251Gi", "pods": "110", "ephemeral-storage": "900Gi"}
    if rng.random() < 0.4:
        model = rng.choice(GPU_MODELS)
        labels["lepton.ai/gpu-model"] = model
        alloc["nvidia.com/gpu"] = "8" if model in ("A100", "H100", "V100M32") else "2"
        alloc["cpu"] = "95"
    else:
        labels["lepton.ai/node-class"] = rng.choice(CPU_CLASSES)
    if rng.random() < 0.3:
        labels["lepton.ai/autoscaled"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels, "resourceVersion": "100"},
        "spec": {"podCIDR": f"10.{i // 250}.{i % 250}.0/24"},
        "status": {
            "allocatable": alloc,
            "capacity": alloc,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.30.2", "architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def make_pod(
    name: str, cpu: str, memory: str, gpus: int, node: str | None, *, uid: str | None = None
) -> dict[str, Any]:
    """A Pod as kube-scheduler sends it: the API server's defaults filled in (~2 KiB of JSON)."""
    requests = {"cpu": cpu, "memory": memory}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    job = name.rsplit("-", 1)[0]
    spec: dict[str, Any] = {
        "volumes": [
            {
                "name": "kube-api-access",
                "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]},
            }
        ],
        "containers": [
            {
                "name": "main",
                "image": "trainer:1",
                "command": ["torchrun"],
                "args": ["train.py"],
                "env": [{"name": "MASTER_ADDR", "value": f"{job}-0"}, {"name": "WORLD_SIZE", "value": "4"}],
                "resources": {"requests": requests, "limits": requests},
                "volumeMounts": [{"name": "kube-api-access", "readOnly": True, "mountPath": "/var/run/secrets"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }
        ],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "lepton-scheduler",
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
        "priorityClassName": "lepton-normal",
        "priority": 1000,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": uid or f"uid-{name}",
            "resourceVersion": "123456",
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "labels": {"lepton.ai/job-name": job, "lepton.ai/worker-index": "0"},
            "ownerReferences": [
                {"apiVersion": "lepton.ai/v1alpha1", "kind": "LeptonJob", "name": job, "uid": f"uid-{job}"}
            ],
        },
        "spec": spec,
        "status": {"phase": "Running" if node else "Pending", "qosClass": "Guaranteed"},
    }


def write_inventory(path: Path, nodes: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = [make_node(i, rng) for i in range(nodes)]
    hosts = [items[rng.randrange(nodes)]["metadata"]["name"] for _ in range(nodes)]
    pods = [make_pod(f"running-{i}", "2", "8Gi", 0, host) for i, host in enumerate(hosts)]
    path.write_bytes(orjson.dumps({"apiVersion": "v1", "kind": "List", "items": items + pods}))
    return items


def payloads(
    nodes: list[dict[str, Any]],
    candidates: int,
    full: bool,
    seed: int,
    *,
    count: int = 200,
    uid: bytes | None = None,
    aligned: bool = False,
    shuffled: bool = False,
) -> list[bytes]:
    """Request bodies over node windows and rotating demands. Windows start at random nodes (``count``
    distinct lists: more than the extender's lookup cache holds), or, with ``aligned``, where
    kube-scheduler's rotation puts them on a stable cluster where every node is feasible (0, 500, 1000,
    …: ``len(nodes) / candidates`` distinct lists). With ``uid`` the pod's UID is that marker, for the
    load generator to replace with a fresh UID per request. With ``shuffled`` the windows walk a fixed
    random permutation of the nodes instead of their name order (kube-scheduler's node tree interleaves
    zones, so its order need not follow names: positions then jump all over the extender's tables)."""
    rng = random.Random(seed)
    if shuffled:
        nodes = nodes[:]
        rng.shuffle(nodes)
    out = []
    for k in range(count):
        start = (k * candidates) % len(nodes) if aligned else rng.randrange(len(nodes))
        # A rotating window of nodes, as kube-scheduler's percentageOfNodesToScore walks the node list.
        chosen = [nodes[(start + j) % len(nodes)] for j in range(candidates)]
        cpu, memory, gpus = DEMANDS[k % len(DEMANDS)]
        pod = make_pod(f"bench-{k}", cpu, memory, gpus, None, uid=None if uid is None else uid.decode())
        if full:
            node_objs = [{key: v for key, v in n.items() if key not in ("apiVersion", "kind")} for n in chosen]
            args = {"Pod": pod, "Nodes": {"metadata": {}, "items": node_objs}, "NodeNames": None}
        else:
            args = {"Pod": pod, "Nodes": None, "NodeNames": [n["metadata"]["name"] for n in chosen]}
        out.append(orjson.dumps(args))
    return out


# --- the bare endpoint --------------------------------------------------------------------------


def serve_bare(port: int, event_loop: str) -> None:
    """Parse the payload with orjson and answer the same shapes, with no scoring at all."""
    from aiohttp import web

    async def prioritize(request: web.Request) -> web.Response:
        args = orjson.loads(await request.read())
        names = args["NodeNames"]
        if names is None:
            names = [n["metadata"]["name"] for n in args["Nodes"]["items"]]
        answer = orjson.dumps([{"Host": n, "Score": 0} for n in names])
        return web.Response(body=answer, content_type="application/json")

    async def filter_(request: web.Request) -> web.Response:
        args = orjson.loads(await request.read())
        names = args["NodeNames"]
        nodes = args["Nodes"]
        body = {
            "Nodes": None if nodes is None else {"metadata": {}, "items": nodes["items"]},
            "NodeNames": names,
            "FailedNodes": {},
            "FailedAndUnresolvableNodes": None,
            "Error": "",
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/prioritize", prioritize)
    app.router.add_post("/filter", filter_)
    app.router.add_get("/readyz", healthz)
    loop = None
    if event_loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


# --- the load generator --------------------------------------------------------------------------


class Connection:
    """One HTTP/1.1 keep-alive connection with a blocking socket: send a request, read one response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        self.sock.sendall(head % (path, len(body)) + body)
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                header = buf[:end].lower()
                at = header.find(b"content-length:")
                length = int(header[at + 15 : header.find(b"\r\n", at) if b"\r\n" in header[at:] else None])
                if len(buf) >= end + 4 + length:
                    self.buf = buf[end + 4 + length :]
                    return int(buf[9:12]), buf[end + 4 : end + 4 + length]
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk


def _bodies_for(templates: list[bytes], k: int, run: str) -> bytes:
    """Template ``k`` with a fresh pod UID (unique per request, in this run)."""
    return templates[k % len(templates)].replace(UID_MARK, b"%s-%d" % (run.encode(), k))


def _filtered_names(answer: bytes, body: bytes) -> bytes:
    """Prioritize's body after filter: the same pod, the nodes that passed (as kube-scheduler sends)."""
    args = orjson.loads(body)
    result = orjson.loads(answer)
    if result.get("NodeNames") is not None:
        args["NodeNames"] = result["NodeNames"]
    return orjson.dumps(args)


def run_load(
    port: int, verb: str, payload_file: str, seconds: float, connections: int, *, run: str
) -> dict[str, float]:
    """Back-to-back requests on ``connections`` connections (threads; each waits on its own socket)."""
    import threading

    templates = [b.encode() for b in orjson.loads(Path(payload_file).read_bytes())]
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    sent = [0] * connections
    stop = [0.0]
    perf = time.perf_counter

    def worker(c: int, measure: bool) -> None:
        conn = Connection(port)
        k = c
        lat = latencies[c]
        while perf() < stop[0]:
            body = _bodies_for(templates, k, run + ("m" if measure else "w"))
            k += connections
            sent[c] += 2 if verb == "pair" else 1
            t0 = perf()
            if verb == "pair":
                status, answer = conn.request(b"/filter", body)
                t1 = perf()
                second = _filtered_names(answer, body)
                t2 = perf()
                status2, _ = conn.request(b"/prioritize", second)
                if measure:
                    lat.append(t1 - t0)
                    lat.append(perf() - t2)
                errors[c] += (status != 200) + (status2 != 200)
            else:
                status, _ = conn.request(b"/" + verb.encode(), body)
                if measure:
                    lat.append(perf() - t0)
                errors[c] += status != 200
        conn.sock.close()

    for measure, duration in ((False, min(1.0, seconds / 4)), (True, seconds)):
        stop[0] = perf() + duration
        started = perf()
        threads = [threading.Thread(target=worker, args=(c, measure)) for c in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = perf() - started
    flat = sorted(x for lat in latencies for x in lat)
    q = statistics.quantiles(flat, n=100) if len(flat) > 1 else [flat[0]] * 99
    return {
        "requests_per_second": len(flat) / elapsed,
        "p50_ms": q[49] * 1e3,
        "p99_ms": q[98] * 1e3,
        "requests": float(len(flat)),
        "requests_with_warm_up": float(sum(sent)),
        "errors": float(sum(errors)),
    }


def client_cost_us(templates: list[bytes], run: str) -> float:
    """The load generator's own CPU per request (building the body and the request bytes), in µs."""
    n = 2000
    t0 = time.process_time()
    for k in range(n):
        body = _bodies_for(templates, k, run)
        _ = b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    return (time.process_time() - t0) / n * 1e6


# --- orchestration -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 90.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become ready")


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def load(
    port: int, verb: str, bodies: list[bytes], seconds: float, connections: int, *, tmp: Path, cpu: int | None, run: str
) -> dict[str, float]:
    """Run the load generator in its own process (the server and the client never share an interpreter)."""
    pf = tmp / f"payload-{abs(hash(bodies[0]))}.json"
    if not pf.exists():
        pf.write_bytes(orjson.dumps([b.decode() for b in bodies]))
    cmd = [sys.executable, __file__, "--load", str(port), verb, str(pf), str(seconds), str(connections), run]
    out = subprocess.run(pinned(cmd, cpu), check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_case(
    ports: dict[str, int],
    verb: str,
    bodies: list[bytes],
    opts: argparse.Namespace,
    *,
    tmp: Path,
    run: str,
    pids: dict[str, int],
) -> dict[str, dict[str, float]]:
    client_cpu = 1 if opts.pin else None
    out: dict[str, dict[str, float]] = {}
    for side, port in ports.items():
        cpu0 = cpu_seconds(pids[side])
        one = load(port, verb, bodies, opts.seconds, 1, tmp=tmp, cpu=client_cpu, run=f"{run}-{side}-1")
        cpu1 = cpu_seconds(pids[side])
        many = load(port, verb, bodies, opts.seconds, opts.connections, tmp=tmp, cpu=client_cpu, run=f"{run}-{side}-n")
        out[side] = {
            "rps_1conn": one["requests_per_second"],
            "p50_ms": one["p50_ms"],
            "p99_ms": one["p99_ms"],
            "rps_nconn": many["requests_per_second"],
            "errors": one["errors"] + many["errors"],
            # Server CPU per request at one connection: steadier than throughput on a shared machine
            # (other processes taking the core slow the clock, not the work).
            "server_cpu_us": (cpu1 - cpu0) / max(one["requests_with_warm_up"], 1.0) * 1e6,
        }
    return out


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every figure over the repeats (same nested keys)."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_of([r[k] for r in runs]) for k in first}
    return statistics.median(runs)  # type: ignore[arg-type]


def print_table(results: dict[str, dict[str, dict[str, float]]], connections: int, pairs: dict[str, str]) -> None:
    header = f"{'case':<30}{'side':<10}{'req/s 1c':>10}{'p50 ms':>9}{'p99 ms':>9}{f'req/s {connections}c':>11}"
    print(header + f"{'cpu µs/req':>12}{'errors':>8}")
    for label, sides in results.items():
        for side, r in sides.items():
            print(
                f"{label:<30}{side:<10}{r['rps_1conn']:>10.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
                f"{r['rps_nconn']:>11.0f}{r['server_cpu_us']:>12.0f}{r['errors']:>8.0f}"
            )
        ours, base = pairs.get(label, "extender"), "bare"
        if ours in sides and base in sides:
            one = sides[ours]["rps_1conn"] / sides[base]["rps_1conn"]
            par = sides[ours]["rps_nconn"] / sides[base]["rps_nconn"]
            cpu = sides[base]["server_cpu_us"] / sides[ours]["server_cpu_us"]
            print(f"{'':<30}{'ratio':<10}{one:>10.2f}{'':>18}{par:>11.2f}{cpu:>12.2f}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        a = sys.argv[2:]
        print(json.dumps(run_load(int(a[0]), a[1], a[2], float(a[3]), int(a[4]), run=a[5])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per case and side (default 5)")
    parser.add_argument("--repeat", type=int, default=1, help="run everything this many times; report medians")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4, help="for the throughput case (default 4)")
    parser.add_argument("--event-loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=(os.cpu_count() or 1) >= 2)
    parser.add_argument("--skip-full", action="store_true", help="skip the full-node payload cases")
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures and the medians")
    opts = parser.parse_args()
    loop = opts.event_loop
    if loop == "auto":
        try:
            import uvloop  # noqa: F401

            loop = "uvloop"
        except ImportError:
            loop = "asyncio"

    with tempfile.TemporaryDirectory(prefix="lepton-bench-") as d:
        tmp = Path(d)
        inv = tmp / "inventory.json"
        nodes = write_inventory(inv, opts.nodes, seed=1)
        by_name = payloads(nodes, opts.candidates, full=False, seed=2, uid=UID_MARK)
        rotation = payloads(nodes, opts.candidates, full=False, seed=3, uid=UID_MARK, aligned=True)
        shuffled = payloads(nodes, opts.candidates, full=False, seed=4, uid=UID_MARK, shuffled=True)
        full = [] if opts.skip_full else payloads(nodes, opts.candidates, full=True, seed=2, count=40, uid=UID_MARK)
        ports = {"bare": free_port(), "bare-2": free_port(), "extender": free_port(), "relaid": free_port()}
        log = (tmp / "extender.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        server_cpu = 0 if opts.pin else None
        extender_cmd = [sys.executable, "-m", "lepton_cli.main", "extender", "--inventory", str(inv)]
        extender_cmd += ["--host", "127.0.0.1", "--port", str(ports["extender"]), "--event-loop", loop]
        # The main extender checks every 10 minutes whether to follow the candidates' order (the default is
        # every minute), so that the shuffled-order case shows a fresh extender before its first check; the
        # same extender checking every second is relaid out during that case's warm-up.
        relaid_cmd = [*extender_cmd, "--relayout-interval-seconds", "1"]
        extender_cmd += ["--relayout-interval-seconds", "600"]
        procs = [subprocess.Popen(pinned(extender_cmd, server_cpu), stdout=log, stderr=log, env=env, cwd=REPO)]
        pids = {"extender": procs[0].pid}
        relaid_cmd[relaid_cmd.index("--port") + 1] = str(ports["relaid"])
        procs.append(subprocess.Popen(pinned(relaid_cmd, server_cpu), stdout=log, stderr=log, env=env, cwd=REPO))
        pids["relaid"] = procs[-1].pid
        for side in ("bare", "bare-2"):
            cmd = [sys.executable, __file__, "--serve-bare", str(ports[side]), loop]
            procs.append(subprocess.Popen(pinned(cmd, server_cpu), env=env, cwd=REPO))
            pids[side] = procs[-1].pid
        runs: list[dict[str, Any]] = []
        load_averages = [os.getloadavg()[0]]
        try:
            for port in ports.values():
                wait_ready(port)
            cases: list[tuple[str, str, list[bytes], tuple[str, ...]]] = [
                ("calibration: bare vs bare", "prioritize", by_name, ("bare", "bare-2")),
                ("prioritize/names", "prioritize", by_name, ("bare", "extender")),
                ("prioritize/kube-rotation", "prioritize", rotation, ("bare", "extender")),
                ("prioritize/shuffled-order", "prioritize", shuffled, ("bare", "extender")),
                ("prioritize/shuffled, relaid", "prioritize", shuffled, ("bare", "relaid")),
                ("filter/names", "filter", by_name, ("bare", "extender")),
                ("filter+prioritize/names", "pair", by_name, ("bare", "extender")),
            ]
            if full:
                cases += [
                    ("prioritize/full-nodes", "prioritize", full, ("bare", "extender")),
                    ("filter/full-nodes", "filter", full, ("bare", "extender")),
                ]
            for r in range(opts.repeat):
                results: dict[str, dict[str, dict[str, float]]] = {}
                for label, verb, bodies, sides in cases:
                    run = f"r{r}-{label.split('/')[0].replace(' ', '')}-{verb}"
                    if "relaid" in sides and r == 0:
                        # Long enough for it to learn the order and check (every second) before measuring.
                        load(ports["relaid"], verb, bodies, 3.0, 1, tmp=tmp, cpu=1 if opts.pin else None, run="learn")
                    results[label] = measure_case(
                        {s: ports[s] for s in sides}, verb, bodies, opts, tmp=tmp, run=run, pids=pids
                    )
                load_averages.append(os.getloadavg()[0])
                runs.append(results)
                print(f"run {r + 1}/{opts.repeat} done (load average {load_averages[-1]:.2f})", file=sys.stderr)
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
            log.close()
        relayouts = (tmp / "extender.log").read_text(errors="replace").count("scoring arrays laid out")
        client_us = client_cost_us(by_name, "cost")
    medians = median_of(runs)
    if opts.json is not None:
        opts.json.write_text(
            json.dumps({"runs": runs, "median": medians, "load_averages": load_averages, "event_loop": loop}, indent=2)
        )
    print(
        f"{opts.nodes} nodes, {opts.candidates} candidates per request, {opts.seconds:g} s per case and side, "
        f"median of {opts.repeat} run(s); payload {len(by_name[0]) / 1024:.0f} KiB by name"
        + (f", {len(full[0]) / 1024:.0f} KiB full nodes" if full else "")
        + f"; event loop {loop}; pinned: {opts.pin}; load generator {client_us:.0f} µs CPU per request"
    )
    print(f"load average (1 min) during the runs: {', '.join(f'{x:.2f}' for x in load_averages)}")
    print(f"relayouts logged by the extenders: {relayouts} (expected: 1, by the 'relaid' one)")
    ours = {"calibration: bare vs bare": "bare-2", "prioritize/shuffled, relaid": "relaid"}
    print_table(medians, opts.connections, ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
