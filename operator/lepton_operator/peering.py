"""Is this replica the active one under kopf peering? For the work kopf does not pause by itself.

kopf pauses its own handlers and daemons while another live replica in the peering object has a higher
priority (or the same one), but it tells nobody: the toggle it keeps (``operator_paused``, a
``ToggleSet`` local to ``kopf._core.reactor.running.spawn_tasks``) is not reachable from handlers, and
there is no pause/resume activity handler (kopf 1.45: startup, cleanup, login, probe). Live cost
accounting runs its own loop outside kopf's handlers, so this module works the state out as kopf does,
from the same peering object, as the same identity (``app.run`` hands kopf the identity used here) and by
the same rule (``kopf._core.engines.peering.process_peering_event`` and ``orchestration.adjust_tasks``):

* standalone (``--standalone``): always active;
* no peering object (its CRD or the object is absent): paused when peering is mandatory
  (``--peering NAME``), active otherwise (kopf then runs without peering);
* otherwise paused while any *other* live peer (``lastseen + lifetime`` still ahead) has a higher
  priority, or the same priority (kopf pauses every replica that shares one).

It polls the object (one GET every ``poll_seconds``: a quarter of the peering lifetime, 1 to 5 s) rather
than watching it, since a peer's death changes nothing in the object until its lifetime runs out; so it
may lag kopf by one poll either way. Accounting tolerates that: a standby that writes a moment too long
is fenced by resourceVersion preconditions, and an active replica that starts a moment late recomputes
from the jobs' watermarks. The pod cache does not depend on this module: it follows kopf's own job
daemons (``app``), which kopf stops and restarts itself.

Neighbours: ``app`` (builds and runs it; ``OperatorContext.activity``), ``lepton_operator.accounting``
(idles on it), ``kube`` (HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lepton_operator.kube import KubeClient, KubeError, NotFound, group_path

logger = logging.getLogger(__name__)

PEERING_GROUPS = ("kopf.dev", "zalando.org")
"""Where kopf looks for its peering CRDs, current first (zalando.org is kopf's legacy group)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """One replica's entry in a peering object's ``status`` (what kopf's keep-alive writes)."""

    identity: str
    priority: int
    lifetime_seconds: float
    lastseen: float | None
    """Unix seconds; None when the entry has none (kopf then takes it as seen just now)."""

    def alive(self, now: float) -> bool:
        seen = now if self.lastseen is None else self.lastseen
        return seen + self.lifetime_seconds > now


def parse_peers(status: Any) -> list[Peer]:
    """The entries of a peering object's ``status``, read as kopf reads them (malformed entries skipped)."""
    peers: list[Peer] = []
    if not isinstance(status, Mapping):
        return peers
    for identity, info in status.items():
        if not isinstance(info, Mapping):
            continue
        try:
            priority = int(info.get("priority", 0))
            lifetime = float(int(info.get("lifetime", 60)))
        except (TypeError, ValueError, OverflowError):
            continue
        lastseen: float | None = None
        raw = info.get("lastseen")
        if raw is not None:
            try:
                moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                continue
            lastseen = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # kopf: naive = UTC
        peers.append(Peer(str(identity), priority, lifetime, lastseen))
    return peers


def blocking_peers(peers: Iterable[Peer], *, identity: str, priority: int, now: float) -> list[Peer]:
    """Live peers other than us with a priority at least ours: while there is one, kopf pauses us."""
    return [p for p in peers if p.identity != identity and p.alive(now) and p.priority >= priority]


@dataclass(frozen=True, slots=True)
class PeeringSettings:
    """kopf's peering settings as the operator gave them to kopf (``app.configure_kopf``)."""

    identity: str
    """This replica's identity in the peering object (``app.run`` passes the same one to kopf)."""
    name: str = "lepton-operator"
    priority: int = 0
    lifetime_seconds: float = 60.0
    standalone: bool = False
    mandatory: bool = False
    """``--peering NAME``: kopf stays paused while the peering object is missing."""
    namespaces: tuple[str, ...] = ()
    """Served namespaces (namespaced peering objects); empty: cluster-wide (``ClusterKopfPeering``)."""

    @classmethod
    def from_kopf(cls, peering: Any, *, identity: str, namespaces: Iterable[str] = ()) -> PeeringSettings:
        """From ``kopf.OperatorSettings().peering`` after the operator configured it."""
        return cls(
            identity=identity,
            name=str(peering.name),
            priority=int(peering.priority),
            lifetime_seconds=float(peering.lifetime),
            standalone=bool(peering.standalone),
            mandatory=bool(peering.mandatory),
            namespaces=() if peering.clusterwide else tuple(namespaces),
        )


class PeeringGate:
    """``is_active()`` / ``wait_for(active)``: this replica's peering state, refreshed every poll."""

    def __init__(
        self,
        kube: KubeClient,
        settings: PeeringSettings,
        *,
        poll_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.poll_seconds = (
            poll_seconds if poll_seconds is not None else min(5.0, max(1.0, settings.lifetime_seconds / 4.0))
        )
        self.clock = clock
        self._active = asyncio.Event()
        self._paused = asyncio.Event()
        # Until the first look: as kopf starts (its conflict toggles start "on" only for mandatory peering).
        self._set(not settings.mandatory or settings.standalone)
        self.reason = "standalone" if settings.standalone else "not checked yet"
        self._self_seen = False
        self._started = time.monotonic()

    def is_active(self) -> bool:
        return self._active.is_set()

    async def wait_for(self, active: bool) -> None:
        await (self._active if active else self._paused).wait()

    def _set(self, active: bool) -> None:
        if active:
            self._paused.clear()
            self._active.set()
        else:
            self._active.clear()
            self._paused.set()

    async def check(self) -> bool:
        """Look at the peering object(s) once and update the state; returns whether we are active."""
        s = self.settings
        if s.standalone:
            return True
        try:
            statuses = await self._peering_statuses()
        except KubeError as exc:  # keep the last verdict: an API hiccup must not flip replicas
            logger.warning("peering %r: could not read the peering object, keeping the last state: %s", s.name, exc)
            return self.is_active()
        now = self.clock()
        active, reasons = True, []
        for where, status in statuses:
            if status is None:
                if s.mandatory:
                    active = False
                    reasons.append(f"peering object {s.name!r} {where} not found (peering is mandatory)")
                continue
            peers = parse_peers(status)
            self._self_seen = self._self_seen or any(p.identity == s.identity for p in peers)
            blockers = blocking_peers(peers, identity=s.identity, priority=s.priority, now=now)
            if blockers:
                active = False
                reasons.append(
                    f"{where}: "
                    + ", ".join(
                        f"{p.identity} (priority {p.priority})" for p in sorted(blockers, key=lambda p: -p.priority)
                    )
                )
        if not self._self_seen and time.monotonic() - self._started > 2 * s.lifetime_seconds and statuses:
            self._self_seen = True  # say it once
            logger.warning(
                "peering %r: this replica's identity %r is not in the peering object; kopf must run with the same "
                "identity (lepton operator passes it; set POD_ID when embedding) or accounting may stay paused",
                s.name,
                s.identity,
            )
        reason = "active" if active else "paused in favour of " + "; ".join(reasons)
        if active != self.is_active() or reason != self.reason:
            logger.info("peering %r: %s", s.name, reason)
        self.reason = reason
        self._set(active)
        return active

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            with contextlib.suppress(Exception):  # logged in check(); one bad poll must not end the gate
                await self.check()
            await asyncio.sleep(self.poll_seconds)

    async def _peering_statuses(self) -> list[tuple[str, Mapping[str, Any] | None]]:
        s = self.settings
        scopes: tuple[str | None, ...] = s.namespaces or (None,)
        found: list[tuple[str, Mapping[str, Any] | None]] = []
        for namespace in scopes:
            where = f"in namespace {namespace!r}" if namespace else "cluster-wide"
            plural = "kopfpeerings" if namespace else "clusterkopfpeerings"
            status: Mapping[str, Any] | None = None
            for group in PEERING_GROUPS:
                try:
                    body = await self.kube.get(group_path(group, "v1", plural, namespace, s.name))
                except NotFound:
                    continue
                raw = body.get("status") if isinstance(body, Mapping) else None
                status = raw if isinstance(raw, Mapping) else {}
                break
            found.append((where, status))
        return found


class AlwaysActive:
    """The activity of a standalone operator (and of tests that run the loop without peering)."""

    def is_active(self) -> bool:
        return True

    async def wait_for(self, active: bool) -> None:
        if not active:
            await asyncio.Event().wait()  # never paused
