"""`plugwatch.cli.progress`: a bar on a terminal, silence anywhere else."""

from __future__ import annotations

import io
import os
import pty

from plugwatch.cli.progress import Progress


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    """Pipes and logs stay clean."""
    stream = io.StringIO()
    with Progress(10, "reading", stream=stream) as bar:
        bar.step(5)
    assert stream.getvalue() == ""


def test_bar_on_a_terminal_shows_percent_and_clears_itself() -> None:
    """On a real pseudo-terminal the bar shows the stage and percentage, then erases its line."""
    leader, follower = pty.openpty()
    try:
        with open(follower, "w", closefd=False) as tty, Progress(4, "reading", stream=tty) as bar:
            bar.step(2)
            bar.stage("replaying")
            bar.step(2)
        shown = _read_until(leader, "\r\x1b[2K")
    finally:
        os.close(leader)
        os.close(follower)
    assert "reading [###############...............]  50%" in shown
    assert "replaying [" in shown and "100%" in shown
    assert shown.endswith("\r\x1b[2K")


def _read_until(fd: int, end: str, timeout_s: float = 5.0) -> str:
    """What the terminal shows until `end` (a pty hands over its bytes in pieces)."""
    import select

    shown = ""
    while not shown.endswith(end) and select.select([fd], [], [], timeout_s)[0]:
        shown += os.read(fd, 4096).decode()
    return shown
