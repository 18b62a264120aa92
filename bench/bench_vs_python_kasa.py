"""Side by side: CPU per reading of plugwatch's KasaDriver and python-kasa, same plugs and rate.

    .venv/bin/python bench/bench_vs_python_kasa.py [--plugs 500] [--seconds 10] [--repeats 3]

Emulated HS110v2 plugs run in a separate process. Each client then runs in a fresh process of its
own and polls every plug at `--rate` Hz for `--seconds`: plugwatch with `KasaDriver.read()`,
python-kasa (test/bench dependency only) with `Device.update()` and its Energy module. The figure
is the client process's CPU time (user + system) over the polling window divided by the readings
it got; the rounds alternate between the clients and the medians are printed with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

EMULATOR = """
import asyncio, sys
from plugwatch.emulator import EmulatedPlug, Emulator
async def main(n, port):
    plugs = [EmulatedPlug("HS110v2", alias=f"bench {i}", power=100.0 + i % 7) for i in range(n)]
    emulator = Emulator()
    await emulator.start(plugs, port=port)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


async def _open(client: str, ports: list[int]) -> list:
    if client == "plugwatch":
        from plugwatch.sources.kasa.driver import KasaDriver

        return [KasaDriver("127.0.0.1", p, timeout=10.0) for p in ports]
    from kasa import Device, DeviceConfig

    configs = [DeviceConfig("127.0.0.1", port_override=p, timeout=10) for p in ports]
    return list(await asyncio.gather(*(Device.connect(config=c) for c in configs)))


async def _read(client: str, device) -> float:
    if client == "plugwatch":
        return (await device.read(time.time())).power_w
    from kasa import Module

    await device.update()
    return float(device.modules[Module.Energy].current_consumption)


async def _poll(client: str, ports: list[int], seconds: float, rate: float) -> dict:
    devices = await _open(client, ports)
    await asyncio.gather(*(_read(client, d) for d in devices))  # first contact, not measured
    ok = failed = 0
    cpu0, start = time.process_time(), time.monotonic()
    rounds = int(seconds * rate)
    for tick in range(rounds):
        await asyncio.sleep(max(0.0, start + tick / rate - time.monotonic()))
        results = await asyncio.gather(
            *(_read(client, d) for d in devices), return_exceptions=True
        )
        failed += sum(isinstance(r, BaseException) for r in results)
        ok += sum(not isinstance(r, BaseException) for r in results)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - start
    return {"client": client, "ok": ok, "failed": failed, "cpu_s": cpu, "wall_s": wall,
            "cpu_us_per_reading": 1e6 * cpu / max(ok, 1)}


def _worker(args: argparse.Namespace) -> None:
    ports = list(range(args.port, args.port + args.plugs))
    print(json.dumps(asyncio.run(_poll(args.worker, ports, args.seconds, args.rate))))


def _wait_ready(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise SystemExit(f"emulator did not start: {line!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1.0, help="readings per plug per second")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=31000, help="first emulated port")
    parser.add_argument("--worker", choices=["plugwatch", "python-kasa"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    emulator = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(args.plugs), str(args.port)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        _wait_ready(emulator)
        figures: dict[str, list[dict]] = {"plugwatch": [], "python-kasa": []}
        for repeat in range(args.repeats):
            for client in figures:
                out = subprocess.run(
                    [sys.executable, str(Path(__file__)), "--worker", client,
                     "--plugs", str(args.plugs), "--seconds", str(args.seconds),
                     "--rate", str(args.rate), "--port", str(args.port)],
                    capture_output=True, text=True, check=True,
                ).stdout
                result = json.loads(out.strip().splitlines()[-1])
                figures[client].append(result)
                print(f"round {repeat + 1} {client:12s} {result['ok']:7d} readings "
                      f"{result['failed']:5d} failed "
                      f"{result['cpu_us_per_reading']:8.1f} µs CPU each")
    finally:
        emulator.terminate()
        emulator.wait()
    med = {c: statistics.median(r["cpu_us_per_reading"] for r in rs) for c, rs in figures.items()}
    print(f"\n{args.plugs} emulated plugs at {args.rate} Hz for {args.seconds} s, "
          f"median of {args.repeats}:")
    for client, value in med.items():
        print(f"  {client:12s} {value:8.1f} µs CPU per reading")
    print(f"  ratio plugwatch / python-kasa = {med['plugwatch'] / med['python-kasa']:.2f} "
          f"(goal: at most 0.50)")


if __name__ == "__main__":
    main()
