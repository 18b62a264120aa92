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
from typing import Any

from plugwatch import __version__
from plugwatch.errors import PlugwatchError

LIBRARY_LOGGERS = ("alembic", "apprise", "apscheduler", "urllib3", "asyncio", "aiohttp")
COMMAND_MODULES = ("init", "device", "replay", "service", "db", "rules", "tune")


class _Commands(argparse._SubParsersAction):
    """Sub-commands whose own --help starts with their one-line help as the description."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if kwargs.get("help") and not kwargs.get("description"):
            text = str(kwargs["help"])
            kwargs["description"] = text[0].upper() + text[1:] + "."
        return super().add_parser(name, **kwargs)


class CommandParser(argparse.ArgumentParser):
    """A parser (the top one and every sub-command's) that accepts -v/-q wherever they stand."""

    def __init__(self, *args: Any, top: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)
        # The top parser counts into verbose/quiet, each sub-command into its own dest, so
        # `plugwatch -v run -v` is -vv (a sub-parser's values replace the top's, they do not add).
        suffix = "" if top else "_sub"
        self.add_argument("-v", "--verbose", action="count", dest="verbose" + suffix,
                          default=0 if top else argparse.SUPPRESS,
                          help="more log output (-vv: also the libraries' debug output)")
        self.add_argument("-q", "--quiet", action="count", dest="quiet" + suffix,
                          default=0 if top else argparse.SUPPRESS, help="errors only")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command registered."""
    parser = CommandParser(
        prog="plugwatch", top=True,
        description="Watch power-metering smart plugs and report appliance state changes.",
    )
    parser.add_argument("--version", action="version", version=f"plugwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"plugwatch.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    args.verbose += getattr(args, "verbose_sub", 0)
    args.quiet += getattr(args, "quiet_sub", 0)
    level = logging.ERROR if args.quiet else logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # libraries' own chatter (Alembic's plugin setup, job runs) only at -vv
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
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
