"""Filter and prioritize: the extender's decisions, from the snapshot through the shared scoring.

Neighbours: ``app`` parses requests (``wire``) and calls :class:`Extender`; the snapshot
(``snapshot``) supplies the arrays; ``lepton_core.scoring.score_nodes`` does the arithmetic (the same
function the simulator replays). Each decision is kept for ``/debug/decisions`` and logged as one
structured JSON line (logger ``lepton.extender.decisions``) with the top candidates' cost breakdown.
A request keeps only its top candidates' figures (a small ``ScoreResult``) and lets go of the per-node
arrays; building the summary, encoding and writing the log line happen on the background tick
(``flush_log``, every ``maintenance_interval_seconds``), off the request's latency.

kube-scheduler calls filter and then prioritize for the same pod, prioritize with the nodes that
passed. The filter's scoring is kept and, if nothing the scores depend on changed in between (same pod,
same snapshot version, no node's telemetry turned stale), prioritize re-ranks it over its candidates
(``normalize_scores``: exactly what scoring them again would answer) instead of scoring again.

Fail-open rules (the extender must never be why a pod cannot be scheduled):

* a candidate the snapshot does not know (a node newer than our watch) passes filter and scores 0;
* a node without fresh telemetry passes filter (unless ``fail_open`` is off) and scores at most 9;
* before the first sync there is no snapshot: every node passes and scores 0;
* an internal error answers like that too, and is logged and counted.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from lepton_core.kube.objects import PodInfo
from lepton_core.scoring import PodDemand, ScoreResult, normalize_scores, score_nodes, top_candidates
from lepton_extender.metrics import ExtenderMetrics
from lepton_extender.settings import ExtenderSettings
from lepton_extender.snapshot import ClusterSnapshot
from lepton_extender.wire import ExtenderArgs, render_priorities

_NONE = np.zeros(0, dtype=np.intp)
decision_log = logging.getLogger("lepton.extender.decisions")
log = logging.getLogger("lepton.extender")


@dataclass(slots=True)
class Decision:
    """One filter or prioritize answer. The request keeps only the top candidates' figures (a small
    ``ScoreResult``); turning them into a dict happens when first asked (log flush, /debug)."""

    at: float
    verb: str
    pod: PodInfo
    requested: int
    """How many candidates the request named (the names themselves are not kept: a decision outlives
    its request, and 500 names per decision would only feed the garbage collector)."""
    candidates: int = 0
    """How many of them were scored (known to the snapshot)."""
    unknown: int = 0
    top: ScoreResult | None = None
    """The best-ranked scored candidates' figures, best first."""
    top_nodes: tuple[list[str], list[int]] | None = None
    """Their names, as (the snapshot's name list then, their positions in it): looked up when the
    decision is first read (a rebuild replaces the list, it never changes it)."""
    failed: dict[str, str] | None = None
    """Filter: rejected candidates and why (at most ``log_top_candidates``)."""
    rejected: int = 0
    stale: int = 0
    reused: bool = False
    """Prioritize re-ranked the filter's scoring of this pod instead of scoring again."""
    chosen: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None

    def as_dict(self, breakdowns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The decision as plain JSON-ready values, built once. ``breakdowns``: the top candidates' cost
        breakdowns when already computed (``Extender.flush_log`` explains a batch of decisions at once)."""
        if self.summary is not None:
            return self.summary
        out: dict[str, Any] = {
            "time": self.at,
            "verb": self.verb,
            "pod": self.pod.key,
            "uid": self.pod.uid,
            "demand": {
                "cpu_cores": self.pod.demand.cpu_cores,
                "memory_bytes": self.pod.demand.memory_bytes,
                "gpus": self.pod.demand.gpus,
            },
            "candidates": self.requested,
            "unknown": self.unknown,
        }
        if self.top is not None and self.top_nodes is not None:
            out["rejected"] = self.rejected
            out["stale"] = self.stale
            if breakdowns is None:
                breakdowns = self.top.breakdowns(np.arange(len(self.top)))
            names, positions = self.top_nodes
            out["top"] = [{"node": names[i], **b} for i, b in zip(positions, breakdowns, strict=True)]
            if self.verb == "filter":
                out["failed"] = self.failed or {}
            if self.reused:
                out["reused_filter_scoring"] = True
        if self.chosen is not None:
            out["chosen"] = self.chosen
        if self.error is not None:
            out["error"] = self.error
        self.summary = out
        self.top = None  # the dict is all that is needed from now on
        return out


@dataclass(slots=True)
class _Scored:
    """One scoring of a pod over the known candidates: ``result`` covers ``nodes`` (snapshot positions);
    ``positions`` are the candidates' positions in the request."""

    result: ScoreResult
    nodes: NDArray[np.intp]
    positions: NDArray[np.intp] | None
    """None: every request candidate was known (positions = 0..n-1)."""
    at: NDArray[np.intp] | None = None
    """Where each candidate is in ``result`` when that covers more nodes (a reused filter scoring)."""

    def column(self, values: NDArray[Any]) -> NDArray[Any]:
        """One of ``result``'s per-node arrays, for this scoring's candidates."""
        return values if self.at is None else values.take(self.at)


@dataclass(slots=True)
class _Kept:
    """The last filter's scoring, kept for the prioritize call kube-scheduler makes next for that pod."""

    uid: str
    demand: PodDemand
    version: int
    scored: _Scored
    slot: NDArray[np.intp] | None = None
    """Snapshot position -> position in ``scored.result`` (-1: not scored), built on first reuse."""


class Extender:
    def __init__(
        self,
        settings: ExtenderSettings,
        snapshot: ClusterSnapshot,
        metrics: ExtenderMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.policy = settings.policy
        self.snapshot = snapshot
        self.metrics = metrics
        self.clock = clock
        self.decisions: deque[Decision] = deque(maxlen=settings.decisions_kept)
        # Decisions waiting to be logged: building the dict, encoding and writing happen on the background
        # tick, off the request's latency (bounded: a flood drops the oldest lines, counted).
        self._unlogged: deque[Decision] = deque(maxlen=10_000)
        self.log_lines_dropped = 0
        self._kept: _Kept | None = None
        self.reused_scorings = 0
        self._log_tokens = settings.decision_log_per_second
        self._log_refilled_at = clock()
        self.log_lines_skipped = 0
        """Decisions not logged because of ``decision_log_per_second`` (reported by the next flush)."""

    # --- scoring ------------------------------------------------------------------------------------
    def _score(self, args: ExtenderArgs, now: float) -> _Scored | None:
        snap = self.snapshot
        state = snap.state
        if state is None or not args.count:
            return None
        found = snap.lookup(args)
        idx = found.positions
        if found.unknown:
            positions = np.flatnonzero(idx >= 0)
            if not positions.size:
                return None
            idx = idx[positions]
        else:
            positions = None
        # The best candidates are ranked in the same compiled call: the decision keeps them, and the
        # best one is the placement prioritize assumes.
        best = max(self.settings.log_top_candidates, 1)
        return _Scored(score_nodes(args.pod.demand, state, now, self.policy, candidates=idx, best=best), idx, positions)

    def _reuse(self, args: ExtenderArgs, now: float) -> tuple[_Scored, NDArray[np.int64]] | None:
        """The filter's scoring of this pod re-ranked over prioritize's candidates, when nothing the
        scores depend on changed in between (same pod, same snapshot version, no node turned stale) and
        every candidate was scored by filter (prioritize gets the nodes that passed it)."""
        kept = self._kept
        snap = self.snapshot
        if (
            kept is None
            or kept.uid != args.pod.uid
            or kept.version != snap.version
            or kept.demand != args.pod.demand
            or now > kept.scored.result.valid_until
        ):
            return None
        found = snap.lookup(args)
        idx = found.positions
        if idx is kept.scored.nodes and kept.scored.positions is None:
            # The very list filter scored (the same bytes: every node passed it): its scores as they are.
            return kept.scored, kept.scored.result.scores
        if not idx.size or found.unknown:
            return None
        if kept.slot is None:
            kept.slot = np.full(len(snap.names), -1, dtype=np.intp)
            kept.slot[kept.scored.nodes] = np.arange(kept.scored.nodes.size, dtype=np.intp)
        at = kept.slot.take(idx)
        if np.count_nonzero(at < 0):
            return None
        r = kept.scored.result
        scores = normalize_scores(r.objective_per_hour.take(at), r.safe.take(at), r.fresh.take(at))
        return _Scored(r, idx, None, at), scores

    def _record(self, d: Decision, scored: _Scored | None, scores: NDArray[np.int64] | None) -> None:
        """Count the decision and keep its top candidates (a few numpy calls; formatting comes later)."""
        m = self.metrics
        m.count_nodes(d.verb, "unknown", d.unknown)
        if scored is not None and scores is not None:
            r = scored.result
            n = int(scores.size)
            d.candidates = n
            if scored.at is None:  # counted and ranked while scoring
                d.rejected = r.rejected_count
                d.stale = n - r.fresh_count
            else:
                d.rejected = int(np.count_nonzero(scored.column(r.rejected)))
                d.stale = n - int(np.count_nonzero(scored.column(r.fresh)))
            m.count_nodes(d.verb, "scored", n)
            m.count_nodes(d.verb, "stale", d.stale)
            if d.verb == "filter":
                m.count_nodes(d.verb, "rejected", d.rejected)
            k = self.settings.log_top_candidates
            if k:
                # The k cheapest safe candidates (then the others), best first by score then objective.
                top = self._best(scored, scores, k)
                if scored.at is None:
                    d.top = r.take(top)
                else:
                    d.top = r.take(scored.at[top])
                    d.top.scores[:] = scores[top]
                d.top_nodes = (self.snapshot.names, scored.nodes.take(top).tolist())
        self.decisions.append(d)
        if decision_log.isEnabledFor(logging.INFO):
            rate = self.settings.decision_log_per_second
            self._log_tokens = min(rate, self._log_tokens + (d.at - self._log_refilled_at) * rate)
            self._log_refilled_at = d.at
            if self._log_tokens < 1.0:
                self.log_lines_skipped += 1
                return
            self._log_tokens -= 1.0
            if len(self._unlogged) == self._unlogged.maxlen:
                self.log_lines_dropped += 1
            self._unlogged.append(d)

    @staticmethod
    def _best(scored: _Scored, scores: NDArray[np.int64], k: int) -> NDArray[np.intp]:
        """The ``k`` best candidates, best first (highest score, then safe, then lowest objective): ranked
        while scoring unless the scoring was re-ranked over fewer nodes (a reused filter scoring)."""
        r = scored.result
        if scored.at is None and r.top.size >= min(k, scores.size):
            return r.top[:k]
        return top_candidates(scores, scored.column(r.objective_per_hour), scored.column(r.safe), k)

    def flush_log(self) -> int:
        """Write the structured log lines of decisions made since the last flush; returns how many."""
        batch = list(self._unlogged)
        self._unlogged.clear()
        # The candidates' breakdowns of the whole batch in one pass of array operations (~20 of them per
        # pass, whatever the batch size): one pass per decision made this flush the costliest background
        # work at ~0.2 ms a line, and it holds the loop while requests wait.
        todo = [(d, d.top) for d in batch if d.summary is None and d.top is not None and len(d.top)]
        if todo:
            joined = ScoreResult.concat([top for _, top in todo])
            rows = joined.breakdowns(np.arange(len(joined)))
            at = 0
            for d, top in todo:
                d.as_dict(rows[at : at + len(top)])
                at += len(top)
        for d in batch:
            decision_log.info(orjson.dumps(d.as_dict()).decode())
        count = len(batch)
        if self.log_lines_skipped:
            decision_log.info(
                orjson.dumps(
                    {"skipped_decisions": self.log_lines_skipped, "reason": "decision_log_per_second"}
                ).decode()
            )
            self.log_lines_skipped = 0
        return count

    # --- verbs --------------------------------------------------------------------------------------
    def filter(self, args: ExtenderArgs) -> tuple[Sequence[int], dict[str, str]]:
        """Positions (in ``args.names``) that pass, and ``FailedNodes`` reasons for the rest."""
        now = self.clock()
        count = args.count
        d = Decision(now, "filter", args.pod, count)
        scored: _Scored | None = None
        passed: Sequence[int]
        try:
            scored = self._score(args, now)
            if scored is None:
                d.unknown = count if self.snapshot.state is None else 0
                passed = range(count)
                failed: dict[str, str] = {}
            else:
                r = scored.result
                d.unknown = count - int(scored.nodes.size)
                self._kept = _Kept(args.pod.uid, args.pod.demand, self.snapshot.version, scored)
                if not r.rejected_count:  # counted while scoring
                    passed = range(count)
                    failed = {}
                else:
                    rejected = np.flatnonzero(r.rejected)
                    at = rejected if scored.positions is None else scored.positions[rejected]
                    ok = np.ones(count, dtype=bool)
                    ok[at] = False
                    passed = np.flatnonzero(ok).tolist()
                    names = self.snapshot.names
                    failed = {
                        names[node]: r.reject_reason(i) or "rejected"
                        for i, node in zip(rejected.tolist(), scored.nodes.take(rejected).tolist(), strict=True)
                    }
                    d.failed = dict(list(failed.items())[: self.settings.log_top_candidates])
        except Exception as exc:
            log.exception("filter failed; answering fail-open (every node passes)")
            self.metrics.internal_errors.labels(verb="filter").inc()
            d.error = f"internal error: {exc}"
            scored = None
            passed, failed = range(count), {}
        self._record(d, scored, None if scored is None else scored.result.scores)
        return passed, failed

    def prioritize(self, args: ExtenderArgs) -> bytes:
        """The ``HostPriorityList`` answer: one integer score 0-10 per candidate, in request order."""
        now = self.clock()
        count = args.count
        d = Decision(now, "prioritize", args.pod, count)
        snap = self.snapshot
        scored: _Scored | None = None
        scores: NDArray[np.int64] | None = None
        try:
            reused = self._reuse(args, now)
            if reused is not None:
                scored, scores = reused
                d.reused = True
                self.reused_scorings += 1
            else:
                scored = self._score(args, now)
                scores = None if scored is None else scored.result.scores
            self._kept = None
            if scored is None or scores is None:
                d.unknown = count if snap.state is None else 0
                body = render_priorities(args, np.zeros(count, dtype=np.int64))
            else:
                d.unknown = count - int(scored.nodes.size)
                best = int(self._best(scored, scores, 1)[0])
                best_name = snap.names[int(scored.nodes[best])]
                if scored.positions is None:
                    body = render_priorities(args, scores, snap.priorities, scored.nodes)
                else:
                    full = np.zeros(count, dtype=np.int64)
                    full[scored.positions] = scores
                    body = render_priorities(args, full)
                if scores[best] > 0:
                    d.chosen = best_name
                    snap.assume(args.pod.uid, best_name, args.pod.demand)
        except Exception as exc:
            log.exception("prioritize failed; answering fail-open (every score 0)")
            self.metrics.internal_errors.labels(verb="prioritize").inc()
            d.error = f"internal error: {exc}"
            scored = scores = None
            body = render_priorities(args, np.zeros(count, dtype=np.int64))
        self._record(d, scored, scores)
        return body

    def recent_decisions(self, limit: int) -> list[dict[str, Any]]:
        """Newest first."""
        return [d.as_dict() for d in list(reversed(self.decisions))[:limit]]
