"""Shared parts of the MQTT benches: a private Mosquitto on the emulators' CPU and a publisher
process that writes plugs' messages as raw MQTT packets, as fast as asked.

The publisher is a separate process pinned beside the broker (benchlib.emulator_cpu), so the
measured process's CPU never includes the cost of pretending to be the plugs; both the broker's
and the publisher's CPU are read from /proc and reported apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import cpu_seconds, emulator_cpu

from plugwatch.testing.mosquitto import PrivateBroker, mosquitto_binary

# One process publishing the periodic messages of N plugs of one family through the broker:
# a warm-up round (one message per plug, then "warm" on stdout), then on "go <rate> <seconds>"
# on stdin `rate` messages/s (0: as fast as the socket takes them) for `seconds`, then a JSON
# line {"sent": n, "seconds": s}. Messages go out in chunks every 5 ms, plugs in turn; the power
# moves around 100 W and the energy counter grows, as a plug's own reports would.
PUBLISHER = r"""
import json, socket, sys, time

def varint(n):
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)

def packet(first, body):
    return bytes([first]) + varint(len(body)) + body

def publish(topic, payload):
    return packet(0x30, len(topic).to_bytes(2, "big") + topic + payload)

TEMPLATES = {
    "tasmota": (b"tele/%s/SENSOR",
        b'{"Time":"2026-12-02T01:00:00","ENERGY":{"TotalStartTime":"2024-01-01T00:00:00",'
        b'"Total":%.5f,"Yesterday":0.0,"Today":%.5f,"Period":0,"Power":%.1f,'
        b'"ApparentPower":%.1f,"ReactivePower":0,"Factor":1.0,"Voltage":230,"Current":%.3f}}'),
    "shelly": (b"%s/events/rpc",
        b'{"src":"shellyplug","dst":"shellyplug/events","method":"NotifyStatus","params":'
        b'{"ts":1764637200.00,"switch:0":{"id":0,"apower":%.1f,"current":%.3f,'
        b'"aenergy":{"total":%.3f,"by_minute":[0.0,0.0,0.0],"minute_ts":1764637200}}}}'),
    "z2m": (b"zigbee2mqtt/%s",
        b'{"power":%.1f,"energy":%.5f,"state":"ON","voltage":230.0,"current":%.3f,'
        b'"linkquality":120}'),
}

def message(family, device, k, i):
    topic, body = TEMPLATES[family]
    w = 100.0 + (i * 7 + k) % 13
    a = w / 230.0
    kwh = 1.0 + k * 0.00003
    if family == "tasmota":
        payload = body % (kwh, kwh, w, w, a)
    elif family == "shelly":
        payload = body % (w, a, kwh * 1000.0)
    else:
        payload = body % (w, kwh, a)
    return publish(topic % device, payload)

def main(port, family, devices):
    names = [d.encode() for d in devices]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = b"bench-publisher"
    sock.sendall(packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid))
    if sock.recv(4)[:1] != b"\x20":
        raise SystemExit("no CONNACK from the broker")
    n = len(names)
    sock.sendall(b"".join(message(family, names[i], 0, i) for i in range(n)))
    print("warm", flush=True)
    k = 1
    for line in sys.stdin:
        _, rate, seconds = line.split()
        rate, seconds = float(rate), float(seconds)
        sent, start = 0, time.monotonic()
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            due = int(rate * (now - start)) if rate else sent + 2000
            chunk = []
            while sent < due:
                chunk.append(message(family, names[sent % n], k + sent // n, sent % n))
                sent += 1
            if chunk:
                sock.sendall(b"".join(chunk))
            if rate:
                time.sleep(0.005)
        k += sent // n + 1
        print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}), flush=True)

main(int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
"""


def need_mosquitto() -> None:
    """Exit with one line when the mosquitto binary is not installed."""
    if mosquitto_binary() is None:
        raise SystemExit("the mosquitto binary is not installed (apt-get install mosquitto)")


class Broker:
    """A private mosquitto pinned to the emulators' CPU, in a temporary folder."""

    def __init__(self) -> None:
        need_mosquitto()
        self._dir = tempfile.TemporaryDirectory(prefix="bench-mqtt-")
        self.broker = PrivateBroker(Path(self._dir.name), cpus=emulator_cpu())
        # a consumer held up by other work on a shared machine gets its backlog late, not lost
        # (mosquitto's default drops QoS 0 messages past 1,000 queued for a client)
        with self.broker.conf.open("a") as conf:
            conf.write("max_queued_messages 1000000\nmax_queued_bytes 0\n")
        self.broker.start()
        self.port = self.broker.port

    def cpu_seconds(self) -> float:
        assert self.broker.proc is not None
        return cpu_seconds(self.broker.proc.pid)

    def stop(self) -> None:
        self.broker.stop()
        self._dir.cleanup()


class Publisher:
    """The publisher process for `devices` of `family` through the broker on `port`."""

    def __init__(self, port: int, family: str, devices: list[str]) -> None:
        cpus = emulator_cpu()
        pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
        self.proc = subprocess.Popen(
            [*pin, sys.executable, "-c", PUBLISHER, str(port), family, json.dumps(devices)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._line() != "warm":
            raise SystemExit("the publisher did not start (see its error above)")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def go(self, rate: float, seconds: float) -> None:
        """Start publishing `rate` messages/s (0: flat out) for `seconds`."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"go {rate} {seconds}\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        """{"sent", "seconds"} of the last go(), once it is over."""
        data: dict[str, Any] = json.loads(self._line())
        return data

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
