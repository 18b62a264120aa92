"""How to read a CSV trace (CsvOptions) and the command-line options that give it, without numpy.

Kept apart from traces.reader so that building the `plugwatch` parser does not import numpy.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = ["CsvOptions", "add_csv_arguments", "csv_options_from_args"]


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV trace. None/"auto" means: work it out from the first lines."""

    time_col: str | int = 0  # header name or 0-based index
    power_col: str | int | None = None  # None: a column named like "power", else the next one
    delimiter: str | None = None  # None: the most frequent of , ; tab | in the first line
    header: bool | None = None  # None: a first line without any number is a header
    time_format: str = "auto"  # "unix" (s or ms), "iso", a strftime pattern, or "auto"
    tz: str | None = None  # IANA zone for times without an offset; None = UTC
    max_power_w: float | None = None  # rows above are skipped (sources.validate); None = 4 kW


def add_csv_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the CSV layout options (--time-col, --power-col, ...) to a command's parser."""
    group = parser.add_argument_group("CSV layout (worked out from the file when not given)")
    group.add_argument("--time-col", default="0", metavar="COL",
                       help="time column: header name or 0-based index (default 0)")
    group.add_argument("--power-col", default=None, metavar="COL",
                       help="power column in W: header name or 0-based index "
                            "(default: a column named power, else the next one)")
    group.add_argument("--delimiter", default=None, metavar="CHAR",
                       help="field separator (default: guessed from , ; tab |); 'tab' for a tab")
    group.add_argument("--no-header", action="store_true",
                       help="the first line is data (default: guessed)")
    group.add_argument("--time-format", default="auto", metavar="FMT",
                       help="unix (s or ms), iso, or a strftime pattern "
                            "like '%%d/%%m/%%Y %%H:%%M:%%S' (default: guessed)")
    group.add_argument("--tz", default=None, metavar="ZONE",
                       help="IANA time zone of times without an offset (default UTC)")
    group.add_argument("--max-power", type=float, default=None, metavar="W",
                       help="rows with more power are skipped as impossible, as live readings "
                            "are (default: the plug's max_power with --config, else 4000)")


def _column(value: str | None) -> str | int | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def csv_options_from_args(args: argparse.Namespace) -> CsvOptions:
    """The CsvOptions given on the command line by the arguments of add_csv_arguments()."""
    delimiter = args.delimiter
    if delimiter is not None and delimiter.lower() in ("tab", "\\t"):
        delimiter = "\t"
    time_col = _column(args.time_col)
    return CsvOptions(
        time_col=0 if time_col is None else time_col,
        power_col=_column(args.power_col),
        delimiter=delimiter,
        header=False if args.no_header else None,
        time_format=args.time_format,
        tz=args.tz,
        max_power_w=getattr(args, "max_power", None),
    )
