"""Attribution: split each node's cost among the pods on it, and report the rest as idle.

Policies (``AttributionPolicy``):

* ``dominant-request`` (default): a pod's share of a node is the largest of its requested fractions of
  the node's allocatable resources (cpu, memory, GPUs) — Dominant Resource Fairness applied to cost. A
  pod asking for 1 of 8 GPUs and 2 of 96 cores holds 1/8 of the node, because nobody else can use that
  GPU.
* ``measured-usage``: the caller passes each pod's measured share (e.g. its CPU or GPU seconds over the
  window divided by the node's capacity) instead of requests.

If the shares on a node add up to at most 1, each pod pays ``share × node cost`` and the remainder is
the node's **idle** cost. If they add up to more (over-commit), they are scaled down to sum to 1 and
idle is 0. Either way Σ pods + idle = node total, which the property tests check to 1e-9 relative.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class AttributionPolicy(StrEnum):
    DOMINANT_REQUEST = "dominant-request"
    MEASURED_USAGE = "measured-usage"


def dominant_shares(requests: NDArray[np.float64], allocatable: NDArray[np.float64]) -> NDArray[np.float64]:
    """max_r requests[p, r] / allocatable[node(p), r] for every pod.

    ``requests`` is (pods × resources); ``allocatable`` is either one row (resources) or one row per pod
    (the allocatable of the node each pod runs on). Resources a node does not have (allocatable 0)
    are ignored unless the pod requests them, in which case its share is 1 (it cannot fit, so it is
    charged the node).
    """
    req = np.asarray(requests, dtype=np.float64)
    alloc = np.broadcast_to(np.asarray(allocatable, dtype=np.float64), req.shape)
    if np.any(req < 0.0) or np.any(alloc < 0.0) or np.isnan(req).any() or np.isnan(alloc).any():
        raise ValueError("requests and allocatable must be non-negative numbers")
    has = alloc > 0.0
    fractions = np.zeros_like(req)
    np.divide(req, alloc, out=fractions, where=has)
    fractions = np.where(~has & (req > 0.0), 1.0, fractions)
    if req.shape[1] == 0:
        return np.zeros(req.shape[0])
    out: NDArray[np.float64] = np.minimum(fractions.max(axis=1), 1.0)
    return out


@dataclass(frozen=True)
class AttributionResult:
    pod_amounts: NDArray[np.float64]
    """What each pod pays, in the order of the input pods."""
    idle_amounts: NDArray[np.float64]
    """What no pod pays, per node."""


def attribute(
    node_totals: NDArray[np.float64], pod_node: NDArray[np.intp], pod_shares: NDArray[np.float64]
) -> AttributionResult:
    """Split ``node_totals[n]`` among the pods with ``pod_node[p] == n`` by ``pod_shares[p]``.

    Works for any amount that adds up (money, joules); call it once per cost component so the
    hardware / energy / operations split is kept per pod.
    """
    totals = np.asarray(node_totals, dtype=np.float64)
    node = np.asarray(pod_node, dtype=np.intp)
    shares = np.asarray(pod_shares, dtype=np.float64)
    if node.shape != shares.shape:
        raise ValueError("need one node index per pod share")
    if node.size and (node.min() < 0 or node.max() >= totals.size):
        raise ValueError("a pod refers to a node index out of range")
    if np.any(~np.isfinite(shares)) or np.any(shares < 0.0):
        raise ValueError("pod shares must be finite and non-negative")
    if np.any(~np.isfinite(totals)):
        raise ValueError("node totals must be finite")
    share_sum = np.bincount(node, weights=shares, minlength=totals.size)
    # Over-committed nodes: scale shares down so they sum to exactly 1.
    scale = np.where(share_sum > 1.0, 1.0 / np.where(share_sum > 1.0, share_sum, 1.0), 1.0)
    pod_amounts = shares * scale[node] * totals[node]
    attributed = np.bincount(node, weights=pod_amounts, minlength=totals.size)
    idle = totals - attributed
    # On a fully shared node the difference is rounding noise; never report a negative idle cost.
    idle = np.where(share_sum >= 1.0, 0.0, idle)
    return AttributionResult(pod_amounts=pod_amounts, idle_amounts=idle)
