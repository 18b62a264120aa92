"""The `plugwatch` command: one argparse sub-command per job, registered by plugwatch.cli.* modules.

Each module defines `register(subparsers)`, which adds its commands and sets `func` on them. A
handler returns an exit status (or None for 0) and imports heavy libraries inside itself, so that
`plugwatch --help` stays fast. Any PlugwatchError becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from plugwatch.errors import PlugwatchError

COMMAND_MODULES = ("device", "replay", "service", "db", "rules", "tune")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="plugwatch",
        description="Watch power-metering smart plugs and report appliance state changes.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"plugwatch.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except PlugwatchError as exc:
        print(f"plugwatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `plugwatch history | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
