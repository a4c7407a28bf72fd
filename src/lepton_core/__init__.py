"""Lepton's shared core: the one place where utilization, power, energy and cost are defined.

Data flow (see docs/architecture.md)::

    Prometheus -> lepton_core.telemetry -> lepton_core.models -> {extender, operator, simulator}

* ``lepton_core.models`` is pure: numbers and time in, numbers out, no I/O (guarded by import-linter).
* ``lepton_core.profiles`` turns validated configuration into model objects.
* ``lepton_core.scoring`` is the single node-scoring function the extender serves and the simulator replays.
* ``lepton_core.metrics_names`` names every Prometheus metric Lepton exports.
* ``lepton_core.kube`` reads Pods and Nodes (quantities, effective requests, allocatable) for the extender's
  scoring and the operator's accounting alike; ``lepton_core.tariffs`` reads hourly price (and carbon) files;
  ``lepton_core.cli_types`` are the argparse value types every ``lepton`` sub-command uses.
"""

__version__ = "0.1.0"
