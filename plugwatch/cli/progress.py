"""A small terminal progress bar on stderr, shown only when stderr is a terminal.

Pipes, files and CI logs get nothing, so output stays clean for machines.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    """Counts steps of a long job and redraws one stderr line: `label [#####.....] 50%`.

    Use as a context manager; `step(n)` advances, `stage(text)` renames what is being done.
    """

    def __init__(self, total: float, label: str, stream: TextIO | None = None) -> None:
        self.total = max(float(total), 1e-9)
        self.label = label
        self.done = 0.0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream)
        self._last_drawn = -1

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def step(self, amount: float = 1.0) -> None:
        """Advance by `amount` steps and redraw when the shown percentage changes."""
        self.done = min(self.done + amount, self.total)
        self._draw()

    def stage(self, label: str) -> None:
        """Name the current stage (e.g. 'replaying') and redraw."""
        self.label = label
        self._last_drawn = -1
        self._draw()

    def close(self) -> None:
        """Clear the bar's line, leaving the terminal as it was."""
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.enabled = False

    def _draw(self) -> None:
        if not self.enabled:
            return
        percent = int(100 * self.done / self.total)
        if percent == self._last_drawn:
            return
        self._last_drawn = percent
        filled = BAR_WIDTH * percent // 100
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}%")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or stream-like objects without a terminal
        return False
