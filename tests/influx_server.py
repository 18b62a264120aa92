"""A private InfluxDB 1.x server for tests: Debian's influxd on free ports in a temp folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
  logging-enabled = false
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[coordinator]
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InfluxServer:
    """influxd with its own config, data folder and ports; start(), stop(), query()."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port, self.rpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "influxdb.conf").write_text(CONFIG.format(rpc=self.rpc, dir=folder,
                                                            port=self.port))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start influxd and wait until /ping answers."""
        log = open(self.folder / "influxd.log", "ab")  # noqa: SIM115 (kept for the process)
        self.proc = subprocess.Popen(["influxd", "-config", str(self.folder / "influxdb.conf")],
                                     stdout=log, stderr=log, env={**os.environ, "HOME": str(
                                         self.folder)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r:
                    if r.status == 204:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"influxd did not answer on {self.url}: see {self.folder}")

    def stop(self) -> None:
        """Stop influxd (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, q: str, db: str = "plugwatch") -> Any:
        """The JSON answer of one InfluxQL query (POST /query)."""
        import json

        data = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ms"}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as r:
            return json.loads(r.read())

    def rows(self, q: str, db: str = "plugwatch") -> list[dict[str, Any]]:
        """The rows of a single-statement query as dicts (tags of GROUP BY included)."""
        out = []
        for series in self.query(q, db)["results"][0].get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                out.append(row)
        return out


def influx_server(tmp_path: Path) -> InfluxServer:
    """A started private InfluxDB with database `plugwatch` (skips, or fails under CI, without
    influxd)."""
    if shutil.which("influxd") is None:
        reason = "influxd is not installed (apt install influxdb)"
        if os.environ.get("PLUGWATCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (PLUGWATCH_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip(reason)
    server = InfluxServer(tmp_path / "influxdb")
    server.start()
    server.query("CREATE DATABASE plugwatch")
    return server
