"""Where the snapshot's nodes and pods come from: a static inventory, or a Kubernetes list + watch.

A ``ClusterSource`` is anything with ``async run(sink)`` that feeds a ``ClusterSink`` (the snapshot)
until cancelled. Tests and offline what-ifs use ``InventorySource``; in a cluster, ``KubernetesSource``
lists and watches nodes and pods with the official ``kubernetes`` client.

``KubernetesSource`` runs the client's blocking HTTP calls in worker threads and hands every event to
the event loop (``call_soon_threadsafe``), so the snapshot is only ever touched on the loop's thread.
It reads raw JSON (``_preload_content=False`` + orjson) instead of the client's model objects: the
same camelCase dicts the extender receives from kube-scheduler, and several times faster for large
pod lists. A watch that expires (410 Gone) re-lists; other errors back off and retry.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from lepton_core.kube.objects import NodeInfo, ObjectError, PodInfo, get, read_node, read_pod
from lepton_extender.inventory import Inventory, load_inventory

log = logging.getLogger("lepton.extender.sources")


class ClusterSink(Protocol):
    def upsert_node(self, info: NodeInfo) -> None: ...
    def delete_node(self, name: str) -> None: ...
    def upsert_pod(self, pod: PodInfo) -> None: ...
    def delete_pod(self, uid: str) -> None: ...
    def mark_synced(self) -> None: ...
    def retain_nodes(self, names: set[str]) -> None: ...
    def retain_pods(self, uids: set[str]) -> None: ...


class ClusterSource(Protocol):
    async def run(self, sink: ClusterSink) -> None:
        """Feed ``sink`` until cancelled; call ``sink.mark_synced()`` once everything was listed."""


class InventorySource:
    """Nodes and pods from a file (or an already-parsed ``Inventory``), loaded once."""

    def __init__(self, inventory: Path | Inventory) -> None:
        self._inventory = inventory

    def load(self) -> Inventory:
        inv = self._inventory
        return load_inventory(inv) if isinstance(inv, Path) else inv

    async def run(self, sink: ClusterSink) -> None:
        inv = self.load()
        for node in inv.nodes:
            sink.upsert_node(node)
        for pod in inv.pods:
            sink.upsert_pod(pod)
        sink.mark_synced()
        log.info("inventory: %d nodes, %d pods (%d other items skipped)", len(inv.nodes), len(inv.pods), inv.skipped)
        await asyncio.Event().wait()  # nothing more will come


class _Gone(Exception):
    """The watch's resourceVersion expired: list again."""


class KubernetesSource:
    """List + watch nodes and pods with the official client (in-cluster config, else kubeconfig)."""

    def __init__(
        self,
        api_factory: Callable[[], Any] | None = None,
        watch_timeout_seconds: int = 300,
        retry_seconds: float = 5.0,
    ) -> None:
        self._api_factory = api_factory or _default_core_api
        self._watch_timeout = watch_timeout_seconds
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[Any] = set()

    async def run(self, sink: ClusterSink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                api = await asyncio.to_thread(self._api_factory)
                break
            except Exception as exc:  # no kubeconfig, no service account: say so, keep trying, stay unready
                log.error("cannot reach Kubernetes (%s); use --inventory to run without a cluster", exc)
                await asyncio.sleep(max(self._retry_seconds, 1.0))
        streams = [
            _Stream(
                "nodes",
                api.list_node,
                _Handlers(
                    read=read_node,
                    upsert=sink.upsert_node,
                    delete=lambda obj: sink.delete_node(read_node(obj).name),
                    key=lambda info: info.name,
                    retain=sink.retain_nodes,
                ),
                asyncio.Event(),
            ),
            _Stream(
                "pods",
                api.list_pod_for_all_namespaces,
                _Handlers(
                    read=read_pod,
                    upsert=sink.upsert_pod,
                    delete=lambda obj: sink.delete_pod(read_pod(obj).uid),
                    key=lambda info: info.uid,
                    retain=sink.retain_pods,
                ),
                asyncio.Event(),
            ),
        ]
        # Daemon threads, not the default executor: a watch blocks in a read for minutes, and shutting
        # the loop down must not wait for it (stop() closes the open responses to end it early).
        for stream in streams:
            threading.Thread(
                target=self._loop, args=(stream, loop), name=f"lepton-watch-{stream.what}", daemon=True
            ).start()
        try:
            for stream in streams:
                await stream.synced.wait()
            sink.mark_synced()
            await asyncio.Event().wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """End the watches: shut their sockets down so blocked reads return at once.

        ``resp.close()`` from another thread would wait for the reader's buffer lock (the read blocks
        for minutes); a socket shutdown does not, and the reader sees end-of-stream.
        """
        self._stop.set()
        with self._lock:
            open_ = list(self._open)
        for resp in open_:
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed: nothing to end
                log.debug("watch socket already closed", exc_info=True)

    def _loop(self, stream: _Stream, loop: asyncio.AbstractEventLoop) -> None:
        def post(fn: Callable[..., None], *args: Any) -> None:
            loop.call_soon_threadsafe(fn, *args)

        while not self._stop.is_set():
            try:
                version = self._list(stream, post)
                loop.call_soon_threadsafe(stream.synced.set)
                while not self._stop.is_set():
                    version = self._watch(stream, post, version)
            except _Gone:
                log.info("%s watch expired; listing again", stream.what)
            except Exception as exc:  # network errors, API errors: back off and list again
                if self._stop.is_set():
                    return
                log.warning("%s watch failed (%s); retrying in %.0f s", stream.what, exc, self._retry_seconds)
                self._stop.wait(self._retry_seconds)

    def _list(self, stream: _Stream, post: Callable[..., None]) -> str:
        resp = stream.list_fn(_preload_content=False)
        doc = orjson.loads(resp.data)
        items = get(doc, "items") or []
        keys: set[str] = set()
        for i, obj in enumerate(items):
            key = stream.handlers.post_upsert(post, obj, f"{stream.what}[{i}]")
            if key is not None:
                keys.add(key)
        # Objects deleted while we were not watching (after a 410 or an outage) disappear here.
        post(stream.handlers.retain, keys)
        return str(get(get(doc, "metadata") or {}, "resourceVersion") or "")

    def _watch(self, stream: _Stream, post: Callable[..., None], version: str) -> str:
        resp = stream.list_fn(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
        )
        with self._lock:
            self._open.add(resp)
        try:
            for line in _lines(resp):
                if self._stop.is_set():
                    break
                event = orjson.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = get(get(obj, "metadata") or {}, "resourceVersion")
                if rv:
                    version = str(rv)
                if kind in ("ADDED", "MODIFIED"):
                    stream.handlers.post_upsert(post, obj, f"{stream.what} watch")
                elif kind == "DELETED":
                    stream.handlers.post_delete(post, obj)
        finally:
            with self._lock:
                self._open.discard(resp)
            resp.release_conn()
        return version


@dataclass(frozen=True, slots=True)
class _Stream:
    what: str
    list_fn: Callable[..., Any]
    handlers: _Handlers
    synced: asyncio.Event


def _lines(resp: Any) -> Any:
    """Newline-delimited JSON events from a streaming urllib3 response."""
    buffer = b""
    for chunk in resp.stream(65536, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


@dataclass(frozen=True, slots=True)
class _Handlers:
    read: Callable[..., Any]
    upsert: Callable[[Any], None]
    delete: Callable[[Any], None]
    key: Callable[[Any], str]
    retain: Callable[[set[str]], None]

    def post_upsert(self, post: Callable[..., None], obj: Any, where: str) -> str | None:
        try:
            info = self.read(obj, where)
        except ObjectError as exc:
            log.warning("skipping unreadable object: %s", exc)
            return None
        post(self.upsert, info)
        return str(self.key(info))

    def post_delete(self, post: Callable[..., None], obj: Any) -> None:
        post(self._safe_delete, obj)

    def _safe_delete(self, obj: Any) -> None:
        try:
            self.delete(obj)
        except ObjectError as exc:
            log.warning("skipping unreadable deleted object: %s", exc)


def _default_core_api() -> Any:
    """``CoreV1Api`` from the in-cluster service account, else the local kubeconfig."""
    # The client is slow to import, and only a cluster run needs it.
    from kubernetes import client, config  # noqa: PLC0415

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CoreV1Api()
