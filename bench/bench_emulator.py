"""How many requests per second the emulator answers on one core, and the driver's CPU per read.

    .venv/bin/python bench/bench_emulator.py [--plugs 5000] [--seconds 5] [--repeats 3]
                                             [--transport tcp|udp]

The emulator serves `--plugs` HS110v2 plugs from ONE process pinned to CPU 0. A load process
pinned to CPU 1 keeps one request in flight on every plug (the combined sysinfo + emeter request
the driver sends: over TCP on each plug's connection, over UDP one datagram per plug from one
socket, sent again to a plug whose answer has not come within half a second), counts the answers
over the window and reads the emulator's CPU time from /proc. Then a driver process reads up to
`--driver-plugs` plugs with KasaDriver (over the same transport) in rounds and divides its CPU
time by the readings. Median of `--repeats` for each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

COMBINED = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}
EMULATOR = """
import asyncio, json, os, sys
if len(os.sched_getaffinity(0)) > 1:
    os.sched_setaffinity(0, {0})
from plugwatch.emulator import EmulatedPlug, Emulator
async def main(n, udp):
    plugs = [EmulatedPlug("HS110v2", alias=f"bench {i}", power=100.0 + i % 7) for i in range(n)]
    ports = await Emulator().start(plugs, udp=udp, tcp=not udp)
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "udp"))
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _ClosedLoop(asyncio.Protocol):
    """Sends the next request as soon as the previous answer is complete; counts answers."""

    def __init__(self, frame: bytes, counter: list[int]) -> None:
        self.frame, self.counter, self.buf = frame, counter, b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.frame)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + n:
                break
            buf = buf[4 + n:]
            self.counter[0] += 1
            assert self.transport is not None
            self.transport.write(self.frame)
        self.buf = buf


def _udp_load(ports: list[int], counter: list[int]) -> Callable[[], None]:
    """One datagram in flight per plug from one socket; returns the function that stops it."""
    from plugwatch.sources.kasa import protocol as wire

    loop = asyncio.get_running_loop()
    frame = wire.encode_datagram(COMBINED)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    sent = {("127.0.0.1", p): 0.0 for p in ports}  # address -> loop time of its datagram
    buf = memoryview(bytearray(65536))

    def send(address: tuple[str, int]) -> None:
        sent[address] = loop.time()
        with contextlib.suppress(BlockingIOError):  # lost: the sweep sends it again
            sock.sendto(frame, address)

    def readable() -> None:
        while True:
            try:
                _, address = sock.recvfrom_into(buf)
            except BlockingIOError:
                return
            counter[0] += 1
            send(address)

    def sweep() -> None:
        late = loop.time() - 0.5
        for address, at in sent.items():
            if at < late:
                send(address)
        timer[0] = loop.call_later(0.5, sweep)

    loop.add_reader(sock.fileno(), readable)
    timer = [loop.call_soon(sweep)]

    def stop() -> None:
        timer[0].cancel()
        loop.remove_reader(sock.fileno())
        sock.close()

    return stop


async def _tcp_load(ports: list[int], counter: list[int]) -> Callable[[], None]:
    """One request in flight on one connection per plug; returns the function that stops it."""
    from plugwatch.sources.kasa import protocol as wire

    frame = wire.encode_request(COMBINED)
    loop = asyncio.get_running_loop()
    transports = []
    for i in range(0, len(ports), 500):  # connect in batches: no SYN storm
        pairs = await asyncio.gather(*(
            loop.create_connection(lambda: _ClosedLoop(frame, counter), "127.0.0.1", p)
            for p in ports[i:i + 500]))
        transports += [t for t, _ in pairs]

    def stop() -> None:
        for t in transports:
            t.close()

    return stop


async def _load(ports: list[int], seconds: float, emulator_pid: int, transport: str
                ) -> dict[str, float]:
    counter = [0]
    stop = _udp_load(ports, counter) if transport == "udp" else await _tcp_load(ports, counter)
    await asyncio.sleep(1.0)  # warm up
    n0, cpu0, t0 = counter[0], _cpu_seconds(emulator_pid), time.monotonic()
    await asyncio.sleep(seconds)
    n1, cpu1, t1 = counter[0], _cpu_seconds(emulator_pid), time.monotonic()
    stop()
    answers = n1 - n0
    return {"per_s": answers / (t1 - t0), "cpu_share": (cpu1 - cpu0) / (t1 - t0),
            "per_cpu_s": answers / max(cpu1 - cpu0, 1e-9)}


async def _driver(ports: list[int], rounds: int, transport: str) -> dict[str, float]:
    from plugwatch.sources.kasa.driver import KasaDriver

    drivers = [KasaDriver("127.0.0.1", p, timeout=30.0, transport=transport) for p in ports]
    await asyncio.gather(*(d.read(0.0) for d in drivers))  # first contact, not measured
    cpu0, t0 = time.process_time(), time.monotonic()
    for _ in range(rounds):
        await asyncio.gather(*(d.read(time.time()) for d in drivers))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    for d in drivers:
        await d.close()
    reads = rounds * len(drivers)
    return {"us_per_read": 1e6 * cpu / reads, "reads_per_s": reads / wall}


def _worker(args: argparse.Namespace) -> None:
    from plugwatch.emulator import raise_open_file_limit

    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})
    raise_open_file_limit()
    ports = json.loads(args.ports)
    if args.worker == "load":
        result = asyncio.run(_load(ports, args.seconds, args.emulator_pid, args.transport))
    else:
        result = asyncio.run(_driver(ports[: args.driver_plugs], args.rounds, args.transport))
    print(json.dumps(result))


def _run_worker(args: argparse.Namespace, kind: str, ports: list[int], pid: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--ports", json.dumps(ports),
         "--emulator-pid", str(pid), "--seconds", str(args.seconds),
         "--rounds", str(args.rounds), "--driver-plugs", str(args.driver_plugs),
         "--transport", args.transport],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    """Start the emulator, run the load and driver workers `--repeats` times, print medians."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--plugs", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0, help="load window per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver-plugs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="driver reads per plug per repeat")
    parser.add_argument("--transport", choices=["tcp", "udp"], default="tcp")
    parser.add_argument("--worker", choices=["load", "driver"], help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--emulator-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    from plugwatch.emulator import raise_open_file_limit

    raise_open_file_limit()  # the emulator child inherits the limit before it raises its own
    started = time.monotonic()
    emulator = subprocess.Popen([sys.executable, "-c", EMULATOR, str(args.plugs), args.transport],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert emulator.stdout is not None
        ports = json.loads(emulator.stdout.readline())
        print(f"emulator: {len(ports)} plugs listening after {time.monotonic() - started:.1f} s")
        loads, drives = [], []
        for i in range(args.repeats):
            loads.append(_run_worker(args, "load", ports, emulator.pid))
            drives.append(_run_worker(args, "driver", ports, emulator.pid))
            print(f"repeat {i + 1}: emulator {loads[-1]['per_s']:8.0f} answers/s at "
                  f"{100 * loads[-1]['cpu_share']:3.0f}% of a core "
                  f"({loads[-1]['per_cpu_s']:8.0f} per CPU-second); driver "
                  f"{drives[-1]['us_per_read']:6.1f} µs CPU per read")
    finally:
        emulator.terminate()
        emulator.wait()

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    each = "one connection each" if args.transport == "tcp" else "UDP, one socket for all"
    print(f"\nmedian of {args.repeats}, {args.plugs} plugs, {each}:")
    print(f"  emulator answers/s (one process)  {med(loads, 'per_s'):10.0f}")
    print(f"  emulator answers per CPU-second   {med(loads, 'per_cpu_s'):10.0f}")
    print(f"  driver CPU per read ({min(args.driver_plugs, args.plugs)} plugs)"
          f"  {med(drives, 'us_per_read'):8.1f} µs")
    print(f"  driver reads/s against it         {med(drives, 'reads_per_s'):10.0f}")


if __name__ == "__main__":
    main()
