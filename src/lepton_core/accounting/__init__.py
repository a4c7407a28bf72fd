"""Live cost accounting, the pure part: what every window cost, and ledgers that count it once.

* ``pipeline`` — one window for all nodes, pods and jobs: utilization -> power -> cost -> attribution
  (a job naming its own cost profile is re-priced, the difference reported per node).
* ``ledger`` — a job's accumulated amounts advanced only by what lies after its ``observedAt``.
* ``history`` — bounded multi-resolution buckets whose totals equal the ledger's exactly.
* ``amounts`` — the exact integer units both use.
* ``budget`` — budget verdicts and cost to complete.

No I/O and no clock (import-linter contract "Accounting is pure"). Neighbours: ``lepton_core.models``
below, ``lepton_core.telemetry`` for the readings, ``lepton_operator.accounting`` above (the loop that
fetches, writes LeptonJob status and serves metrics).
"""

from lepton_core.accounting.amounts import Amounts
from lepton_core.accounting.budget import Budget, BudgetAction, BudgetVerdict, check_budget, cost_to_complete
from lepton_core.accounting.history import Bucket, History, HistoryPolicy
from lepton_core.accounting.ledger import Increment, Ledger, new_ledger
from lepton_core.accounting.pipeline import (
    NodeAccountingTable,
    NodeReadings,
    PodTable,
    Source,
    WindowAccount,
    account_window,
)

__all__ = [
    "Amounts",
    "Bucket",
    "Budget",
    "BudgetAction",
    "BudgetVerdict",
    "History",
    "HistoryPolicy",
    "Increment",
    "Ledger",
    "NodeAccountingTable",
    "NodeReadings",
    "PodTable",
    "Source",
    "WindowAccount",
    "account_window",
    "check_budget",
    "cost_to_complete",
    "new_ledger",
]
