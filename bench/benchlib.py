"""Shared parts of the benches: emulator processes on their own core, CPU time, load, medians.

Emulated plugs always run in processes of their own, pinned to the LAST CPU when the machine has
more than one (the measured client is pinned to CPU 0), so the client's figures never include the
cost of pretending to be the plugs, and the emulators' CPU is reported apart.

Like real plugs, which are one per IP address, emulator process k listens on a loopback address
of its own (127.0.1.k+1), at ports BASE_PORT.. below the ephemeral range: the plugs' listeners
then take none of the ephemeral ports the client's connections need (20,000 plugs would need
40,000 of the 28,232), and a stopped emulator leaves no TIME_WAIT in the way of the next.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PER_EMULATOR = 5000  # a TCP plug costs its emulator a listener and a connection: 2 of 20,000 fds
BASE_PORT = 20000  # each emulator's plugs listen at BASE_PORT, BASE_PORT+1, ... of its address

EMULATOR = """
import asyncio, json, sys, time
from plugwatch.emulator import EmulatedPlug, Emulator
def step(at):  # 2 W until epoch time `at`, 1000 W from then on
    return lambda _s: 1000.0 if time.time() >= at else 2.0
async def main(n, udp, tcp, steps, host, base):
    plugs = [EmulatedPlug("HS110v2", alias=f"bench {i}",
                          power=step(steps[i]) if steps else 100.0 + i % 7) for i in range(n)]
    try:
        ports = await Emulator().start(plugs, host, base, udp=udp, tcp=tcp)
    except OSError:  # someone holds one of those ports: let the OS choose them
        ports = await Emulator().start(plugs, host, 0, udp=udp, tcp=tcp)
    print(json.dumps([[host, p] for p in ports]), flush=True)
    await asyncio.Event().wait()
steps = json.loads(sys.stdin.readline())
asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1", steps, sys.argv[4],
                 int(sys.argv[5])))
"""


def client_cpu() -> set[int] | None:
    """The CPU the measured process is pinned to (None on a one-CPU machine)."""
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[0]} if len(cpus) > 1 else None


def emulator_cpu() -> set[int] | None:
    """The CPU the emulators are pinned to (None on a one-CPU machine)."""
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[-1]} if len(cpus) > 1 else None


def pin(cpus: set[int] | None) -> None:
    """Pin this process (all its threads) to `cpus`, if given."""
    if cpus:
        os.sched_setaffinity(0, cpus)


class Emulators:
    """`n` emulated HS110v2 plugs in processes of at most `per_process` plugs, on their own CPU.

    With `steps` (an epoch time per plug), plug i draws 2 W until steps[i], then 1000 W.
    """

    def __init__(self, n: int, *, udp: bool = False, tcp: bool = True,
                 per_process: int = PER_EMULATOR, cpus: set[int] | None = None,
                 steps: Sequence[float] = ()) -> None:
        from plugwatch.emulator import raise_open_file_limit

        raise_open_file_limit()  # the children inherit the raised limit
        cpus = emulator_cpu() if cpus is None else cpus
        prefix = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
        sizes = [min(per_process, n - i) for i in range(0, n, per_process)]
        self.procs = [subprocess.Popen(
            [*prefix, sys.executable, "-c", EMULATOR, str(size), str(int(udp)), str(int(tcp)),
             f"127.0.1.{k + 1}", str(BASE_PORT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for k, size in enumerate(sizes)]
        self.addresses: list[tuple[str, int]] = []  # (host, port) of each plug
        try:
            for i, proc in enumerate(self.procs):
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(list(steps[i * per_process:][:sizes[i]])) + "\n")
                proc.stdin.close()
            for proc in self.procs:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if not line:
                    raise SystemExit("an emulator process did not start (see its error above)")
                self.addresses += [(host, port) for host, port in json.loads(line)]
        except BaseException:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of all emulator processes so far."""
        return sum(cpu_seconds(p.pid) for p in self.procs if p.poll() is None)

    def stop(self) -> None:
        """End the emulator processes."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)

    def __enter__(self) -> Emulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # a wrapper (taskset) execs the real program, so the pid is the emulator's own
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def allocator_bytes() -> tuple[int, int]:
    """What this process's two allocators hold now: Python's small-object allocator (pymalloc:
    its arenas, live objects and free blocks) and malloc (glibc's heaps, in use and free; 0 if
    not glibc). RSS less the two is mostly the interpreter, the libraries and their data."""
    import ctypes
    import tempfile

    with tempfile.TemporaryFile("w+") as out:  # sys._debugmallocstats writes to the C stderr
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    # the first "Total" is the arenas' (live blocks, free blocks, headers, alignment)
    arenas = next((line for line in text.splitlines() if line.startswith("Total")), "= 0")
    pymalloc = int(arenas.split("=", 1)[1].strip().replace(",", ""))

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return pymalloc, 0
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return pymalloc, info.arena + info.hblkhd


def load() -> str:
    """The 1, 5 and 15 minute load averages, e.g. '3.2 2.9 2.1'."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def header(title: str) -> str:
    """One line naming the bench, the machine, the time and the load."""
    return (f"{title}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load()} "
            f"(a shared machine: other people's work runs beside this)")


def commit() -> str:
    """The checked-out commit (short hash, '+' when the tree has changes), for the record."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def median(values: Sequence[float]) -> float:
    """The median (0.0 for none)."""
    return statistics.median(values) if values else 0.0
