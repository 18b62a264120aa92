"""kill -9 of a real `plugwatch run`: acknowledgements, silences and a group waiting to send all
hold across the restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_alerts_e2e import acknowledged, all_sent, write_config
from test_notify_receivers import HttpReceiver, Mailbox, http_receiver, smtp

from plugwatch.cli import main
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.store import open_store
from tests.helpers import wait_for

__all__ = ["http_receiver", "smtp"]  # fixtures


def start(cfg: Path) -> subprocess.Popen[bytes]:
    """`plugwatch run` as a child process, its stderr appended to run.err beside the config."""
    with (cfg.parent / "run.err").open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "plugwatch", "run", "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=err)


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def read(cfg: Path, what: str) -> Any:
    """One store read (a fresh connection each time: the service writes meanwhile)."""
    db = cfg.parent / "pw.db"
    if not db.exists():
        return [] if what != "kv" else {}
    store = open_store(f"sqlite:///{db}")
    try:
        if what == "kv":
            return store.load_kv("rules_engine").get("rules_engine") or {}
        return store.alerts() if what == "alerts" else store.status()
    finally:
        store.close()


async def settled_after_ack(cfg: Path) -> None:
    """Wait until the service applied an acknowledgement (its stored rules state has an acked
    episode: at a tick, every 1 s) and sent every reminder it had fired before it."""
    await wait_for(lambda: acknowledged(read(cfg, "kv")), 30, 0.1)
    await wait_for(lambda: all_sent(read(cfg, "alerts")), 30, 0.1)


def states(cfg: Path) -> dict[str, str]:
    return {row["plug"]: row["state"] for row in read(cfg, "status")}


RULES = """\
- name: washer-done
  plugs: [washer]
  when: {from: "on", to: standby, min_duration: 1s}
  repeat: 1s
  notify: phone
  title: "{{ plug }} finished{% if repeat %} (reminder {{ repeat }}){% endif %}"
- name: tv-on
  plugs: [tv]
  when: {to: "on"}
  notify: phone
  title: "{{ plug }} switched on"
"""


async def test_an_ack_and_a_silence_survive_kill_9(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
) -> None:
    """Reminders stop at `plugwatch ack` and stay stopped after kill -9 and a restart; a
    silence set before the kill still holds back the TV's alert after it."""
    washer, tv = [2.0], [2.0]
    emulator = Emulator()
    ports = await emulator.start([
        EmulatedPlug("HS110v2", alias="washer", power=lambda s: washer[0]),
        EmulatedPlug("HS110v2", alias="tv", power=lambda s: tv[0])])
    cfg = write_config(tmp_path, dict(zip(["washer", "tv"], ports, strict=True)), http_receiver,
                       smtp[1], RULES)
    proc = start(cfg)
    try:
        await wait_for(lambda: states(cfg) == {"washer": "standby", "tv": "standby"}, 20, 0.1)
        washer[0] = 1000.0
        await wait_for(lambda: states(cfg)["washer"] == "on", 20, 0.1)  # a run over 1 s from
        await asyncio.sleep(1.5)  # there, however late the service reads
        washer[0] = 2.0
        await wait_for(lambda: len(http_receiver.received) >= 2, 20, 0.1)  # first + reminder
        assert main(["ack", "washer-done/washer", "--config", str(cfg)]) == 0
        assert main(["silence", "tv", "--for", "1h", "--config", str(cfg)]) == 0
        await settled_after_ack(cfg)
        kill_9(proc)
        count = len(http_receiver.received)
        proc = start(cfg)
        await wait_for(lambda: bool(read(cfg, "status")) and read(cfg, "kv") != {}, 20, 0.1)
        tv[0] = 100.0
        await wait_for(lambda: any(a["status"] == "silenced" for a in read(cfg, "alerts")), 20,
                       0.1)
        await asyncio.sleep(2.0)  # at repeat: 1s, reminders would have come by now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "run.err").read_text()
    finally:
        if proc.poll() is None:
            kill_9(proc)
        await emulator.stop()
    titles = [m["title"] for m in http_receiver.received]
    assert len(titles) == count and titles[0] == "washer finished"
    assert "tv switched on" not in titles


POWER_CUT = """\
- name: power-cut
  plugs: {tags: [house]}
  when: {to: unreachable}
  group_by: rule
  group_wait: 6s
  notify: phone
  title: "{{ plug }} unreachable"
"""


@pytest.mark.parametrize("names", [["freezer", "fridge", "tv"]])
async def test_a_group_waiting_to_send_survives_kill_9(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int], names: list[str],
) -> None:
    """Killed during the group's wait: after the restart one message lists every plug."""
    plugs = [EmulatedPlug("HS110v2", alias=n, power=5.0) for n in names]
    emulator = Emulator()
    ports = await emulator.start(plugs)
    cfg = write_config(tmp_path, dict(zip(names, ports, strict=True)), http_receiver, smtp[1],
                       POWER_CUT)
    proc = start(cfg)

    groups: list[dict[str, Any]] = []

    def waiting() -> bool:
        groups[:] = read(cfg, "kv").get("groups", [])
        return bool(groups) and len(groups[0]["pending"]) == len(names)

    try:
        await wait_for(lambda: list(states(cfg).values()) == ["standby"] * 3, 20, 0.1)
        for plug in plugs:
            await emulator.set_online(plug, False)
        try:
            await wait_for(waiting, 10, 0.05)
        except AssertionError:  # say what the service had stored (on a loaded machine)
            raise AssertionError(f"groups stored: {groups}; states: {states(cfg)}; log: "
                                 f"{(tmp_path / 'run.err').read_text()}") from None
        kill_9(proc)
        assert http_receiver.received == []  # still inside its group_wait
        proc = start(cfg)
        await wait_for(lambda: bool(http_receiver.received), 20, 0.1)
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "run.err").read_text()
    finally:
        if proc.poll() is None:
            kill_9(proc)
        await emulator.stop()
    (message,) = http_receiver.received
    assert message["title"] == f"3 plugs unreachable: {', '.join(names)}"


async def test_an_http_post_acknowledges_and_get_lists_the_active_alerts(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
) -> None:
    """With `http:` on, POST /api/ack/<plug> stops the reminders like `plugwatch ack`."""
    import json
    import urllib.error
    import urllib.request

    from test_notify_receivers import free_port

    washer = [2.0]
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="washer",
                                                power=lambda s: washer[0])])
    http_port = free_port()
    washer_rule = RULES.split("- name: tv")[0]
    cfg = write_config(tmp_path, {"washer": port}, http_receiver, smtp[1], washer_rule,
                       extra=f"http: {{listen: '127.0.0.1:{http_port}'}}\n")
    base = f"http://127.0.0.1:{http_port}/api"

    def call(method: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    proc = start(cfg)
    try:
        await wait_for(lambda: states(cfg) == {"washer": "standby"}, 20, 0.1)
        assert await asyncio.to_thread(call, "POST", "/ack/washer") == (404, {
            "error": "nothing to acknowledge for 'washer': no unacknowledged active alert "
                     "(active: none)"})
        washer[0] = 1000.0
        await wait_for(lambda: states(cfg)["washer"] == "on", 20, 0.1)  # a run over 1 s from
        await asyncio.sleep(1.5)  # there, however late the service reads
        washer[0] = 2.0
        await wait_for(lambda: len(http_receiver.received) >= 2, 20, 0.1)
        await wait_for(lambda: bool(read(cfg, "kv").get("episodes")), 10, 0.1)
        status, answer = await asyncio.to_thread(call, "POST", "/ack/washer")
        assert (status, answer) == (200, {"acknowledged": ["washer-done/washer"]})
        await settled_after_ack(cfg)
        count, rows = len(http_receiver.received), len(read(cfg, "alerts"))
        await asyncio.sleep(1.5)
        assert (len(http_receiver.received), len(read(cfg, "alerts"))) == (count, rows)  # none
        status, listing = await asyncio.to_thread(call, "GET", "/alerts")
        (alert,) = listing["alerts"]
        assert alert["id"] == "washer-done/washer" and alert["acknowledged_at"] is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "run.err").read_text()
    finally:
        if proc.poll() is None:
            kill_9(proc)
        await emulator.stop()
