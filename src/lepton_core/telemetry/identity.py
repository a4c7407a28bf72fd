"""Node identity: turn Prometheus label values into Kubernetes node names, explicitly.

Exporters name a node in different ways: node_exporter's ``instance`` is ``10.0.3.7:9100``, DCGM's
``Hostname`` may be the exporter pod's name or the host name, Kepler 0.10+ has ``node_name``, cAdvisor
via the kubelet has ``node``. ``NodeIdentity`` resolves a raw value in three steps:

1. an alias table (raw value -> node name), e.g. every node's InternalIP and hostname from the
   Kubernetes Node objects, refreshed by the caller each tick;
2. relabelling rules, tried in order, first full match wins (Prometheus ``relabel_config`` style:
   ``regex`` must match the whole value, ``replacement`` may use ``$1`` / ``${name}``);
3. the alias table again on the rewritten value (so ``10.0.3.7:9100`` -> ``10.0.3.7`` -> ``node-a``).

When the set of known node names is given, a result outside it is *unmatched* and reported, never
guessed. Pure; neighbours: ``prometheus`` (calls ``resolve``), the operator (builds aliases).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RelabelRule:
    """``regex`` must match the whole value; the value becomes ``replacement`` with groups expanded."""

    regex: str
    replacement: str = "$1"
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"relabel regex {self.regex!r}: {exc}") from exc
        object.__setattr__(self, "_compiled", compiled)

    def apply(self, value: str) -> str | None:
        m = self._compiled.fullmatch(value)
        if m is None:
            return None
        # Prometheus spells group references $1 / ${1} / ${name}; Python's expand wants \g<...>.
        template = re.sub(r"\$\{(\w+)\}|\$(\d+)", lambda g: rf"\g<{g.group(1) or g.group(2)}>", self.replacement)
        try:
            return m.expand(template)
        except (re.error, IndexError) as exc:
            raise ValueError(f"relabel replacement {self.replacement!r} for {self.regex!r}: {exc}") from exc


STRIP_PORT = RelabelRule(r"(.+):\d+", "$1")
"""``host:port`` -> ``host`` (node_exporter's and Kepler legacy's ``instance``)."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    rules: tuple[RelabelRule, ...] = (STRIP_PORT,)
    aliases: Mapping[str, str] = field(default_factory=dict)
    known_nodes: frozenset[str] | None = None
    """When set, only these names are accepted; anything else is reported as unmatched."""

    def resolve(self, raw: str) -> str | None:
        """The Kubernetes node name for a label value, or None when it cannot be matched."""
        if not raw:
            return None
        candidate = self.aliases.get(raw)
        if candidate is None:
            candidate = raw
            for rule in self.rules:
                rewritten = rule.apply(raw)
                if rewritten is not None:
                    candidate = self.aliases.get(rewritten, rewritten)
                    break
        if self.known_nodes is not None and candidate not in self.known_nodes:
            return None
        return candidate

    def with_nodes(self, nodes: Mapping[str, Iterable[str]]) -> NodeIdentity:
        """A copy that knows these nodes: name -> its addresses (InternalIP, Hostname, …) as aliases."""
        aliases = dict(self.aliases)
        for name, addresses in nodes.items():
            for address in addresses:
                aliases.setdefault(address, name)
            aliases.setdefault(name, name)
        return NodeIdentity(rules=self.rules, aliases=aliases, known_nodes=frozenset(nodes))
