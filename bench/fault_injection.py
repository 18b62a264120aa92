"""Fault injection: the real `plugwatch run` against hundreds of plugs, some of them broken, while
its PostgreSQL stops and starts, its notifier is down, and it is killed with SIGKILL in between.

    nice python bench/fault_injection.py                 # 300 plugs, 4 minutes (+ the drain)
    nice python bench/fault_injection.py --plugs 500 --duration 480

What runs (each a real process or server):
- emulated Kasa plugs over TCP in a process of their own (pinned to the last CPU): "cyclers"
  switching between 400 W and 3 W on a known schedule (on for 30 s of every 60 s, phases spread),
  and faulty plugs that hang, flood bytes, answer garbage, lie about a frame's length, answer the
  wrong JSON shape, or report NaN power;
- a private PostgreSQL (plugwatch.testing.privatepg), stopped for a long and a short outage;
- an HTTP receiver that the alerts go to through apprise's json://: refusing connections, then
  answering 500, then hanging, then well again;
- `plugwatch run` with a rule alerting every run's end; SIGKILLed and restarted several times
  (while the database is up), stopped with SIGTERM at the end, then run once more until every
  alert is delivered.

Then it compares what the database holds and what the receiver got with what the schedule
implies: lost and duplicated transitions, runs and alerts (all must be 0), and prints the memory
high-water mark of the service during the outage and its log lines per minute.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import cpu_seconds, emulator_cpu, header, load

PERIOD_S = 60.0  # a cycler's schedule: on for ON_S of every PERIOD_S
ON_S = 30.0
ON_W, STANDBY_W = 400.0, 3.0
TOLERANCE_S = 20.0  # a transition may come this late after its edge (a restart, dwell, lateness)
FAULTS = ("hang", "flood", "garbage", "lying_length", "wrong_shape", "nan")

EMULATOR = """
import asyncio, json, sys, time
from plugwatch.emulator import EmulatedPlug, Emulator, raise_open_file_limit
from plugwatch.emulator.faults import FaultyPlug
PERIOD, ON, ON_W, STANDBY_W = (float(x) for x in sys.argv[4:8])
def level(i, n, t0):
    phase = i * PERIOD / n
    return lambda _s: ON_W if (time.time() - t0 - phase) % PERIOD < ON else STANDBY_W
async def main(t0, n, faults):
    raise_open_file_limit()
    plugs = [EmulatedPlug("HS110v2", alias=f"c{i:04d}", power=level(i, n, t0)) for i in range(n)]
    ports = await Emulator().start(plugs)
    broken = [FaultyPlug(power_w=40.0, fault=fault) for fault in faults]
    ports += [await plug.start() for plug in broken]
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()
asyncio.run(main(float(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])))
"""

RULES = """\
- name: run-done
  plugs: {tags: [cycler]}
  when: {from: "on", to: standby}
  notify: hook
  title: "{{ plug }} finished"
  body: "{{ plug }} {{ since }}"
"""


class Receiver:
    """An HTTP receiver for apprise's json://: up, down (connections refused), 500, or hanging."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.mode = "up"
        self.answered_500 = 0
        self.hung = 0  # requests never answered
        self._hold = self._placeholder(0)
        self.port = int(self._hold.getsockname()[1])
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()

    @staticmethod
    def _placeholder(port: int) -> Any:
        import socket

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # bound, not listening: connections are refused
        return sock

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/"

    def set(self, mode: str) -> None:
        """`up`, `down`, `500` or `hang`."""
        if mode == "down":
            self._stop_server()
        elif self._server is None:
            self._start_server()
        if mode == "hang":
            self._release.clear()
        else:
            self._release.set()
        self.mode = mode

    def _start_server(self) -> None:
        owner = self
        self._hold.close()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if owner.mode == "hang":  # never answers: the request is dropped, not taken
                    owner._release.wait(120)
                    owner.hung += 1
                    self.close_connection = True
                    return
                if owner.mode == "500":
                    owner.answered_500 += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                owner.received.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._hold = self._placeholder(self.port)

    def close(self) -> None:
        self._release.set()
        self._stop_server()
        self._hold.close()


@dataclass
class Service:
    """`plugwatch run` incarnations, one at a time; their log lines timestamped as they come."""

    config: Path
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    lines: list[tuple[float, str]] = field(default_factory=list)
    cpu_s: dict[int, float] = field(default_factory=dict)  # pid -> latest CPU seconds seen
    starts: int = 0
    kills: int = 0
    exits: list[int] = field(default_factory=list)  # exit statuses of SIGTERM stops
    _readers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.starts += 1
        out = (self.folder / f"run{self.starts}.out").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plugwatch", "run", "--config", str(self.config)],
            stdout=out, stderr=subprocess.PIPE, cwd=self.folder)
        out.close()
        reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        reader.start()
        self._readers.append(reader)

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        with (self.folder / f"run{self.starts}.err").open("wb") as copy:
            for raw in proc.stderr:
                copy.write(raw)
                self.lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))

    def sample(self) -> int | None:
        """RSS in bytes of the running incarnation (None when none runs); notes its CPU."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            self.cpu_s[proc.pid] = cpu_seconds(proc.pid)
        except (OSError, IndexError):
            return None
        kb = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        return int(kb.group(1)) * 1024 if kb else None

    def kill9(self) -> None:
        assert self.proc is not None
        self.sample()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    def stop(self, timeout: float = 90.0) -> int:
        assert self.proc is not None
        self.sample()
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout)
        self.exits.append(status)
        for reader in self._readers:
            reader.join(10)
        return status

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def write_config(folder: Path, database: str, ports: list[int], cyclers: int, hook: str,
                 max_queued: int) -> Path:
    lines = []
    for i, port in enumerate(ports):
        if i < cyclers:
            lines.append(f"  - {{name: c{i:04d}, host: '127.0.0.1:{port}', tags: [cycler]}}")
        else:
            fault = FAULTS[(i - cyclers) % len(FAULTS)]
            lines.append(f"  - {{name: {fault}{i:04d}, host: '127.0.0.1:{port}'}}")
    (folder / "rules.yaml").write_text(RULES)
    config = folder / "plugwatch.yaml"
    config.write_text(
        f"database: {database}\n"
        "defaults: {interval: 1s, timeout: 0.5s, window: 2s, unreachable_after: 3,\n"
        "           dwell: {on: 3s, standby: 3s, off: 3s}}\n"
        f"max_queued_readings: {max_queued}\n"
        f"targets:\n  hook: '{hook}'\nrules: rules.yaml\nplugs:\n" + "\n".join(lines) + "\n")
    return config


def edges(i: int, n: int, t0: float, start: float, end: float) -> tuple[list[float], list[float]]:
    """Cycler i's scheduled on and off edges between `start` and `end`."""
    phase = i * PERIOD_S / n
    k = int((start - t0 - phase) // PERIOD_S) - 1
    ons, offs = [], []
    while True:
        on = t0 + phase + k * PERIOD_S
        if on > end + PERIOD_S:
            return ons, offs
        ons.append(on)
        offs.append(on + ON_S)
        k += 1


@dataclass
class Tally:
    """Expected edges of one kind and what matched them."""

    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0  # matched no scheduled edge at all
    late_s: list[float] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # what was seen twice, for the report
    losses: list[str] = field(default_factory=list)  # edges nothing matched

    def text(self) -> str:
        late = sorted(self.late_s)
        worst = f", latest {late[-1]:.1f} s after its edge" if late else ""
        return (f"{self.expected:5d} expected, lost {self.lost}, duplicated {self.duplicated}, "
                f"unexpected {self.unexpected}{worst}")


def match(tally: Tally, plug: str, scheduled: list[float], window: tuple[float, float],
          seen: list[float]) -> None:
    """Count each scheduled edge inside `window` matched by 0, 1 or more times in `seen`."""
    hits: Counter[int] = Counter()
    matched: dict[int, list[float]] = {}
    for ts in seen:
        found = [k for k, edge in enumerate(scheduled) if edge - 1.5 <= ts <= edge + TOLERANCE_S]
        if not found:
            tally.unexpected += window[0] <= ts <= window[1]
            continue
        hits[found[0]] += 1
        matched.setdefault(found[0], []).append(ts)
        tally.late_s.append(ts - scheduled[found[0]])
    for k, edge in enumerate(scheduled):
        if window[0] <= edge <= window[1]:
            tally.expected += 1
            tally.lost += hits[k] == 0
            if hits[k] == 0:
                tally.losses.append(f"{plug} edge at {edge - window[0] + 20:.1f} s")
        tally.duplicated += max(0, hits[k] - 1)
        if hits[k] > 1:
            seen_at = [round(ts - window[0] + 20, 1) for ts in matched[k]]
            tally.duplicates.append(f"{plug} edge at {edge - window[0] + 20:.1f} s: seen at "
                                    f"{seen_at} s")


def compare(database: str, receiver: Receiver, cyclers: int, t0: float,
            window: tuple[float, float], until: float) -> dict[str, Any]:
    """Lost / duplicated transitions, runs and alerts of the cyclers, from the database and the
    receiver, against the schedule."""
    from plugwatch.model import State
    from plugwatch.store import open_store

    store = open_store(database)
    try:
        transitions = store.transitions()
        runs = [run for run in store.runs() if not run.open]
        outbox = store.alerts()
        dead = store.dead_letters()
        status = store.status()
    finally:
        store.close()
    tallies = {name: Tally() for name in ("transitions to on", "transitions to standby", "runs",
                                          "alerts received")}
    by_plug: dict[str, dict[str, list[float]]] = {}

    def seen(plug: str, what: str) -> list[float]:
        return by_plug.setdefault(plug, {}).setdefault(what, [])

    other = Counter[str]()
    for step in transitions:
        if not step.plug.startswith("c"):
            continue
        if step.to_state is State.ON and step.from_state is not State.UNKNOWN:
            seen(step.plug, "on").append(step.ts)
        elif step.to_state is State.STANDBY and step.from_state is State.ON:
            seen(step.plug, "standby").append(step.ts)
        elif step.from_state is not State.UNKNOWN:
            other[f"{step.from_state}->{step.to_state}"] += 1
    for run in runs:
        seen(run.plug, "runs").append(run.start)
    for _, body in receiver.received:
        plug, since = str(body.get("message", "")).split()
        seen(plug, "alerts").append(float(since))
    for i in range(cyclers):
        plug = f"c{i:04d}"
        ons, offs = edges(i, cyclers, t0, window[0] - PERIOD_S, until)
        # a run ends (and alerts) at its off edge: expected when that edge is inside the window
        match(tallies["transitions to on"], plug, ons, window, seen(plug, "on"))
        match(tallies["transitions to standby"], plug, offs, window, seen(plug, "standby"))
        match(tallies["runs"], plug, ons, (window[0], window[1] - ON_S), seen(plug, "runs"))
        match(tallies["alerts received"], plug, offs, window, seen(plug, "alerts"))
    received: dict[str, list[float]] = {}
    for at, body in receiver.received:
        received.setdefault(str(body.get("message")), []).append(round(at - window[0] + 20, 1))
    duplicates = [f"{name}: {line}" for name, tally in tallies.items()
                  for line in tally.duplicates]
    duplicates += [f"alert {message!r} received at {times} s" for message, times
                   in received.items() if len(times) > 1]
    losses = [f"{name}: {line}" for name, tally in tallies.items() for line in tally.losses]
    # how long after its delivery an alert was recorded as sent: a kill -9 in between repeats it
    first_receipt: dict[str, float] = {}
    for at, body in receiver.received:
        first_receipt.setdefault(str(body.get("message")), at)
    record_lag = sorted(row["sent_at"] - first_receipt[row["body"]] for row in outbox
                        if row["sent_at"] is not None and row["body"] in first_receipt)
    sent = Counter(row["status"] for row in outbox)
    faulty_states = Counter(row["state"] for row in status if not row["plug"].startswith("c"))
    return {"tallies": tallies, "other_transitions": dict(other), "outbox": dict(sent),
            "duplicates": duplicates, "losses": losses, "record_lag_s": record_lag,
            "dead_letters": len(dead), "faulty_states": dict(faulty_states),
            "faulty_reasons": Counter(shape(row["last_failure"] or "") for row in status
                                      if not row["plug"].startswith("c"))}


def shape(line: str) -> str:
    """A log line with its numbers, names and quoted details blanked, to count kinds of line."""
    text = line.split(": ", 1)[-1] if line.startswith("20") else line
    return re.sub(r"'[^']*'|\([^)]*\)|\S*\d\S*", "#", text)[:90]


def per_minute(stamps: list[float], start: float, end: float) -> tuple[float, int]:
    """(mean lines per minute over start..end, the most lines in any minute of it)."""
    minutes = Counter(int((ts - start) // 60) for ts in stamps if start <= ts <= end)
    span = max(end - start, 1.0) / 60.0
    return sum(minutes.values()) / span, max(minutes.values(), default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--plugs", type=int, default=300, help="plugs in all (default 300)")
    parser.add_argument("--faulty", type=int, default=60,
                        help="of them faulty, the faults dealt round-robin (default 60)")
    parser.add_argument("--duration", type=float, default=240.0,
                        help="seconds of faults before the drain (default 240, at least 180)")
    parser.add_argument("--max-queued", type=int, default=10000,
                        help="the config's max_queued_readings (default 10000: the outage "
                             "reaches it and thins)")
    parser.add_argument("--keep", action="store_true", help="keep the folder with logs and config")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.duration < 180 or args.faulty >= args.plugs:
        parser.error("--duration must be at least 180 and --faulty below --plugs")
    from plugwatch.testing.privatepg import PrivatePostgres, available

    if not available():
        print("fault_injection: PostgreSQL's initdb/pg_ctl are not installed", file=sys.stderr)
        return 2
    print(header("fault injection"), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="plugwatch-faults-"))
    cyclers = args.plugs - args.faulty
    faults = [FAULTS[k % len(FAULTS)] for k in range(args.faulty)]
    t0 = time.time()
    cpus = emulator_cpu()
    prefix = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    emulator = subprocess.Popen(
        [*prefix, sys.executable, "-c", EMULATOR, str(t0), str(cyclers), json.dumps(faults),
         str(PERIOD_S), str(ON_S), str(ON_W), str(STANDBY_W)], stdout=subprocess.PIPE, text=True)
    receiver = Receiver()
    receiver.set("up")
    service = Service(folder / "plugwatch.yaml", folder)
    try:
        assert emulator.stdout is not None
        ports = json.loads(emulator.stdout.readline())
        with PrivatePostgres(durable=True) as pg:  # a crash-stop keeps what was committed
            write_config(folder, pg.url, ports, cyclers, receiver.url, args.max_queued)
            try:
                figures = run_schedule(args, service, pg, receiver, emulator, cyclers, t0)
            finally:
                if service.alive():
                    assert service.proc is not None
                    service.proc.kill()
        if args.json:
            print(json.dumps(figures, default=str))
        lost = sum(t.lost + t.duplicated + t.unexpected for t in figures["tallies"].values())
        return 0 if lost == 0 and figures["exits"] == [0, 0] else 1
    finally:
        receiver.close()
        emulator.terminate()
        emulator.wait(10)
        if args.keep:
            print(f"logs and config kept in {folder}")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def run_schedule(args: argparse.Namespace, service: Service, pg: Any, receiver: Receiver,
                 emulator: subprocess.Popen[str], cyclers: int, t0: float) -> dict[str, Any]:
    """Start the service, play the faults, stop, drain the alerts, compare, print."""
    d = args.duration
    actions: list[tuple[float, str, Callable[[], None]]] = [
        (0.10 * d, "kill -9 and restart", lambda: (service.kill9(), service.start())),
        (0.20 * d, "PostgreSQL stopped", pg.stop),
        (0.25 * d, "notifier down (connections refused)", lambda: receiver.set("down")),
        (0.575 * d, "PostgreSQL started", pg.start),
        (0.62 * d, "kill -9 and restart", lambda: (service.kill9(), service.start())),
        (0.65 * d, "notifier answers 500", lambda: receiver.set("500")),
        (0.70 * d, "kill -9 and restart", lambda: (service.kill9(), service.start())),
        (0.72 * d, "notifier hangs", lambda: receiver.set("hang")),
        (0.76 * d, "notifier up", lambda: receiver.set("up")),
        (0.80 * d, "PostgreSQL stopped (short outage)", lambda: pg.stop("immediate")),
        (0.85 * d, "PostgreSQL started", pg.start),
        (0.90 * d, "kill -9 and restart", lambda: (service.kill9(), service.start())),
    ]
    start = time.time()
    service.start()
    memory: list[tuple[float, int]] = []
    outage: list[tuple[float, float]] = []
    emulator_cpu0 = cpu_seconds(emulator.pid)
    for at, what, act in actions:
        while time.time() < start + at:
            rss = service.sample()
            if rss is not None:
                memory.append((time.time(), rss))
            time.sleep(0.5)
        act()
        now = time.time()
        if what.startswith("PostgreSQL stopped"):
            outage.append((now, float("inf")))
        elif what.startswith("PostgreSQL started"):
            outage[-1] = (outage[-1][0], now)
        print(f"  {now - start:6.1f} s  {what}", flush=True)
    while time.time() < start + d:
        rss = service.sample()
        if rss is not None:
            memory.append((time.time(), rss))
        time.sleep(0.5)
    stopped_at = time.time()
    first = service.stop()
    print(f"  {stopped_at - start:6.1f} s  SIGTERM: exit status {first}", flush=True)
    emulator_cpu_s = cpu_seconds(emulator.pid) - emulator_cpu0
    service_cpu_s = sum(service.cpu_s.values())
    # the drain: one more run until the outbox has nothing pending
    service.start()
    time.sleep(15.0)  # started and sampling (a SIGTERM before its handlers are set kills it)
    drained = drain(service, pg.url, stopped_at, deadline=time.time() + 420)
    second = service.stop()
    print(f"  drain: {'every alert delivered' if drained else 'alerts still pending'} after "
          f"{time.time() - stopped_at:.0f} s; SIGTERM: exit status {second}", flush=True)
    window = (start + 20.0, stopped_at - 20.0)
    figures = compare(pg.url, receiver, cyclers, t0, window, stopped_at)
    figures["exits"] = service.exits
    report(args, service, figures, memory, outage, start, stopped_at, service_cpu_s,
           emulator_cpu_s, receiver)
    return figures


def drain(service: Service, database: str, before: float, deadline: float) -> bool:
    """Wait until no alert created before `before` is pending (True), or the deadline (False)."""
    from plugwatch.store import open_store

    while time.time() < deadline:
        time.sleep(2.0)
        if not service.alive():
            return False
        try:
            store = open_store(database)
            try:
                pending = [row for row in store.alerts()
                           if row["status"] == "pending" and row["created_at"] <= before]
            finally:
                store.close()
        except Exception:  # the database is starting: ask again
            continue
        if not pending:
            return True
    return False


def report(args: argparse.Namespace, service: Service, figures: dict[str, Any],
           memory: list[tuple[float, int]], outage: list[tuple[float, float]], start: float,
           stopped_at: float, service_cpu_s: float, emulator_cpu_s: float,
           receiver: Receiver) -> None:
    long_outage = outage[0]
    before = [rss for ts, rss in memory if ts < long_outage[0]]
    during = [rss for ts, rss in memory if long_outage[0] <= ts <= long_outage[1]]
    mb = 1024 * 1024
    stamps = [ts for ts, _ in service.lines]
    whole, worst = per_minute(stamps, start, stopped_at)
    in_outage, _ = per_minute(stamps, *long_outage)
    print(f"\n{args.plugs} plugs ({args.plugs - args.faulty} switching on a schedule, "
          f"{args.faulty} faulty: {', '.join(FAULTS)}), {args.duration:.0f} s; "
          f"{service.starts} starts, {service.kills} kill -9, SIGTERM exits {service.exits}")
    for name, tally in figures["tallies"].items():
        print(f"  {name:24s} {tally.text()}")
    print(f"  other cycler transitions: {figures['other_transitions'] or 'none'}")
    print(f"  outbox: {figures['outbox']}; the receiver answered 500 to "
          f"{receiver.answered_500} posts and never answered {receiver.hung}; dead letters: "
          f"{figures['dead_letters']}")
    for line in figures["duplicates"][:10]:
        print(f"    duplicated: {line}")
    print(f"  faulty plugs' states: {figures['faulty_states']}")
    for reason, n in figures["faulty_reasons"].most_common():
        print(f"    {n:3d} x last failure: {reason}")
    for line in figures["losses"][:10]:
        print(f"    lost: {line}")
    lag = figures["record_lag_s"]
    if lag:
        print(f"  an alert was recorded as sent {1000 * lag[len(lag) // 2]:.0f} ms after the "
              f"receiver had it (median; 99th percentile {1000 * lag[int(0.99 * len(lag))]:.0f}"
              f" ms, max {1000 * lag[-1]:.0f} ms): a kill -9 in that window repeats it")
    print(f"  memory (RSS) of the service: {max(before, default=0) / mb:.0f} MB before the "
          f"{long_outage[1] - long_outage[0]:.0f} s database outage, high-water mark "
          f"{max(during, default=0) / mb:.0f} MB during it (max_queued_readings "
          f"{args.max_queued:,})")
    print(f"  log lines: {len(stamps)} in all, {whole:.1f} a minute on average, at most "
          f"{worst} in one minute; {in_outage:.1f} a minute during the database outage")
    for text, n in Counter(shape(line) for _, line in service.lines).most_common(8):
        print(f"    {n:5d} x {text}")
    print(f"  CPU: service {service_cpu_s:.1f} s ({service_cpu_s / (stopped_at - start):.2f} "
          f"of a core), emulators {emulator_cpu_s:.1f} s; load average now {load()}")


if __name__ == "__main__":
    sys.exit(main())
