"""Start-up time of everyday commands: `plugwatch --help`, `status`, `history`, `--version`.

    .venv/bin/python bench/bench_startup.py [--runs 10] [--cold] [--instructions]

Each command runs as a fresh process against a small SQLite database made for the purpose (3
plugs, a few transitions, schema current), from a temporary folder. Warm: the files are in the OS
page cache (the usual case on a running box). --cold drops the page cache before every run
(`/proc/sys/vm/drop_caches`, root only) to show a first start after boot; it slows whatever else
runs on the machine for a moment. Prints the median and spread of wall-clock seconds, the median
CPU seconds (user + system: on a busy machine, about what an idle one would take), the load
average, and which heavy modules each command imported (numpy, matplotlib, alembic, ...).
--instructions also counts the CPU instructions of one run of each command under valgrind's
callgrind (about 50x slower): a figure that does not move with the machine's load, to compare
changes on a busy machine, beside `python -c pass` as the interpreter's own floor.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plugwatch.model import State, Transition
from plugwatch.store import Batch, open_store

COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "status": ["status"],
    "history": ["history", "--since", "7d"],
}
HEAVY = ("numpy", "matplotlib", "alembic", "apprise", "jinja2", "apscheduler", "paho", "aiohttp")
PROBE = (  # runs the command in-process to list what it imported; stdout is discarded
    "import sys, contextlib, io\nfrom plugwatch.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try: main(sys.argv[1:])\n    except SystemExit: pass\n"
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


def prepare(folder: Path) -> None:
    """A config with 3 plugs and a database holding a little history."""
    (folder / "plugwatch.yaml").write_text(
        "database: sqlite:///plugwatch.db\nplugs:\n"
        + "".join(f"  - {{name: p{i}, host: 127.0.0.1:{20000 + i}}}\n" for i in range(3)),
        encoding="utf-8")
    store = open_store(f"sqlite:///{folder}/plugwatch.db")
    now = time.time()
    store.write_batch(Batch(transitions=[
        Transition(f"p{i}", now - 3600 * k, State.STANDBY, State.ON, "power", 50.0)
        for i in range(3) for k in range(1, 4)]))
    store.close()


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(argv: list[str], cwd: Path, cold: bool) -> tuple[float, float]:
    """(wall-clock s, CPU s) of one run; on a busy machine the CPU time is the steadier figure:
    it is about what the wall-clock time would be on an idle one (with a warm page cache)."""
    if cold:
        drop_caches()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plugwatch", *argv], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def instructions(argv: list[str], cwd: Path) -> int:
    """CPU instructions of one run under callgrind (independent of what else the machine does)."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, *argv],
        cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
    found = re.search(r"Collected : (\d+)", out)
    if found is None:
        raise SystemExit(f"valgrind printed no instruction count: {out.strip()[-200:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's instructions under valgrind (callgrind)")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (Debian: apt install valgrind)")
    if args.cold and os.geteuid() != 0:
        parser.error("--cold needs root (it writes /proc/sys/vm/drop_caches)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{'cold (page cache dropped before each run)' if args.cold else 'warm'}; "
              f"median of {args.runs}")
        for argv in COMMANDS.values():
            runs = [timed(argv, folder, args.cold) for _ in range(args.runs)]
            times = sorted(wall for wall, _ in runs)
            cpu = statistics.median(cpu for _, cpu in runs)
            probe = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=folder,
                                   capture_output=True, text=True, check=True)
            heavy = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else ""
            print(f"  plugwatch {' '.join(argv):<18} wall median {statistics.median(times):.3f} s "
                  f"(min {times[0]:.3f}, max {times[-1]:.3f}), CPU median {cpu:.3f} s  "
                  f"imports: {heavy or 'none of them'}")
        if args.instructions:
            floor = instructions(["-c", "pass"], folder)
            print(f"instructions of one run (callgrind); `python -c pass` alone: "
                  f"{floor / 1e6:,.0f} M")
            for argv in COMMANDS.values():
                count = instructions(["-m", "plugwatch", *argv], folder)
                print(f"  plugwatch {' '.join(argv):<18} {count / 1e6:,.0f} M instructions")


if __name__ == "__main__":
    main()
