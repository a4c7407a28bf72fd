"""Node scoring: the one function that decides where a pod costs least (``score_nodes``).

The extender (``lepton_extender``) serves it to kube-scheduler from a live snapshot; the simulator's
``lepton`` policy (``lepton_simulator``) replays traces through it with its own in-memory cluster. It is
pure (no I/O, no clock: ``now`` is an argument) and vectorized with numpy over candidate nodes.
Design and API: docs/notes/scoring-api.md.

* ``inputs``: ``PodDemand`` (one pod), ``NodeState`` (nodes as arrays), ``NodeCostTable`` (from profiles);
* ``policy``: ``ScoringWeights``, presets ``cost`` / ``balance`` / ``pack``, ``ScoringPolicy`` thresholds;
* ``score``: ``score_nodes`` → ``ScoreResult`` (cost breakdown, filter verdict, integer scores 0–10), and
  ``normalize_scores`` (re-rank a subset of a kept result exactly as scoring that subset would).
"""

from lepton_core.scoring.inputs import COL, NodeCostTable, NodeState, PodDemand, tariff_price_at
from lepton_core.scoring.kernel import top_candidates
from lepton_core.scoring.policy import PRESETS, Preset, ScoringPolicy, ScoringWeights
from lepton_core.scoring.score import (
    MAX_SCORE,
    MAX_SCORE_WITHOUT_FRESH_DATA,
    ScoreResult,
    normalize_scores,
    score_nodes,
)

__all__ = [
    "COL",
    "MAX_SCORE",
    "MAX_SCORE_WITHOUT_FRESH_DATA",
    "PRESETS",
    "NodeCostTable",
    "NodeState",
    "PodDemand",
    "Preset",
    "ScoreResult",
    "ScoringPolicy",
    "ScoringWeights",
    "normalize_scores",
    "score_nodes",
    "tariff_price_at",
    "top_candidates",
]
