"""The ``lepton`` command line: one entry point over every component.

Each component owns its sub-command in its own ``cli`` module (``lepton_extender.cli``,
``lepton_operator.cli``, ``lepton_simulator.cli``) exposing ``register(subparsers)``; this package only
wires them together and turns expected errors into a one-line message and exit status 2.
"""
