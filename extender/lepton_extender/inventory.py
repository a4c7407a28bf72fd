"""Static inventories: nodes (and optionally pods) from a file, for offline what-ifs and benchmarks.

Accepted shapes, JSON or YAML: a ``v1.NodeList`` exactly as ``kubectl get nodes -o json`` prints it, a
``v1.List`` holding nodes and pods (``kubectl get nodes,pods -A -o json``), a ``v1.PodList``, or a single
Node. Items of other kinds are skipped. Errors name the item: ``items[3].status.allocatable.cpu: …``.

Neighbours: ``sources.InventorySource`` feeds the result into the snapshot; ``lepton_core.kube.objects``
reads each item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from lepton_core.kube.objects import NodeInfo, ObjectError, PodInfo, get, read_node, read_pod


class InventoryError(ValueError):
    """An unreadable inventory; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Inventory:
    nodes: tuple[NodeInfo, ...]
    pods: tuple[PodInfo, ...]
    skipped: int = 0
    """Items of other kinds."""


def parse_inventory(doc: Any, where: str = "inventory") -> Inventory:
    if not isinstance(doc, dict):
        raise InventoryError(f"{where}: expected a Kubernetes List, NodeList, PodList or Node object")
    kind = get(doc, "kind")
    if kind == "Node":
        items: list[Any] = [doc]
        default_kind = "Node"
    else:
        raw = get(doc, "items")
        if not isinstance(raw, list):
            raise InventoryError(f"{where}.items: expected an array (kind {kind!r})")
        items = raw
        default_kind = {"NodeList": "Node", "PodList": "Pod"}.get(str(kind), "")
    nodes: list[NodeInfo] = []
    pods: list[PodInfo] = []
    skipped = 0
    seen: set[str] = set()
    for i, item in enumerate(items):
        at = f"{where}.items[{i}]" if kind != "Node" else where
        if not isinstance(item, dict):
            raise InventoryError(f"{at}: expected an object")
        item_kind = get(item, "kind") or default_kind
        try:
            if item_kind == "Node":
                node = read_node(item, at)
                if node.name in seen:
                    raise InventoryError(f"{at}.metadata.name: duplicate node {node.name!r}")
                seen.add(node.name)
                nodes.append(node)
            elif item_kind == "Pod":
                pods.append(read_pod(item, at))
            else:
                skipped += 1
        except ObjectError as exc:
            raise InventoryError(str(exc)) from None
    return Inventory(tuple(nodes), tuple(pods), skipped)


def load_inventory(path: Path) -> Inventory:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise InventoryError(f"{path}: not valid JSON/YAML: {exc}") from None
    return parse_inventory(doc, str(path))
