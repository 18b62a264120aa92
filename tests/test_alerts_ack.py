"""Acknowledging a reminder from outside the command line, through the real service: an MQTT
message on the machine's Mosquitto (`<prefix>/ack`), and the appliance's own next state
(`ack_when:`). The receiver's texts show the reminders stop."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from mqtt_helpers import broker, publish, recording
from test_alerts_e2e import acknowledged, all_sent, service, write_config
from test_alerts_restart import kill_9, read, settled_after_ack, start, states
from test_notify_receivers import HttpReceiver, Mailbox, http_receiver, smtp

from plugwatch.cli import main
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.mqtt.settings import MqttSettings
from tests.helpers import wait_for

__all__ = ["broker", "http_receiver", "smtp"]  # fixtures

WASHER = """\
- name: washer-done
  plugs: [washer]
  when: {from: "on", to: [standby, "off"], min_duration: 1s}
  repeat: 1s
  ack_when: "off"
  notify: phone
  title: "{{ plug }} finished{% if repeat %} (reminder {{ repeat }}){% endif %}"
"""


async def test_an_mqtt_message_acknowledges_and_a_retained_one_is_ignored(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
    broker: MqttSettings,
) -> None:
    """`mosquitto_pub -t plugwatch/ack -m washer` stops the reminders of a real `plugwatch
    run`; the outcome is published on plugwatch/ack/result. A stale retained "washer" on the
    topic acknowledges nothing, and a name that is no plug or rule is refused there."""
    washer = [2.0]
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="washer",
                                                power=lambda s: washer[0])])
    topic = f"{broker.prefix}/ack"
    mqtt = (f"mqtt: {{url: 'mqtt://{broker.where}', prefix: {broker.prefix}, "
            "homeassistant: false}\n")
    cfg = write_config(tmp_path, {"washer": port}, http_receiver, smtp[1], WASHER, extra=mqtt)
    await publish(broker, topic, "washer", retain=True)  # left over from some earlier day
    proc = start(cfg)
    try:
        async with recording(broker, f"{topic}/result") as results:
            await wait_for(lambda: states(cfg) == {"washer": "standby"}, 20, 0.1)
            washer[0] = 1000.0
            await wait_for(lambda: states(cfg)["washer"] == "on", 20, 0.1)  # a run over 1 s
            await asyncio.sleep(1.5)  # from there, however late the service reads
            washer[0] = 2.0
            await wait_for(lambda: len(http_receiver.received) >= 3, 30, 0.1)  # + reminders
            await wait_for(lambda: bool(read(cfg, "kv").get("episodes")), 10, 0.1)
            await publish(broker, topic, "dryer")
            await wait_for(lambda: bool(results.on(f"{topic}/result")), 10)
            await publish(broker, topic, "washer")
            await wait_for(lambda: len(results.on(f"{topic}/result")) == 2, 10)
            await settled_after_ack(cfg)
            count, rows = len(http_receiver.received), len(read(cfg, "alerts"))
            await asyncio.sleep(2.0)  # at repeat: 1s, two more would have come
            assert (len(http_receiver.received), len(read(cfg, "alerts"))) == (count, rows)
            refused, acked = (json.loads(p) for p in results.on(f"{topic}/result"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "run.err").read_text()
    finally:
        if proc.poll() is None:
            kill_9(proc)
        await emulator.stop()
    assert acked == {"alert": "washer", "acknowledged": ["washer-done/washer"]}
    assert refused["alert"] == "dryer" and refused["error"].startswith(
        "'dryer' is neither a plug nor a rule (plugs: washer; rules: washer-done)")
    titles = [m["title"] for m in http_receiver.received]
    assert titles[:3] == ["washer finished", "washer finished (reminder 1)",
                          "washer finished (reminder 2)"]
    log = (tmp_path / "run.err").read_text()
    assert "MQTT acknowledgement on " + topic + " refused: 'dryer' is neither" in log
    assert f"retained message on {topic} ignored: publish acknowledgements without retain" in log
    assert len([line for line in log.splitlines() if "/ack" in line]) == 2  # one line each


async def test_the_washer_switched_off_at_the_machine_acknowledges(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`ack_when: "off"`: reminders until the washer's plug reads 0 W (switched off = emptied);
    the alert stays active (off is one of its states), acknowledged."""
    washer = [2.0]
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="washer",
                                                power=lambda s: washer[0])])
    cfg = write_config(tmp_path, {"washer": port}, http_receiver, smtp[1], WASHER)
    try:
        async with service(cfg) as store:
            await wait_for(lambda: [r["state"] for r in store.status()] == ["standby"], 20)
            washer[0] = 1000.0
            await wait_for(lambda: [r["state"] for r in store.status()] == ["on"], 20)
            await asyncio.sleep(1.5)  # a run over min_duration from there, however late read
            washer[0] = 2.0
            await wait_for(lambda: len(http_receiver.received) >= 2, 30)  # first + reminder
            washer[0] = 0.0
            await wait_for(lambda: [r["state"] for r in store.status()] == ["off"], 20)
            # the snapshot with the acknowledgement is stored once the writer settles (2 s)
            await wait_for(lambda: acknowledged(
                store.load_kv("rules_engine").get("rules_engine") or {}), 30)
            await wait_for(lambda: all_sent(store.alerts()), 30)  # reminders fired before it
            count = len(http_receiver.received)
            await asyncio.sleep(2.0)  # at repeat: 1s, two more would have come
            assert len(http_receiver.received) == count
            capsys.readouterr()
            assert await asyncio.to_thread(main, ["ack", "--config", str(cfg)]) == 0
    finally:
        await emulator.stop()
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("washer-done/washer") and ", acknowledged " in line
    assert [m["title"] for m in http_receiver.received][:2] == [
        "washer finished", "washer finished (reminder 1)"]
