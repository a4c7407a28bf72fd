"""The LeptonJob operator (kopf): job lifecycle and live cost accounting. Run as ``lepton operator``.

Lifecycle (docs/notes/operator.md): ``crd`` (the API, source of deploy/base/crd-leptonjob.yaml) ->
``spec`` (typed spec) -> ``lifecycle`` (pure planner) -> ``controller`` (acts through ``kube``, reads pods
from ``informer``, builds them with ``workers``) -> wired into kopf by ``app`` (``cli`` on top).
Live cost accounting (``accounting``, ``metrics``) plugs into ``app.OperatorHooks``.
"""
