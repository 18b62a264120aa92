"""Side by side, one run: CPU per reading of plugwatch's read path and of the clients it is held to.

    .venv/bin/python bench/bench_read_path.py [--plugs 1000 10000] [--seconds 10] [--repeats 3]

The same emulated HS110v2 plugs (TCP and UDP, in processes of their own pinned to the last CPU)
are polled at 1 Hz, each client in a fresh process pinned to CPU 0, ten phase-shifted slots per
second, the rounds alternating between the clients:

  epoll          a non-asyncio loop on select.epoll: the floor of Python on this kernel
  asyncio        the minimal asyncio client: one asyncio.Protocol per plug, json.loads the answer
  plugwatch      plugwatch's Sampler + KasaDriver fast path, each reading to a callback
  plugwatch-read the same driver through the Sampler's generic path (a task awaiting read())
  udp            a minimal client on one UDP socket, drained in a loop
  plugwatch-udp  plugwatch's Sampler + KasaDriver(transport="udp")
  python-kasa    python-kasa's Device.update() (at most --kasa-plugs plugs: it cannot keep up)
  kasa-request   python-kasa's protocol.query() sending plugwatch's one combined request

Figure: the client process's CPU time (user + system) over the window divided by the readings it
got in it. The emulators' CPU over the same windows is printed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

from plugwatch.sources.kasa import protocol as wire

COMBINED = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}
CLIENTS = ["epoll", "asyncio", "plugwatch", "plugwatch-read", "udp", "plugwatch-udp",
           "python-kasa", "kasa-request"]
SLOTS = 10
INTERVAL = [1.0]  # seconds between two reads of a plug (--interval; under callgrind, longer)
TIMEOUT = [2.0]  # plugwatch's read timeout (--timeout; under callgrind, longer)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _power(body: bytes | memoryview) -> float:
    return float(json.loads(wire.decrypt(body))["emeter"]["get_realtime"]["power_mw"])


class Window:
    """Counts readings; the CPU and count between two `mark()`s.

    Under --callgrind each mark first asks the parent (one line on stdout, an answer on stdin)
    to switch callgrind's instrumentation on or off, so the instructions counted are the
    window's.
    """

    def __init__(self, counters: Callable[[], dict[str, int]] = dict) -> None:
        self.ok = 0
        self.failed = 0
        self.counters = counters  # more counts of the client's, differenced over the window too
        self.marks: list[tuple[float, float, int, int, dict[str, int]]] = []

    def mark(self) -> None:
        if os.environ.get("BENCH_CALLGRIND"):
            print(f"callgrind {'on' if not self.marks else 'off'}", flush=True)
            sys.stdin.readline()
        self.marks.append((time.monotonic(), _cpu(), self.ok, self.failed, self.counters()))

    def result(self) -> dict[str, float]:
        (t0, c0, ok0, f0, n0), (t1, c1, ok1, f1, n1) = self.marks[-2:]
        return {"ok": ok1 - ok0, "failed": f1 - f0, "cpu_s": c1 - c0, "wall_s": t1 - t0,
                "us": 1e6 * (c1 - c0) / max(1, ok1 - ok0), **{k: n1[k] - n0[k] for k in n1}}


def run_epoll(plugs: list[Any], warmup: float, seconds: float) -> dict[str, float]:
    """A select.epoll loop: send each slot's requests, parse each answer in place."""
    import select
    import socket

    frame = wire.encode_request(COMBINED)
    socks = []
    for host, port in plugs:
        sock = socket.create_connection((host, port))
        sock.setblocking(False)
        socks.append(sock)
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    busy: dict[int, bytes] = {}
    buf = memoryview(bytearray(65536))
    win = Window()
    start = time.monotonic() + 0.1
    slots = [socks[k::SLOTS] for k in range(SLOTS)]
    tick = 0
    marks = [start + warmup, start + warmup + seconds]
    while True:
        now = time.monotonic()
        while marks and now >= marks[0]:
            marks.pop(0)
            win.mark()
        if not marks:
            break
        due = start + tick * INTERVAL[0] / SLOTS
        if now >= due:
            for sock in slots[tick % SLOTS]:
                if sock.fileno() not in busy:
                    busy[sock.fileno()] = b""
                    sock.send(frame)
            tick += 1
            continue
        for fd, _ in ep.poll(min(due, marks[0]) - now):
            n = by_fd[fd].recv_into(buf)
            data = busy.get(fd, b"") + bytes(buf[:n]) if busy.get(fd) else buf[:n]
            if len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:4], "big"):
                _power(data[4:])
                win.ok += 1
                del busy[fd]
            else:
                busy[fd] = bytes(data)
    return win.result()


async def run_asyncio(plugs: list[Any], warmup: float, seconds: float) -> dict[str, float]:
    """One plain asyncio.Protocol per plug; ticks are loop timers, one per slot."""
    loop = asyncio.get_running_loop()
    frame = wire.encode_request(COMBINED)
    win = Window()

    class Client(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.busy = False
            self.transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data if self.buf else data
            if len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                self.buf = buf
                return
            self.buf = b""
            self.busy = False
            _power(buf[4:])
            win.ok += 1

    clients = []
    for i in range(0, len(plugs), 500):
        pairs = await asyncio.gather(*(loop.create_connection(Client, host, port)
                                       for host, port in plugs[i:i + 500]))
        clients += [c for _, c in pairs]
    slots = [clients[k::SLOTS] for k in range(SLOTS)]
    start = loop.time() + 0.1

    def tick(n: int) -> None:
        for c in slots[n % SLOTS]:
            if not c.busy:
                c.busy = True
                c.transport.write(frame)
        loop.call_at(start + (n + 1) * INTERVAL[0] / SLOTS, tick, n + 1)

    loop.call_at(start, tick, 0)
    return await _windows(win, start, warmup, seconds)


async def _windows(win: Window, start: float, warmup: float, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start + warmup - loop.time())
    win.mark()
    await asyncio.sleep(seconds)
    win.mark()
    return win.result()


async def run_plugwatch(plugs: list[Any], warmup: float, seconds: float, how: str
                        ) -> dict[str, float]:
    """plugwatch's Sampler over KasaDriver: the fast path, the generic path, or over UDP."""
    from plugwatch.model import Reading
    from plugwatch.service.sampler import SampledPlug, Sampler
    from plugwatch.sources.kasa.driver import KasaDriver

    class ReadOnly:  # hides begin(): the Sampler then awaits read() in a task per read
        def __init__(self, driver: KasaDriver) -> None:
            self.driver, self.timeout = driver, driver.timeout

        async def read(self, now: float) -> Reading:
            return await self.driver.read(now)

        async def close(self) -> None:
            await self.driver.close()

    transport = "udp" if how == "udp" else "tcp"
    drivers: list[Any] = [KasaDriver(host, port, timeout=TIMEOUT[0], transport=transport)
                          for host, port in plugs]

    def udp_counts() -> dict[str, int]:  # the shared UDP socket's, once the first read made it
        link = drivers[0]._link
        if link is None:
            return {}
        # Linux's SO_MEMINFO: the last of its 9 counters is the datagrams the socket dropped
        # (its buffer full: answers that came faster than the loop took them)
        drops = sum(struct.unpack("9I", sock.getsockopt(socket.SOL_SOCKET, 55, 36))[8]
                    for sock in link._socks.values()) if sys.platform == "linux" else 0
        return {"retries": link.retries, "strays": link.strays, "drops": drops}

    win = Window(udp_counts if transport == "udp" else dict)

    def count(name: str, sample: Any) -> None:
        if type(sample) is Reading:
            win.ok += 1
        else:
            win.failed += 1

    if how == "read":
        drivers = [ReadOnly(d) for d in drivers]
    plugs = [SampledPlug(f"p{i}", d, INTERVAL[0]) for i, d in enumerate(drivers)]
    sampler = Sampler(plugs, count)  # the slots the service uses: 10+ per interval, <= 100 plugs
    sampler.start()
    loop = asyncio.get_running_loop()
    # as the service does once every plug has had its first read: the drivers, their frames and
    # routes out of the cyclic GC's scans (a gen-2 pass over them stalls the loop 50-300 ms)
    loop.call_later(INTERVAL[0] + TIMEOUT[0], gc.freeze)
    result = await _windows(win, loop.time() + 0.1, warmup, seconds)
    await sampler.drain(2.0)
    for d in drivers:
        await d.close()
    return result


async def run_udp(plugs: list[Any], warmup: float, seconds: float) -> dict[str, float]:
    """A minimal client on one UDP socket: sendto per plug per tick, drain on readable."""
    import socket

    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    sock.bind(("0.0.0.0", 0))
    frame = wire.encode_datagram(COMBINED)
    addrs = [(host, port) for host, port in plugs]
    busy: set[tuple[str, int]] = set()
    buf = memoryview(bytearray(65536))
    win = Window()

    def readable() -> None:
        while True:
            try:
                n, addr = sock.recvfrom_into(buf)
            except BlockingIOError:
                return
            busy.discard(addr)
            _power(buf[:n])
            win.ok += 1

    loop.add_reader(sock.fileno(), readable)
    slots = [addrs[k::SLOTS] for k in range(SLOTS)]
    start = loop.time() + 0.1

    def tick(n: int) -> None:
        for addr in slots[n % SLOTS]:
            if addr not in busy:  # (a lost datagram would leave it busy: none on loopback)
                busy.add(addr)
                sock.sendto(frame, addr)
        loop.call_at(start + (n + 1) * INTERVAL[0] / SLOTS, tick, n + 1)

    loop.call_at(start, tick, 0)
    return await _windows(win, start, warmup, seconds)


async def run_python_kasa(plugs: list[Any], warmup: float, seconds: float, how: str
                          ) -> dict[str, float]:
    """python-kasa: Device.update() + its Energy module, or protocol.query(COMBINED)."""
    from kasa import Device, DeviceConfig, Module

    devices = []
    for i in range(0, len(plugs), 200):
        devices += await asyncio.gather(*(Device.connect(config=DeviceConfig(
            host, port_override=port, timeout=10)) for host, port in plugs[i:i + 200]))
    win = Window()
    busy: set[int] = set()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def read(i: int) -> None:
        try:
            if how == "update":
                await devices[i].update()
                float(devices[i].modules[Module.Energy].current_consumption)
            else:
                answer = await devices[i].protocol.query(COMBINED)
                float(answer["emeter"]["get_realtime"]["power_mw"])
            win.ok += 1
        except Exception:
            win.failed += 1
        finally:
            busy.discard(i)

    start = loop.time() + 0.1

    def tick(n: int) -> None:
        for i in range(n % SLOTS, len(devices), SLOTS):
            if i not in busy:
                busy.add(i)
                task = loop.create_task(read(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        loop.call_at(start + (n + 1) * INTERVAL[0] / SLOTS, tick, n + 1)

    loop.call_at(start, tick, 0)
    return await _windows(win, start, warmup, seconds)


def client_main(args: argparse.Namespace) -> None:
    """--client NAME: measure one client over the plugs read from stdin, print JSON."""
    from plugwatch.emulator import raise_open_file_limit

    benchlib.pin(benchlib.client_cpu())
    raise_open_file_limit()
    INTERVAL[0], TIMEOUT[0] = args.interval, args.timeout
    plugs = [tuple(plug) for plug in json.loads(sys.stdin.readline())]
    w, s = args.warmup, args.seconds
    runs: dict[str, Any] = {
        "epoll": lambda: run_epoll(plugs, w, s),
        "asyncio": lambda: asyncio.run(run_asyncio(plugs, w, s)),
        "plugwatch": lambda: asyncio.run(run_plugwatch(plugs, w, s, "fast")),
        "plugwatch-read": lambda: asyncio.run(run_plugwatch(plugs, w, s, "read")),
        "udp": lambda: asyncio.run(run_udp(plugs, w, s)),
        "plugwatch-udp": lambda: asyncio.run(run_plugwatch(plugs, w, s, "udp")),
        "python-kasa": lambda: asyncio.run(run_python_kasa(plugs, w, s, "update")),
        "kasa-request": lambda: asyncio.run(run_python_kasa(plugs, w, s, "request")),
    }
    print(json.dumps(runs[args.client]()), flush=True)


def measure(client: str, plugs: list[Any], args: argparse.Namespace,
            emulators: benchlib.Emulators) -> dict[str, float]:
    """One client in a fresh process; its figures plus the emulators' CPU over its run."""
    e0, t0 = emulators.cpu_seconds(), time.monotonic()
    command = [sys.executable, __file__, "--client", client, "--seconds", str(args.seconds),
               "--warmup", str(args.warmup), "--interval", str(args.interval),
               "--timeout", str(args.timeout)]
    if args.callgrind:
        result = _under_callgrind(command, plugs)
    else:
        proc = subprocess.run(command, input=json.dumps(plugs) + "\n", capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"client {client} failed:\n{proc.stderr[-2000:]}")
        result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    e1, t1 = emulators.cpu_seconds(), time.monotonic()
    # the emulators answered over the client's whole run, warm-up included: scale its readings
    result["emulator_us"] = 1e6 * (e1 - e0) / max(1.0, result["ok"] * (t1 - t0) / args.seconds)
    result["load"] = os.getloadavg()[0]
    return result


def _under_callgrind(command: list[str], plugs: list[Any]) -> dict[str, float]:
    """Run a client under valgrind's callgrind, instrumented over its window only."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={folder}/cg.out", *command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env={**os.environ, "BENCH_CALLGRIND": "1"})
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(plugs) + "\n")
        proc.stdin.flush()
        result: dict[str, float] = {}
        for line in proc.stdout:
            if line.startswith("callgrind "):
                subprocess.run(["callgrind_control", "-i", line.split()[1], str(proc.pid)],
                               capture_output=True, check=True)
                proc.stdin.write("\n")
                proc.stdin.flush()
            elif line.startswith("{"):
                result = json.loads(line)
        if proc.wait() != 0 or not result:
            raise SystemExit(f"client {command[3]} failed under callgrind")
        totals = [line for line in Path(f"{folder}/cg.out").read_text().splitlines()
                  if line.startswith("totals:")]
    result["instructions"] = float(totals[0].split()[1])
    result["ki"] = result["instructions"] / 1000 / max(1, result["ok"])
    return result


def main() -> None:
    """Start the emulators for each N, run every client --repeats times, print medians."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--plugs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", nargs="+", default=CLIENTS, choices=CLIENTS)
    parser.add_argument("--kasa-plugs", type=int, default=1000,
                        help="python-kasa polls at most this many plugs (it cannot keep up)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between two reads of a plug (default 1)")
    parser.add_argument("--timeout", type=float, default=2.0, help="plugwatch's read timeout")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per reading with valgrind's callgrind instead "
                             "of CPU time (repeatable under any load; use few plugs: ~50x slower)")
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    what = "instructions (callgrind)" if args.callgrind else "CPU"
    print(benchlib.header(f"bench_read_path: {what} per reading, every plug read every "
                          f"{args.interval:g} s, side by side"))
    print(f"commit {benchlib.commit()}; clients pinned to CPU {benchlib.client_cpu()}, emulators "
          f"to {benchlib.emulator_cpu()}")
    table: dict[tuple[int, str], list[dict[str, float]]] = {}
    for n in args.plugs:
        with benchlib.Emulators(n, udp=True, per_process=4000) as emulators:
            for repeat in range(args.repeats):
                order = args.clients if repeat % 2 == 0 else args.clients[::-1]
                for client in order:
                    plugs = emulators.addresses
                    if client in ("python-kasa", "kasa-request"):
                        plugs = plugs[: args.kasa_plugs]
                    r = measure(client, plugs, args, emulators)
                    table.setdefault((n, client), []).append(r)
                    figure = (f"{r['ki']:7.1f} k instructions each" if args.callgrind
                              else f"{r['us']:7.1f} µs CPU each")
                    if "retries" in r:
                        figure += (f" ({r['retries']:.0f} retries, {r['strays']:.0f} strays, "
                                   f"{r['drops']:.0f} dropped)")
                    print(f"{n:>6} plugs round {repeat + 1} {client:<15} {r['ok']:>7.0f} readings "
                          f"{r['failed']:>5.0f} failed {figure} "
                          f"(emulators {r['emulator_us']:5.1f} µs)  load {r['load']:.1f}",
                          flush=True)
    key, unit = ("ki", "k instructions") if args.callgrind else ("us", "µs CPU")
    print(f"\nmedians of {args.repeats} ({args.seconds:g} s windows), {unit} per reading; "
          f"load average now {benchlib.load()}:")
    for n in args.plugs:
        base = benchlib.median([r[key] for r in table.get((n, "asyncio"), [])])
        for client in args.clients:
            rows = table[(n, client)]
            value = benchlib.median([r[key] for r in rows])
            plugs = min(n, args.kasa_plugs) if client in ("python-kasa", "kasa-request") else n
            ratio = f"{value / base:5.2f}x asyncio" if base else ""
            print(f"  {plugs:>6} plugs  {client:<15} {value:7.1f}  {ratio}  "
                  f"(rounds {min(r[key] for r in rows):.1f}-{max(r[key] for r in rows):.1f}; "
                  f"readings/s {benchlib.median([r['ok'] for r in rows]) / args.seconds:.0f})")


if __name__ == "__main__":
    main()
