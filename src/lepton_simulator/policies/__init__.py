"""Placement policies: one module per policy, each citing the formula it implements.

* ``kube-default`` (``kube_default``): NodeResourcesFit LeastAllocated + NodeResourcesBalancedAllocation;
* ``most-allocated`` (``most_allocated``): NodeResourcesFit MostAllocated (bin packing);
* ``trimaran-tlp`` (``trimaran_tlp``): Trimaran TargetLoadPacking, target 40 %;
* ``peaks`` (``peaks``): PEAKS, minimum power increase;
* ``lepton`` (``lepton``): ``lepton_core.scoring.score_nodes``, the extender's function.

Neighbours: ``base`` defines what the engine (``lepton_simulator.engine``) passes in.
"""

from __future__ import annotations

from collections.abc import Callable

from lepton_simulator.policies.base import PlacementContext, Policy
from lepton_simulator.policies.kube_default import KubeDefault
from lepton_simulator.policies.lepton import LeptonPolicy
from lepton_simulator.policies.most_allocated import MostAllocated
from lepton_simulator.policies.peaks import Peaks
from lepton_simulator.policies.trimaran_tlp import TargetLoadPacking

POLICIES: dict[str, Callable[[], Policy]] = {
    "kube-default": KubeDefault,
    "most-allocated": MostAllocated,
    "trimaran-tlp": TargetLoadPacking,
    "peaks": Peaks,
    "lepton": LeptonPolicy,
}
"""Name -> factory; a fresh policy object per replay (the ``lepton`` policy keeps per-replay state)."""

BASELINE = "kube-default"


def make_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"--policy: unknown policy {name!r} (have: {', '.join(POLICIES)})") from None


__all__ = ["BASELINE", "POLICIES", "PlacementContext", "Policy", "make_policy"]
