"""Kubernetes objects as typed facts: one reading of quantities, requests and allocatable for all components.

* ``quantity``: ``parse_quantity`` (``500m``, ``1.5Gi``, ``1e3``) → float, ``QuantityError``;
* ``fields``: ``get`` (case-insensitive keys, like Go's encoding/json) and typed field readers whose
  ``ObjectError`` names the field by path;
* ``resources``: ``Resources`` (CPU cores, memory bytes, GPUs), a pod's effective requests
  (``pod_requests``: containers, init containers, sidecars, overhead, limits as default requests) and a
  node's allocatable (``node_allocatable``);
* ``objects``: the extender's ``read_pod`` / ``read_node`` → ``PodInfo`` / ``NodeInfo``. Not re-exported
  here: it builds the scoring input (``lepton_core.scoring.PodDemand``), and importing the scoring package
  loads numba, which the operator does not need. Import it as ``lepton_core.kube.objects``.

Neighbours: the extender (``lepton_extender.wire``, ``inventory``, ``sources``, ``snapshot``) reads Pods
and Nodes through ``objects``; the operator's accounting (``lepton_operator.accounting.inventory``)
charges pods for ``pod_requests`` and prices nodes by ``node_allocatable``, so accounting and scheduling
agree on what a pod takes. Pure: no I/O.
"""

from lepton_core.kube.fields import ObjectError, get, json_kind
from lepton_core.kube.quantity import QuantityError, parse_quantity
from lepton_core.kube.resources import GPU_RESOURCES, Resources, node_allocatable, pod_requests, read_resources

__all__ = [
    "GPU_RESOURCES",
    "ObjectError",
    "QuantityError",
    "Resources",
    "get",
    "json_kind",
    "node_allocatable",
    "parse_quantity",
    "pod_requests",
    "read_resources",
]
