"""Work out a CSV trace's layout from its first lines: separator, header, time and power columns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plugwatch.errors import TraceError

if TYPE_CHECKING:
    from plugwatch.traces.options import CsvOptions

SEPARATORS = (",", ";", "\t", "|")
POWER_NAMES = ("power", "power_w", "watts", "w", "active_power", "p")
TIME_NAMES = ("time", "timestamp", "unix", "date", "datetime", "ts", "epoch")


@dataclass(frozen=True)
class Layout:
    """Where the data sits in a CSV trace."""

    delimiter: str
    time_index: int
    power_index: int
    skip_lines: int  # lines before the first data row (header and blank lines)
    first_data_line: int  # 1-based line number of the first data row
    first_time: str  # the time cell of the first data row, to guess the format from


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_lines(path: Path) -> list[tuple[int, str]]:
    """The first two non-blank lines with their 1-based numbers."""
    found: list[tuple[int, str]] = []
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline=None) as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    found.append((line_no, line.rstrip("\r\n")))
                if len(found) == 2:
                    break
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    if not found:
        raise TraceError(f"{path}: the file is empty")
    return found


def _resolve(path: Path, col: str | int, names: list[str] | None, width: int, role: str) -> int:
    """A column given by 0-based index or header name, as an index."""
    if isinstance(col, int):
        if not 0 <= col < width:
            raise TraceError(
                f"{path}: --{role}-col {col} is out of range: the file has columns 0..{width - 1}"
            )
        return col
    if names is None:
        raise TraceError(
            f"{path}: --{role}-col {col!r} needs a header line, which this file lacks; "
            "give a 0-based column index instead"
        )
    lowered = [name.lower() for name in names]
    if col.strip().lower() in lowered:
        return lowered.index(col.strip().lower())
    raise TraceError(f"{path}: no column {col!r}; the columns are: {', '.join(names)}")


def sniff_layout(path: Path, options: CsvOptions) -> Layout:
    """The layout of the trace at `path`, from `options` where given, else guessed."""
    lines = _first_lines(path)
    first_no, first = lines[0]
    delimiter = options.delimiter
    if delimiter is None:
        delimiter = max(SEPARATORS, key=first.count)
        if first.count(delimiter) == 0:
            raise TraceError(
                f"{path}:{first_no}: cannot find the field separator; pass --delimiter"
            )
    cells = [cell.strip() for cell in first.split(delimiter)]
    header = options.header
    if header is None:
        header = not any(_is_number(cell) for cell in cells)
    names = cells if header else None
    if header:
        if len(lines) < 2:
            raise TraceError(f"{path}: the file has a header line but no data rows")
        data_no, data = lines[1]
    else:
        data_no, data = first_no, first
    width = len(data.split(delimiter))
    time_index = _resolve(path, options.time_col, names, width, "time")
    if options.power_col is not None:
        power_index = _resolve(path, options.power_col, names, width, "power")
    else:
        power_index = _default_power(names, time_index, width, path)
    if power_index == time_index:
        raise TraceError(f"{path}: the time and power columns are the same ({time_index})")
    return Layout(
        delimiter=delimiter,
        time_index=time_index,
        power_index=power_index,
        skip_lines=first_no if header else first_no - 1,
        first_data_line=data_no,
        first_time=data.split(delimiter)[time_index].strip(),
    )


def _default_power(names: list[str] | None, time_index: int, width: int, path: Path) -> int:
    """A column named like power; else the first column that is neither the time nor time-like."""
    lowered = [name.lower() for name in names] if names else []
    for wanted in POWER_NAMES:
        if wanted in lowered:
            return lowered.index(wanted)
    for index in range(width):
        if index != time_index and (not lowered or lowered[index] not in TIME_NAMES):
            return index
    raise TraceError(f"{path}: no power column found; pass --power-col")
