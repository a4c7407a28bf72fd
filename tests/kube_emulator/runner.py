"""Run the emulator on 127.0.0.1 in a thread of its own, and point kubeconfigs at it.

A thread (with its own event loop) rather than the test's loop, so that the operator under test can run
in the same process through ``kopf.testing.KopfRunner`` (which blocks its caller) or as a separate
``lepton operator`` process, and synchronous tests can drive it with ``client.KubeClient``.

``EmulatorThread.call(fn)`` runs ``fn(emulator)`` on the emulator's loop (the store is not thread-safe)
and returns its result; use it to inspect state or add kmock reactions (fault injection).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import kmock
import yaml

from tests.kube_emulator.cluster import Autopilot
from tests.kube_emulator.server import KubeEmulator

T = TypeVar("T")


def kubeconfig_document(url: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "emulator", "user": {"token": "emulator-token"}}],
        "contexts": [
            {"name": "emulator", "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace}}
        ],
        "current-context": "emulator",
    }


def write_kubeconfig(path: Path, url: str, namespace: str = "default") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig_document(url, namespace)), encoding="utf-8")
    return path


class EmulatorThread:
    def __init__(
        self,
        *,
        autopilot: bool = False,
        start_delay_seconds: float = 0.0,
        bookmark_interval_seconds: float = 1.0,
        max_watch_seconds: float | None = None,
        record_requests: bool = True,
        history_limit: int = 100_000,
        port: int | None = None,
    ) -> None:
        self._options = {
            "bookmark_interval_seconds": bookmark_interval_seconds,
            "max_watch_seconds": max_watch_seconds,
            "record_requests": record_requests,
        }
        self._autopilot = autopilot
        self._start_delay_seconds = start_delay_seconds
        self._history_limit = history_limit
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-emulator", daemon=True)
        self.emulator: KubeEmulator | None = None
        self._server: kmock.Server | None = None
        self.url = ""

    def start(self) -> EmulatorThread:
        # The emulator shares the GIL with the test's own thread; CPython's default 5 ms switch interval
        # would add that much to every request the test makes. 0.5 ms keeps a request at about 3 ms.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._enter(), self._loop).result(timeout=30)
        return self

    async def _enter(self) -> None:
        from tests.kube_emulator.store import Store

        self.emulator = KubeEmulator(store=Store(history_limit=self._history_limit), **self._options)
        await self.emulator.__aenter__()
        self._server = kmock.Server(self.emulator, port=self._port)
        await self._server.__aenter__()
        self.url = str(self._server.url).rstrip("/")
        if self._autopilot:
            Autopilot(self.emulator.store, start_delay_seconds=self._start_delay_seconds).install()

    async def _exit(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        if self.emulator is not None:
            await self.emulator.__aexit__(None, None, None)

    def stop(self) -> None:
        if self._thread.is_alive():
            # A stuck stream must not hang the test session.
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._exit(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def call(self, fn: Callable[[KubeEmulator], T], timeout_seconds: float = 10.0) -> T:
        """Run ``fn(emulator)`` on the emulator's loop; a coroutine result is awaited there."""
        assert self.emulator is not None, "the emulator is not started"
        emulator = self.emulator

        async def run() -> T:
            result = fn(emulator)
            if inspect.isawaitable(result):
                return await result  # type: ignore[no-any-return]
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=timeout_seconds)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        return write_kubeconfig(path, self.url, namespace)


@contextmanager
def running_emulator(**options: Any) -> Iterator[EmulatorThread]:
    emulator = EmulatorThread(**options).start()
    try:
        yield emulator
    finally:
        emulator.stop()
