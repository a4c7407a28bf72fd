"""``python -m lepton_operator``: the same as ``lepton operator`` (for images without the CLI)."""

from __future__ import annotations

import argparse
import sys

from lepton_operator import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lepton_operator")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(["operator", *(sys.argv[1:] if argv is None else argv)])
    try:
        result: int = args.handler(args)
    except ValueError as exc:
        print(f"lepton operator: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
