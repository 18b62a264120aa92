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
from plugwatch.logs import OneLineFilter, setup_logging

LIBRARY_LOGGERS = ("alembic", "apprise", "apscheduler", "urllib3", "asyncio", "aiohttp")
# python-kasa logs a device's lost session or a discovery ICMP error as ERROR; the driver's own
# one-line failure says what matters, so its lines show only at -vv
QUIET_LOGGERS = ("kasa",)
COMMAND_MODULES = ("init", "device", "replay", "service", "db", "rules", "tune", "alerts")


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
        # Each parser counts into a dest of its own: a sub-parser's values replace the ones
        # already parsed, they do not add up; main() sums them (`plugwatch -v run -v` is -vv).
        level = "" if top else "_" + self.prog.replace(" ", "_")
        for flag, name, text in (("-v", "verbose", "more log output (-vv: also the libraries' "
                                  "debug output)"), ("-q", "quiet", "errors only")):
            self.add_argument(flag, f"--{name}", action="count", dest=name + level,
                              default=0 if top else argparse.SUPPRESS, help=text)


def _count(args: argparse.Namespace, name: str) -> int:
    return sum(value for key, value in vars(args).items() if key.split("_plugwatch")[0] == name)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command registered."""
    parser = CommandParser(
        prog="plugwatch", top=True,
        description="Watch power-metering smart plugs and report appliance state changes.",
    )
    parser.add_argument("--version", action="version", version=f"plugwatch {__version__}")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines as plain text (default) or one JSON object per line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"plugwatch.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    args.verbose, args.quiet = _count(args, "verbose"), _count(args, "quiet")
    level = logging.ERROR if args.quiet else logging.WARNING - 10 * min(args.verbose, 2)
    setup_logging(level, getattr(args, "log_format", "text"))
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(f, OneLineFilter) for f in library.filters):
            library.addFilter(OneLineFilter())  # one line per message, like ours
        if args.verbose < 2:  # their own chatter (Alembic's plugin setup, job runs) only at -vv
            library.setLevel(max(level, logging.WARNING))
    if args.verbose < 2:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
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
