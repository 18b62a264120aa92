"""A Mosquitto of one's own on a free port, for outage tests and the MQTT benches.

    broker = PrivateBroker(workdir)          # writes workdir/mosquitto.conf
    broker.start()                           # returns once it accepts connections
    broker.kill(); broker.start()            # a crash and a restart, same port
    broker.stop()

The machine's own broker (127.0.0.1:1883) is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def mosquitto_binary() -> str | None:
    """The mosquitto executable, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    """A mosquitto on a free port, to stop and start at will; `cpus` pins it (taskset)."""

    def __init__(self, workdir: Path, *, cpus: set[int] | None = None) -> None:
        self.port = free_port()
        self.cpus = cpus
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; RuntimeError when it does not accept connections within 5 s."""
        if os.geteuid() == 0 and "\nuser " not in self.conf.read_text():
            # as root, mosquitto drops to user mosquitto, who cannot read a private tmp folder
            self.conf.write_text(self.conf.read_text() + "user root\n")
        exe = mosquitto_binary() or "mosquitto"
        pin = ["taskset", "-c", ",".join(map(str, sorted(self.cpus)))] if self.cpus else []
        self.proc = subprocess.Popen([*pin, exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"private mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        """A clean stop: mosquitto publishes its clients' wills first."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """A crash (or a cut network): connections just end, no will reaches anyone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
