"""CPU per reading of the HTTP drivers (Shelly Gen2, Shelly PM, Shelly Gen1, Tasmota) at N plugs.

    .venv/bin/python bench/bench_http.py [--plugs 1000] [--rounds 10] [--repeats 3]

For each family, N emulated devices run in a separate process (its CPU is measured apart, from
/proc). This process makes one driver per device (one shared aiohttp session, kept-alive
connections), reads every device once to get past first contact, then reads all N concurrently
`--rounds` times. The figure is this process's CPU time (user + system) over those rounds divided
by the readings; medians of `--repeats` runs, with the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

EMULATOR = """
import asyncio, sys
from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.http_server import HttpEmulator
async def main(family, n):
    devices = [EmulatedHttpDevice(family, power=60.0 + i % 7) for i in range(n)]
    emulator = HttpEmulator()
    ports = await emulator.start(devices)
    print(" ".join(map(str, ports)), flush=True)
    await asyncio.Event().wait()
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""
DRIVER_OF = {"shelly2": "shelly", "shelly-pm": "shelly", "shelly1": "shelly", "tasmota": "tasmota"}


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of process `pid` (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_run(family: str, ports: list[int], rounds: int) -> tuple[float, int]:
    """(client CPU seconds, readings) for `rounds` concurrent reads of every device."""
    from plugwatch.sources.shelly import ShellyDriver
    from plugwatch.sources.tasmota import TasmotaDriver

    cls = ShellyDriver if DRIVER_OF[family] == "shelly" else TasmotaDriver
    drivers = [cls("127.0.0.1", p, timeout=30.0) for p in ports]
    try:
        await asyncio.gather(*(d.read(time.time()) for d in drivers))  # first contact
        start = time.process_time()
        done = 0
        for _ in range(rounds):
            results = await asyncio.gather(*(d.read(time.time()) for d in drivers))
            done += len(results)
        return time.process_time() - start, done
    finally:
        for d in drivers:
            await d.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=list(DRIVER_OF))
    args = parser.parse_args()
    from plugwatch.emulator import raise_open_file_limit

    raise_open_file_limit()
    print(f"bench_http: {args.plugs} plugs per family, {args.rounds} rounds, "
          f"{args.repeats} repeats; load average before {os.getloadavg()[0]:.2f} "
          f"(shared machine, {os.cpu_count()} cores)")
    for family in args.families:
        emu = subprocess.Popen([sys.executable, "-c", EMULATOR, family, str(args.plugs)],
                               stdout=subprocess.PIPE, text=True)
        try:
            assert emu.stdout is not None
            ports = [int(p) for p in emu.stdout.readline().split()]
            client_us, emulator_us = [], []
            for _ in range(args.repeats):
                emu_before = cpu_of(emu.pid)
                cpu, n = asyncio.run(one_run(family, ports, args.rounds))
                emulator_us.append((cpu_of(emu.pid) - emu_before) / (n + len(ports)) * 1e6)
                client_us.append(cpu / n * 1e6)
        finally:
            emu.terminate()
            emu.wait()
        print(f"  {family:<10} client {statistics.median(client_us):6.0f} us CPU per reading "
              f"(runs {', '.join(f'{x:.0f}' for x in client_us)}); emulator "
              f"{statistics.median(emulator_us):6.0f} us per answer; load average "
              f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
