"""`plugwatch run --workers K`: K sampling processes with the configured plugs shared out.

One CPython process spends at most one core, about 8,000-10,000 Kasa samples per second. With
`--workers K` the parent prepares the database once, starts K children, forwards
SIGINT/SIGTERM/SIGHUP to them and waits. On SQLite (`run --shard i/K`) child i samples the plugs
at positions i, i+K, i+2K... of the config; all write to the same database; only child 0 sends
notifications (the outbox is shared), each keeps its own rules-engine state. On PostgreSQL the
children are clustered instances (`run --cluster`): they share the plugs by leases exactly as
instances on several machines do (service.cluster), so a child that dies is covered by the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from plugwatch.errors import ConfigError

T = TypeVar("T")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'1/4' -> (1, 4); None -> None; ConfigError for anything else."""
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ConfigError(f"--shard: expected I/K with 0 <= I < K, got {text!r}")
    return int(index), int(count)


def shard_of(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The items at positions index, index+count, ... (all of them without a shard)."""
    if shard is None:
        return list(items)
    index, count = shard
    return list(items[index::count])


def run_workers(argv: list[str], count: int, *, shard: bool = True) -> int:
    """Run `plugwatch <argv> --shard i/count` for each i (without shard: `plugwatch <argv>`
    `count` times, the children sharing the plugs by leases) until all end; the worst status.

    Under systemd the children notify it themselves (the unit needs NotifyAccess=all): each
    sends READY once it samples and pings the watchdog while it is healthy, so WATCHDOG_PID (the
    parent's) is not passed on.
    """
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
    children = [
        subprocess.Popen([sys.executable, "-m", "plugwatch", *argv,
                          *(["--shard", f"{i}/{count}"] if shard else [])], env=env)
        for i in range(count)
    ]

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    return max(child.wait() for child in children)
