"""Live cost accounting in the operator: the loop, its Kubernetes edge, and the ledger's status layout.

* ``loop`` — ``AccountingLoop``: one tick over all nodes and jobs, rate-limited status writes;
* ``inventory`` — Nodes, Pods, LeptonJobs -> typed inputs; ``status`` — ledger <-> ``status.cost``;
* ``kube`` — the small API client it writes with; ``settings`` — ``AccountingSettings``;
* ``service`` — start-up wiring: the loop and the ``/metrics`` server as background tasks.

The pure accounting (pipeline, ledger, history, budgets) is ``lepton_core.accounting``; telemetry is
``lepton_core.telemetry``; the metrics collector is ``lepton_operator.metrics``.
"""

from typing import Any


def install(hooks: Any) -> None:
    """The operator's extension seam (``lepton_operator.app.EXTENSION_MODULES``): see ``service``."""
    # Lazy: `lepton operator --help` imports this package for its flags (`.cli`) and must stay light.
    from lepton_operator.accounting.service import install as _install  # noqa: PLC0415

    _install(hooks)
