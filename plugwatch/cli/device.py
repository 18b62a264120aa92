"""Commands that talk to plugs directly: `plugwatch read`, `discover` and `emulate`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from plugwatch.cli.device_mqtt import MQTT_FAMILIES
from plugwatch.errors import ConfigError, PlugwatchError

MODEL_NAMES = ("HS110v1", "HS110v2", "KP115", "HS300")
READ_DRIVERS = ("kasa", "shelly", "tasmota", "tapo", "kasa-klap")
FAULT_NAMES = ("garbage", "shape", "nan", "inf", "negative", "401", "500", "hung")
EMULATED_FAMILIES = ("kasa", "shelly2", "shelly-pm", "shelly1", "tasmota", "tapo", "kasa-klap",
                     *MQTT_FAMILIES)
LAN_FAMILIES = ("kasa", "tapo", "shelly")  # plugwatch.sources.lan.FAMILIES


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add read, discover and emulate to the `plugwatch` parser."""
    p = sub.add_parser("read", help="read one plug (every outlet of a Kasa strip) once")
    p.add_argument("address", metavar="HOST[:PORT]",
                   help="the plug's address (port: Kasa 9999, Shelly and Tasmota 80)")
    p.add_argument("--driver", choices=READ_DRIVERS, default="kasa",
                   help="the plug's family (default kasa)")
    p.add_argument(
        "--outlet", metavar="ID_OR_INDEX", help="Kasa strip outlet: child id or 0-based index"
    )
    p.add_argument("--channel", type=int, default=0, metavar="N",
                   help="Shelly/Tasmota channel, 0-based (default 0)")
    p.add_argument("--password-env", metavar="NAME",
                   help="Shelly/Tasmota/Tapo: read the plug's password from environment variable "
                        "NAME")
    p.add_argument("--username", metavar="EMAIL",
                   help="Tapo/KLAP Kasa: the TP-Link account e-mail")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds (default 2)")
    p.add_argument("--json", action="store_true", help="one JSON object per outlet, one per line")
    p.add_argument("--udp", action="store_true",
                   help="ask over UDP (the same JSON, no length header) instead of TCP")
    p.set_defaults(func=read_command)

    p = sub.add_parser("discover", help="find plugs on the LAN: Kasa and Tapo (UDP), Shelly (mDNS)")
    p.add_argument("--mqtt", metavar="URL", help="instead, list the MQTT plugs (Tasmota, Shelly, "
                   "zigbee2mqtt) in this broker's retained topics, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--family", action="append", choices=LAN_FAMILIES,
                   help="only this family (repeatable; default: every one whose extra is "
                        "installed)")
    p.add_argument("--target", default="255.255.255.255", metavar="ADDR",
                   help="broadcast or host address to ask (default 255.255.255.255; not mDNS)")
    p.add_argument("--port", type=int, default=9999, metavar="P",
                   help="UDP port of legacy Kasa discovery (default 9999)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="seconds (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per device, one per line")
    p.set_defaults(func=discover_command)

    p = sub.add_parser("emulate", help="serve emulated plugs on ports P..P+N-1 until stopped")
    p.add_argument("--family", choices=EMULATED_FAMILIES, default="kasa",
                   help="what to emulate: Kasa (TCP), Shelly Gen2, Shelly PM Mini Gen3, Shelly "
                        "Gen1, Tasmota (HTTP), Tapo P110 or a KLAP Kasa plug (KLAP over HTTP, "
                        "discovery on UDP 20002); Tasmota, Shelly Gen2, zigbee2mqtt devices "
                        "publishing through an MQTT broker (tasmota-mqtt, shelly-mqtt, z2m); "
                        "default kasa")
    p.add_argument("--password", metavar="PW", help="HTTP families: require this password; "
                   "tapo/kasa-klap: the account's (default: none, a plug never bound to one)")
    p.add_argument("--username", default="", metavar="EMAIL",
                   help="tapo/kasa-klap: the account e-mail (with --password)")
    p.add_argument("--mdns", action="store_true",
                   help="Shelly families: announce the devices over mDNS (the [mdns] extra)")
    p.add_argument("--fault", choices=FAULT_NAMES, help="HTTP families: answer badly this way")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", metavar="URL",
                   help="MQTT families: the broker (default mqtt://127.0.0.1:1883)")
    p.add_argument("--name", default="emulated", help="MQTT families: devices NAME-1..NAME-N")
    p.add_argument("--report", type=float, default=10.0, metavar="S",
                   help="MQTT families: seconds between reports (default 10)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="P",
                   help="TCP port of plug 1 (required but for the MQTT families)")
    p.add_argument("--count", type=int, default=1, metavar="N", help="number of plugs (default 1)")
    p.add_argument("--model", choices=MODEL_NAMES, default="HS110v2",
                   help="Kasa model (default HS110v2)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--power", type=float, default=60.0, metavar="W", help="constant load in W")
    load.add_argument("--trace", metavar="FILE.csv", help="replay a recorded power trace (loops)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="emulated seconds per real second (default 1)")
    p.add_argument("--discovery-port", type=int, default=9999, metavar="P",
                   help="UDP port answering discovery (default 9999)")
    p.add_argument("--no-discovery", action="store_true", help="do not answer UDP discovery")
    p.add_argument("--udp", action="store_true",
                   help="each plug also answers requests on UDP at its port number, as real plugs "
                        "do on 9999 (use a --discovery-port outside P..P+N-1)")
    from plugwatch.traces.options import add_csv_arguments

    add_csv_arguments(p)
    p.set_defaults(func=emulate_command)


def _power(args: argparse.Namespace) -> Any:
    """--power W, or the power function of --trace FILE."""
    if not args.trace:
        return args.power
    from plugwatch.emulator.trace import load_trace_power
    from plugwatch.traces.options import csv_options_from_args

    return load_trace_power(args.trace, csv_options_from_args(args))


def parse_address(text: str, default_port: int = 9999) -> tuple[str, int]:
    """HOST[:PORT] -> (host, port); ConfigError naming the bad part."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        return text, default_port
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"bad address {text!r}: use HOST or HOST:PORT with a port 1..65535")
    return host, int(port_text)


def reading_json(driver: Any, reading: Any) -> dict[str, Any]:
    """The `read --json` object of one outlet's reading."""
    if hasattr(driver, "child_id"):
        where = {"host": driver.host, "port": driver.port, "outlet": driver.child_id}
    elif hasattr(driver, "http"):
        where = {"host": driver.http.host, "port": driver.http.port, "channel": driver.channel}
    else:  # python-kasa's families
        where = {"host": driver.host, "port": driver.port, "firmware": driver.firmware}
    return {
        **where, "alias": driver.alias, "model": driver.model, "power_w": reading.power_w,
        "voltage_v": reading.voltage_v, "current_a": reading.current_a,
        "energy_kwh": reading.energy_kwh, "relay_on": reading.relay_on,
    }


def reading_text(driver: Any, reading: Any) -> str:
    """One human-readable line for one outlet's reading."""
    parts = [f"{reading.power_w:g} W"]
    if reading.voltage_v is not None:
        parts.append(f"{reading.voltage_v:g} V")
    if reading.current_a is not None:
        parts.append(f"{reading.current_a:g} A")
    if reading.energy_kwh is not None:
        parts.append(f"{reading.energy_kwh:g} kWh total")
    if reading.relay_on is not None:
        parts.append("relay on" if reading.relay_on else "relay off")
    return f"{driver.where}  {driver.alias!r} ({driver.model or 'model unknown'}): " \
           f"{', '.join(parts)}"


async def _read(host: str, port: int, outlet: str | None, timeout: float,
                transport: str = "tcp") -> list[Any]:
    from plugwatch.sources.kasa.driver import KasaDriver

    probe = KasaDriver(host, port, outlet, timeout, transport)
    drivers = [probe]
    try:
        if outlet is None:
            children = (await probe.get_sysinfo()).get("children")
            if isinstance(children, list) and children:
                # the whole-strip probe only looked; it stays open (closed last, below) so the
                # outlets reuse its connection
                drivers = [KasaDriver(host, port, i, timeout, transport)
                           for i in range(len(children))]
        results = []
        for driver in drivers:
            results.append((driver, await driver.read(time.time())))
        return results
    finally:
        for driver in drivers:
            await driver.close()
        await probe.close()


async def _read_http(args: argparse.Namespace, host: str, port: int) -> list[Any]:
    """One reading of a Shelly or Tasmota channel (its alias and model learnt on the way)."""
    password = None
    if args.password_env:
        if args.password_env not in os.environ:
            raise ConfigError(f"--password-env {args.password_env}: the variable is not set "
                              f"(export {args.password_env}=...)")
        password = os.environ[args.password_env]
    if args.driver in ("tapo", "kasa-klap"):
        from plugwatch.sources.pykasa import PyKasaDriver

        given = port if args.address.rpartition(":")[0] else None  # else python-kasa's (80)
        driver: Any = PyKasaDriver(host, given, args.username, password, args.timeout)
    elif args.driver == "shelly":
        from plugwatch.sources.shelly import ShellyDriver

        driver = ShellyDriver(host, port, args.channel, args.timeout, password=password)
    else:
        from plugwatch.sources.tasmota import TasmotaDriver

        driver = TasmotaDriver(host, port, args.channel, args.timeout, password=password)
    try:
        return [(driver, await driver.read(time.time()))]
    finally:
        await driver.close()


def read_command(args: argparse.Namespace) -> int:
    """`plugwatch read`: print one reading per outlet (Kasa strip) or of one channel."""
    import asyncio

    host, port = parse_address(args.address, 9999 if args.driver == "kasa" else 80)
    if args.timeout <= 0:
        raise ConfigError(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
    if args.driver != "kasa" and args.outlet is not None:
        raise ConfigError(f"--outlet is for Kasa strips; a {args.driver} plug has --channel")
    if args.channel < 0:
        raise ConfigError(f"--channel starts at 0, got {args.channel}")
    if args.driver != "kasa" and args.udp:
        raise ConfigError(f"--udp is for Kasa plugs; a {args.driver} plug is read over HTTP")
    transport = "udp" if args.udp else "tcp"
    results = asyncio.run(_read(host, port, args.outlet, args.timeout, transport)
                          if args.driver == "kasa" else _read_http(args, host, port))
    from plugwatch.sources.validate import check_reading

    for driver, raw in results:
        reading = check_reading(raw, driver.where)  # NaN, negative, ...: one error line
        if args.json:
            print(json.dumps(reading_json(driver, reading)))
        else:
            print(reading_text(driver, reading))
    return 0


def discover_command(args: argparse.Namespace) -> int:
    """`plugwatch discover`: list the plugs of every LAN family that answer (sources/lan.py),
    or with --mqtt those in a broker's retained topics."""
    import asyncio

    if args.mqtt:
        from plugwatch.cli.device_mqtt import discover_mqtt_command

        return discover_mqtt_command(args)

    from plugwatch.sources.lan import discover_lan

    families = args.family or LAN_FAMILIES
    found, notes = asyncio.run(discover_lan(list(dict.fromkeys(families)), args.target, args.port,
                                            args.timeout, explicit=bool(args.family)))
    for note in notes:
        print(note, file=sys.stderr)
    for device in found:
        print(json.dumps(device.to_json()) if args.json else device.line())
    if not found and not args.json:
        where = {"kasa": f"Kasa at {args.target}:{args.port}",
                 "tapo": f"Tapo at {args.target}:20002", "shelly": "Shelly over mDNS"}
        asked = ", ".join(where[f] for f in dict.fromkeys(families))
        print(f"no plug answered within {args.timeout:g} s (asked: {asked})", file=sys.stderr)
    return 0


def emulate_command(args: argparse.Namespace) -> int:
    """`plugwatch emulate`: serve emulated plugs until Ctrl-C or SIGTERM."""
    import asyncio

    if args.speed <= 0:
        raise ConfigError(f"--speed must be more than 0, got {args.speed:g}")
    if args.family in MQTT_FAMILIES:
        from plugwatch.cli.device_mqtt import emulate_mqtt_command

        return emulate_mqtt_command(args, _power(args))
    if args.port is None:
        raise ConfigError(f"--port is required for --family {args.family} (e.g. --port 9999)")
    if args.count < 1 or not 0 < args.port <= 65536 - args.count:
        raise ConfigError(f"--port {args.port} --count {args.count}: ports must fit in 1..65535")
    if args.family == "kasa" and (args.password or args.fault):
        raise ConfigError("--password and --fault are for the HTTP families (--family shelly2, "
                          "shelly-pm, shelly1, tasmota)")
    asyncio.run(_emulate(args))
    return 0


async def _emulate(args: argparse.Namespace) -> None:

    from plugwatch.emulator import EmulatedPlug, Emulator

    power = _power(args)
    if args.family in ("tapo", "kasa-klap"):
        from plugwatch.cli.device_klap import emulate_klap

        await emulate_klap(args, power, _until_stopped)
        return
    if args.family != "kasa":
        await _emulate_http(args, power)
        return
    plugs = [
        EmulatedPlug(args.model, alias=f"emulated {args.model} {i + 1}", power=power,
                     speed=args.speed)
        for i in range(args.count)
    ]
    emulator = Emulator()
    udp = None if args.no_discovery else args.discovery_port
    try:
        ports = await emulator.start(plugs, args.host, args.port, discovery_port=udp,
                                     udp=args.udp)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise PlugwatchError(
            f"cannot listen on {args.host} ({'TCP and UDP' if args.udp else 'TCP'} "
            f"{args.port}..{args.port + args.count - 1}"
            f"{'' if udp is None else f', UDP {udp}'}): {reason}; choose other "
            "ports with --port / --discovery-port (or --no-discovery)"
        ) from None
    discovery = "no discovery" if udp is None else f"discovery on UDP {udp}"
    if args.udp:
        discovery = f"TCP and UDP, {discovery}"
    print(f"serving {len(plugs)} emulated {args.model} plug(s) on {args.host}:{ports[0]}"
          f"..{ports[-1]} ({discovery}); Ctrl-C stops", flush=True)
    try:
        await _until_stopped()
    finally:
        await emulator.stop()


async def _emulate_http(args: argparse.Namespace, power: Any) -> None:
    from plugwatch.emulator.http import EmulatedHttpDevice
    from plugwatch.emulator.http_server import HttpEmulator

    devices = [EmulatedHttpDevice(args.family, alias=f"emulated {args.family} {i + 1}",
                                  power=power, speed=args.speed, password=args.password)
               for i in range(args.count)]
    for device in devices:
        device.fault = args.fault
    emulator = HttpEmulator()
    try:
        ports = await emulator.start(devices, args.host, args.port)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise PlugwatchError(f"cannot listen on {args.host} (TCP {args.port}.."
                             f"{args.port + args.count - 1}): {reason}; choose other ports with "
                             "--port") from None
    announcer = None
    if args.mdns:
        from plugwatch.emulator.mdns import MdnsAnnouncer

        announcer = MdnsAnnouncer()
        await announcer.start(devices, args.host, ports)
    extra = "".join([", password required" if args.password else "",
                     f", answering {args.fault}" if args.fault else "",
                     ", announced over mDNS" if announcer else ""])
    print(f"serving {len(devices)} emulated {args.family} device(s) over HTTP on {args.host}:"
          f"{ports[0]}..{ports[-1]}{extra}; Ctrl-C stops", flush=True)
    try:
        await _until_stopped()
    finally:
        if announcer is not None:
            await announcer.stop()
        await emulator.stop()


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM."""
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
