"""The trace-driven simulator: replays cluster traces through the shared scoring. Run as ``lepton simulate``.

Data flow (each module's docstring says more)::

    readers ─► trace ─┐
    profiles, tariffs, carbon ─► scenario ─► engine (state, policies, accounting) ─► report
                                                  └─ lower_bound (after the replays)

* ``scenario`` matches every node to a ``lepton_core.profiles`` cost profile by its labels and resolves
  the tariff and carbon series; ``engine`` replays the jobs event by event under one policy;
* ``policies`` holds the baselines (kube-default, most-allocated, trimaran-tlp, peaks) and ``lepton``,
  which calls the extender's own ``lepton_core.scoring.score_nodes``;
* ``accounting`` prices power with the shared models (``NodePowerModel``, ``Tariff``, ``window_cost``).

Design note, assumptions and measured results: docs/notes/simulator.md.
"""
