"""What `plugwatch run` tells a person: a start summary, first states, reloads, no library noise.

The real command runs as a child process against emulated Kasa plugs over TCP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.service.summary import startup_summary
from plugwatch.testing import emulated_config

SECRET_TOPIC = "s3cretTopicName"
RULE = """\
- name: {name}
  plugs: [washer]
  when: {{from: "on", to: standby}}
  notify: [phone]
"""


def write_config(tmp_path: Path, ports: list[int], on_w: float = 10.0) -> Path:
    path = tmp_path / "plugwatch.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path}/pw.db\n"
        f"defaults: {{interval: 0.2s, thresholds: {{on: {on_w}}}, dwell: {{on: 0.2s}}}}\n"
        "plugs:\n"
        f"  - {{name: washer, host: '127.0.0.1:{ports[0]}'}}\n"
        f"  - {{name: tv, host: '127.0.0.1:{ports[1]}'}}\n"
        f"targets:\n  phone: ntfy://ntfy.sh/{SECRET_TOPIC}\n"
        f"rules: {tmp_path / 'rules'}\n"
    )
    return path


class Lines:
    """A child's stdout, read line by line as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[str] = []

    async def until(self, text: str, timeout: float = 20.0) -> str:
        """The first line (from now on) containing `text`."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no line with {text!r} in {self.seen}"
            raw = await asyncio.wait_for(self.proc.stdout.readline(), left)
            assert raw, f"run ended before printing {text!r}: {self.seen}"
            line = raw.decode().rstrip("\n")
            self.seen.append(line)
            if text in line:
                return line


async def test_run_says_what_it_runs_its_first_states_and_each_reload(tmp_path: Path) -> None:
    """`plugwatch -v run` starts with the summary (plugs by family, rules, redacted targets,
    database), prints each plug's first decided state, says what a SIGHUP reloaded (rules and
    detector settings), and logs no Alembic/APScheduler/apprise chatter at -v."""
    emulator = Emulator()
    ports = await emulator.start([EmulatedPlug("HS110v2", power=40.0),
                                  EmulatedPlug("KP115", power=2.0)])
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/a.yaml").write_text(RULE.format(name="washer-done"))
    config = write_config(tmp_path, ports)
    err_path = tmp_path / "run.err"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "plugwatch", "-v", "run", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    out = Lines(proc)
    try:
        first = await out.until("plugwatch run: ")
        assert first == f"plugwatch run: 2 plugs (2 kasa); 1 rule from {tmp_path / 'rules'}"
        assert await out.until("targets: ") == "targets: phone ntfy://ntfy.sh/***"
        assert (await out.until("database: ")).startswith(f"database: sqlite:///{tmp_path}")
        assert "washer           state on (power) at 40.0 W" in await out.until("washer ")
        assert "tv               state standby (power) at 2.0" in await out.until("tv ")

        (tmp_path / "rules/b.yaml").write_text(RULE.format(name="washer-done-again"))
        write_config(tmp_path, ports, on_w=12.0)
        proc.send_signal(signal.SIGHUP)
        line = await out.until("SIGHUP: ")
        assert line == "SIGHUP: reloaded 2 rules; new detector settings for washer, tv"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await emulator.stop()
    stderr = err_path.read_text()
    assert SECRET_TOPIC not in stderr and SECRET_TOPIC not in "\n".join(out.seen)
    for noisy in ("alembic", "apscheduler", "apprise:", "urllib3"):
        assert noisy not in stderr.lower(), stderr
    assert "INFO plugwatch." in stderr  # -v does show plugwatch's own info lines
    assert "INFO plugwatch.service.service: restored 2 detectors (0 events re-fed)" in stderr
    assert "INFO plugwatch.service.alerting: reloaded 2 rules" in stderr


def test_the_summary_names_every_endpoint_and_hides_every_secret() -> None:
    """Database password, target tokens, InfluxDB URL and MQTT broker credentials are redacted;
    the HTTP endpoint's ports are listed per worker process, the broker with its port."""
    from dataclasses import replace

    from plugwatch.config.loader import Target
    from plugwatch.config.outputs import HttpSection, InfluxSection
    from plugwatch.mqtt.settings import MqttSettings

    config = emulated_config({"washer": 1, "tv": 2}, "postgresql+psycopg://app:pw123@db/pw")
    config = replace(
        config, targets={"mail": Target("mailtos://me:pw456@smtp.example.com?to=me@example.com")},
        http=HttpSection(listen="127.0.0.1:9464"),
        influxdb=InfluxSection(url="http://influx.lan:8086", database="home"),
        mqtt=MqttSettings.from_url("mqtts://hub:pw789@broker.lan", prefix="home/pw"),
        retention_s=None,
    )
    lines = startup_summary(config, rules=0, workers=2)
    text = "\n".join(lines)
    assert "pw123" not in text and "pw456" not in text and "pw789" not in text
    assert lines[0] == ("plugwatch run: 2 plugs (2 kasa); 0 rules (no `rules:` in the config); "
                        "sampled by 2 processes")
    assert lines[1] == "targets: mail mailtos://me:***@smtp.example.com?to=***"
    assert lines[2] == ("database: postgresql+psycopg://app:***@db/pw (readings kept forever)")
    assert lines[3] == ("serving: http://127.0.0.1:9464-9465 (/metrics, /healthz, status page); "
                        "MQTT mqtts://hub@broker.lan:8883 (topics home/pw/...); "
                        "InfluxDB http://influx.lan:8086 (database home)")
