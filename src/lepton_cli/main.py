"""``lepton``: entry point. Sub-commands are registered by the components (see the package docstring)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lepton_cli import cost

# Component CLIs, imported lazily so `lepton cost estimate` does not pay for kopf or aiohttp.
_COMPONENTS: tuple[str, ...] = ("lepton_extender.cli", "lepton_operator.cli", "lepton_simulator.cli")


class UsageError(Exception):
    """An expected, user-facing error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lepton",
        description="Cost-aware scheduling for AI jobs on Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cost.register(sub)
    for name in _COMPONENTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # component not installed in this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except (ValueError, OSError) as exc:
        # Invalid input or an unreadable file: one clear line, never a traceback.
        print(f"lepton: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
