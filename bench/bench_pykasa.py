"""CPU per reading of the python-kasa families (Tapo P110 over SMART/KLAP, a KLAP Kasa HS110)
at N plugs.

    .venv/bin/python bench/bench_pykasa.py [--plugs 100 1000] [--rounds 10] [--repeats 3]

N emulated KLAP devices (each on a loopback address of its own, KLAP crypto and all) run in a
separate process pinned to the last CPU, its CPU measured apart from /proc; this process, pinned
to CPU 0, makes one PyKasaDriver per device with its connection parameters already remembered (as
every start after the first: no discovery), reads every device once (first contact: the KLAP
handshake and learning the device), then reads all N concurrently `--rounds` times. The figure is
this process's CPU (user + system) over those rounds per reading: python-kasa's protocol and KLAP
transport (AES, SHA-256), its aiohttp client and plugwatch's parsing. Medians of `--repeats` runs,
with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import client_cpu, cpu_seconds, emulator_cpu, header, load, median, pin

EMULATOR = """
import asyncio, json, sys
from plugwatch.emulator import EmulatedPlug, raise_open_file_limit
from plugwatch.emulator.klap_server import KlapEmulator
from plugwatch.emulator.tapo import EmulatedKlapKasa, EmulatedTapo
async def main(family, n):
    raise_open_file_limit()
    if family == "tapo":
        devices = [EmulatedTapo(power=60.0 + i % 7, username="u@x", password="pw")
                   for i in range(n)]
    else:
        devices = [EmulatedKlapKasa(EmulatedPlug("HS110v2", power=60.0 + i % 7),
                                    username="u@x", password="pw") for i in range(n)]
    emulator = KlapEmulator()
    ports = await emulator.start(devices, discovery=False)
    print(json.dumps([[h, p, d.discovery_result(h, p)["result"]]
                      for h, p, d in zip(emulator.hosts, ports, devices)]), flush=True)
    await asyncio.Event().wait()
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""
FAMILIES = ("tapo", "kasa-klap")


class Remembered:
    """A DeviceMemory holding what an earlier start found (the connection parameters)."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts

    async def recall(self, plug: str) -> dict[str, Any] | None:
        return self.facts.get(plug)

    def remember(self, plug: str, facts: dict[str, Any] | None) -> None:
        self.facts[plug] = facts


def facts_of(host: str, port: int, found: dict[str, Any]) -> dict[str, Any]:
    scheme = found["mgt_encrypt_schm"]
    return {"where": f"{host}:{port}", "model": found["device_model"], "firmware": None,
            "connection": {"device_family": found["device_type"], "encryption_type": "KLAP",
                           "login_version": scheme["lv"], "https": False, "http_port": port}}


async def one_run(devices: list[Any], rounds: int) -> tuple[float, float, int]:
    """(first-contact CPU s, CPU s of the rounds, readings of the rounds)."""
    from plugwatch.sources.pykasa import PyKasaDriver

    memory = Remembered({f"p{i}": facts_of(h, p, f) for i, (h, p, f) in enumerate(devices)})
    drivers = []
    for i, (host, port, _) in enumerate(devices):
        driver = PyKasaDriver(host, port, "u@x", "pw", timeout=60.0, name=f"p{i}")
        driver.memory = memory
        drivers.append(driver)
    try:
        start = time.process_time()
        await asyncio.gather(*(d.read(time.time()) for d in drivers))  # handshake, learn
        first = time.process_time() - start
        start = time.process_time()
        done = 0
        for _ in range(rounds):
            done += len(await asyncio.gather(*(d.read(time.time()) for d in drivers)))
        return first, time.process_time() - start, done
    finally:
        for d in drivers:
            await d.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    args = parser.parse_args()
    from plugwatch.emulator import raise_open_file_limit

    raise_open_file_limit()
    cpus = emulator_cpu()
    prefix = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    pin(client_cpu())
    print(header(f"bench_pykasa: {args.rounds} rounds, {args.repeats} repeats"))
    for family in args.families:
        for n in args.plugs:
            emu = subprocess.Popen([*prefix, sys.executable, "-c", EMULATOR, family, str(n)],
                                   stdout=subprocess.PIPE, text=True)
            try:
                assert emu.stdout is not None
                devices = json.loads(emu.stdout.readline())
                client_us, first_us, emulator_us = [], [], []
                for _ in range(args.repeats):
                    before = cpu_seconds(emu.pid)
                    first, cpu, done = asyncio.run(one_run(devices, args.rounds))
                    emulator_us.append((cpu_seconds(emu.pid) - before) / (done + n) * 1e6)
                    client_us.append(cpu / done * 1e6)
                    first_us.append(first / n * 1e6)
            finally:
                emu.terminate()
                emu.wait()
            print(f"  {family:<9} {n:>5} plugs: client {median(client_us):5.0f} us CPU per "
                  f"reading (runs {', '.join(f'{x:.0f}' for x in client_us)}); first contact "
                  f"{median(first_us):5.0f} us per plug; emulator {median(emulator_us):5.0f} us "
                  f"per answer; load average {load()}", flush=True)


if __name__ == "__main__":
    main()
