"""`plugwatch emulate --family tapo|kasa-klap`: emulated KLAP plugs (emulator/klap_server.py)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

from plugwatch.errors import ConfigError, PlugwatchError


async def emulate_klap(args: argparse.Namespace, power: Any,
                       until_stopped: Callable[[], Awaitable[None]]) -> None:
    """Serve --count emulated Tapo P110s (or KLAP Kasa plugs of --model) on --host at ports
    --port..; the first answers discovery on UDP 20002 of --host."""
    from plugwatch.extras import require

    require("cryptography", "kasa-new", "emulating KLAP plugs")
    from plugwatch.emulator import EmulatedPlug
    from plugwatch.emulator.klap_server import KlapEmulator
    from plugwatch.emulator.tapo import EmulatedKlapKasa, EmulatedTapo

    if args.fault or args.mdns:
        raise ConfigError("--fault and --mdns are for the HTTP families (shelly2, shelly-pm, "
                          "shelly1, tasmota)")
    username, password = (args.username, args.password) if args.password else ("", "")
    devices: list[Any] = []
    for i in range(args.count):
        if args.family == "tapo":
            devices.append(EmulatedTapo(alias=f"emulated P110 {i + 1}", power=power,
                                        speed=args.speed, username=username, password=password))
        else:
            plug = EmulatedPlug(args.model, alias=f"emulated {args.model} {i + 1}", power=power,
                                speed=args.speed)
            devices.append(EmulatedKlapKasa(plug, username=username, password=password))
    emulator = KlapEmulator()
    try:
        ports = await emulator.start(devices, args.host, args.port,
                                     discovery=not args.no_discovery)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise PlugwatchError(f"cannot listen on {args.host} (TCP {args.port}.."
                             f"{args.port + args.count - 1}, UDP 20002): {reason}; choose other "
                             "ports with --port, or --no-discovery") from None
    what = "Tapo P110" if args.family == "tapo" else f"KLAP {args.model}"
    account = f"account {username!r}" if password else "no account (blank login)"
    discovery = "no discovery" if args.no_discovery else f"discovery on {args.host}:20002"
    print(f"serving {len(devices)} emulated {what} plug(s) over KLAP on {args.host}:{ports[0]}"
          f"..{ports[-1]} ({account}, {discovery}); Ctrl-C stops", flush=True)
    try:
        await until_stopped()
    finally:
        await emulator.stop()
