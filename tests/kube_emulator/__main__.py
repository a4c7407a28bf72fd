"""``python -m tests.kube_emulator``: the emulator as a process, for benchmarks and manual runs.

Prints ``READY <url>`` on stdout once it serves, writes a kubeconfig when asked, and runs until
SIGTERM/SIGINT. Run from the repository root (the package lives under ``tests/``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import kmock
import yaml

from tests.kube_emulator.cluster import Autopilot, node
from tests.kube_emulator.runner import write_kubeconfig
from tests.kube_emulator.server import KubeEmulator
from tests.kube_emulator.store import Store


async def serve(args: argparse.Namespace) -> None:
    emulator = KubeEmulator(
        store=Store(history_limit=args.history_limit, cel=not args.no_cel),
        record_requests=False,
        bookmark_interval_seconds=args.bookmark_interval,
    )
    async with emulator, kmock.Server(emulator, port=args.port) as server:
        store = emulator.store
        for path in args.apply:
            for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
                if doc:
                    info = store.find_resource(doc["kind"])
                    store.create(info, doc.get("metadata", {}).get("namespace"), doc)
        for ns in args.namespace:
            store.create(store.resource("", "v1", "namespaces"), None, {"metadata": {"name": ns}})
        for n in range(args.nodes):
            store.create(store.resource("", "v1", "nodes"), None, node(f"node-{n}", gpus=8))
        if args.autopilot:
            Autopilot(store).install()
        url = str(server.url).rstrip("/")
        if args.kubeconfig:
            write_kubeconfig(Path(args.kubeconfig), url)
        print(f"READY {url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--kubeconfig", help="write a kubeconfig pointing at the emulator here")
    parser.add_argument("--apply", action="append", default=[], help="YAML file of objects to create at start")
    parser.add_argument("--namespace", action="append", default=[], help="namespace to create at start")
    parser.add_argument("--nodes", type=int, default=0, help="Ready nodes (8 GPUs each) to create at start")
    parser.add_argument("--autopilot", action="store_true", help="bind ungated pods and mark them Running")
    parser.add_argument("--history-limit", type=int, default=200_000, help="watch events kept per resource")
    parser.add_argument(
        "--no-cel", action="store_true", help="skip CRD CEL rules (cel-python takes ms per rule; for load tests)"
    )
    parser.add_argument("--bookmark-interval", type=float, default=5.0, help="seconds between watch bookmarks")
    args = parser.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
