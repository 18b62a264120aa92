"""End to end: emulated plugs over TCP -> the real service -> rules -> a real SMTP server and a
real HTTP receiver. The tests read the texts people receive: local times and cost, reminders until
`plugwatch ack`, one grouped message for a power cut, an inhibited alert never sent, a silence
that expires."""

from __future__ import annotations

import asyncio
import contextlib
import email
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_notify_receivers import HttpReceiver, Mailbox, http_receiver, smtp

from plugwatch.cli import main
from plugwatch.config import load_config
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.formatting import format_duration
from plugwatch.service.alerting import Alerting
from plugwatch.store import open_store
from plugwatch.testing import running_service
from tests.helpers import Cued, wait_for

__all__ = ["http_receiver", "smtp"]  # fixtures
BERLIN = ZoneInfo("Europe/Berlin")
DEFAULTS = ("defaults: {interval: 0.1, timeout: 0.5, window: 1, unreachable_after: 2,\n"
            "           dwell: {on: 0.3s, standby: 0.5s, off: 0.5s}}\n")


def write_config(tmp_path: Path, ports: dict[str, int], receiver: HttpReceiver, smtp_port: int,
                 rules: str, extra: str = "") -> Path:
    """plugwatch.yaml (Berlin time, a price) and rules.yaml for emulated Kasa plugs."""
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    plugs = "".join(f"  - {{name: {n}, driver: kasa, host: '127.0.0.1:{p}', tags: [house]}}\n"
                    for n, p in ports.items())
    cfg = tmp_path / "plugwatch.yaml"
    cfg.write_text(
        "database: sqlite:///pw.db\ntimezone: Europe/Berlin\n"
        "price: {per_kwh: 2000, currency: EUR}\n"  # makes a 1-second run cost something
        f"{DEFAULTS}plugs:\n{plugs}"
        f"targets:\n  phone: {{url: '{receiver.url}', replace: true}}\n"
        f"  mail: mailto://127.0.0.1:{smtp_port}?from=pw@example.com&to=me@example.com\n"
        f"rules: rules.yaml\n{extra}", encoding="utf-8")
    return cfg


@contextlib.asynccontextmanager
async def service(cfg: Path) -> AsyncIterator[Any]:
    """The real service with its alerting (timers every 0.2 s) on `cfg`, stopped cleanly."""
    config = load_config(cfg)
    store = open_store(config.database)
    alerting = Alerting.from_config(config, store, tick_s=0.2)
    alerting.sender.poll_s = 0.2
    stop = asyncio.Event()
    try:
        async with running_service(config, store, on_events=alerting.on_events,
                                   kv_state=alerting.kv_state):
            task = asyncio.create_task(alerting.run(stop))
            yield store
            stop.set()
            await task
    finally:
        store.close()


def acknowledged(state: dict[str, Any]) -> bool:
    """The service applied an acknowledgement: its stored rules `state` has an acked episode."""
    return any(ep["acked_at"] for ep in state.get("episodes", []))


def all_sent(alerts: list[dict[str, Any]]) -> bool:
    """No outbox row waits to be sent (a reminder fired before an ack still goes out)."""
    return all(a["status"] != "pending" for a in alerts)


def mail_text(box: Mailbox) -> list[str]:
    """Subject and body of every mail received, as one string each."""
    texts = []
    for envelope in box.messages:
        message = email.message_from_bytes(envelope.content)
        part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        texts.append(f"{message['Subject']}\n{part.get_payload(decode=True).decode().strip()}")
    return texts


WASHER = """\
- name: washer-done
  plugs: [washer]
  when: {from: "on", to: standby, min_duration: 1s}
  repeat: 1s
  notify:
    - phone
    - target: mail
      title: "[plugwatch] {{ plug }} finished at {{ end | time }}"
      body: "{{ run.energy_wh | energy }} for {{ run.cost | money }}"
  title: "{{ plug }} finished"
  body: >-
    Ran {{ run.duration }}, used {{ run.energy_wh | energy }}, {{ run.cost | money }}.
    Finished at {{ end | time }}.{% if repeat %} Reminder {{ repeat }}.{% endif %}
"""


def washer(seconds: float) -> float:
    """Standby, a 3 s run at 1000 W (over min_duration: 1s even with late reads), standby."""
    return 1000.0 if 1.0 <= seconds < 4.0 else 2.0


async def test_washer_done_in_local_time_with_cost_reminded_until_acknowledged(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, smtp_port = smtp
    power = Cued(washer)
    plug = EmulatedPlug("HS110v2", alias="washer", power=power)
    emulator = Emulator()
    [port] = await emulator.start([plug])
    cfg = write_config(tmp_path, {"washer": port}, http_receiver, smtp_port, WASHER)
    try:
        async with service(cfg) as store:
            await wait_for(lambda: [r["state"] for r in store.status()] == ["standby"], 30.0)
            power.start(plug)
            await wait_for(lambda: len(http_receiver.received) >= 3, 60.0)  # first + reminders
            assert await asyncio.to_thread(main, ["ack", "washer", "--config", str(cfg)]) == 0
            await wait_for(lambda: acknowledged(  # applied at a tick (every 0.2 s here)
                store.load_kv("rules_engine").get("rules_engine") or {}), 30.0)
            await wait_for(lambda: all_sent(store.alerts()), 30.0)  # reminders fired before it
            count, rows = len(http_receiver.received), len(store.alerts())
            await asyncio.sleep(2.0)  # at repeat: 1s, two more would have come
            assert (len(http_receiver.received), len(store.alerts())) == (count, rows)
            (run,) = store.runs("washer")
    finally:
        await emulator.stop()
    assert "acknowledged washer-done/washer: no more reminders" in capsys.readouterr().out
    local = datetime.fromtimestamp(run.end, BERLIN).strftime("%H:%M")
    first = http_receiver.received[0]
    assert first["title"] == "washer finished"
    assert first["message"] == (f"Ran {format_duration(run.duration_s)}, used "
                                f"{run.energy_wh:.1f} Wh, {run.cost:.2f} EUR. Finished at {local}.")
    assert http_receiver.received[1]["message"].endswith(f"Finished at {local}. Reminder 1.")
    # one alert, one notification id: a reminder can replace the previous message
    tags = {h.get("X-Plugwatch-Tag") for h in http_receiver.headers}
    assert len(tags) == 1 and next(iter(tags), "").startswith("plugwatch-washer-done-washer-")
    assert box.messages  # the mail has its own text
    assert mail_text(box)[0] == (f"[plugwatch] washer finished at {local}\n"
                                 f"{run.energy_wh:.1f} Wh for {run.cost:.2f} EUR")


POWER_CUT = """\
- name: power-cut
  plugs: {tags: [house]}
  when: {to: unreachable}
  group_by: rule
  group_wait: 1s
  notify: phone
  title: "{{ plug }} unreachable since {{ at | time }}"
"""


async def test_a_power_cut_is_one_message_listing_every_plug(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
) -> None:
    names = ["freezer", "fridge", "router", "tv"]
    plugs = [EmulatedPlug("HS110v2", alias=n, power=5.0) for n in names]
    emulator = Emulator()
    ports = await emulator.start(plugs)
    cfg = write_config(tmp_path, dict(zip(names, ports, strict=True)), http_receiver, smtp[1],
                       POWER_CUT)
    try:
        async with service(cfg) as store:
            await wait_for(lambda: [r["state"] for r in store.status()] == ["standby"] * 4,
                           10.0)
            for plug in plugs:
                await emulator.set_online(plug, False)
            await wait_for(lambda: bool(http_receiver.received), 10.0)
            await asyncio.sleep(1.5)  # nothing else arrives
            gone = {n: next(t.ts for t in store.transitions(n) if t.to_state == "unreachable")
                    for n in names}
    finally:
        await emulator.stop()
    (message,) = http_receiver.received
    assert message["title"] == "4 plugs unreachable: freezer, fridge, router, tv"
    assert message["message"].splitlines() == [
        f"{n} unreachable since {datetime.fromtimestamp(gone[n], BERLIN):%H:%M}" for n in names]


INHIBITED = """\
- name: unreachable
  plugs: [tv]
  when: {to: unreachable}
  notify: phone
  title: "{{ plug }} unreachable"
- name: tv-left-on
  plugs: [tv]
  when: {to: ["on", unreachable]}
  for: 4s
  unless: unreachable
  notify: phone
  title: "{{ plug }} left on"
"""


async def test_an_inhibited_alert_is_recorded_not_sent(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The TV goes on, then unreachable before its `for: 4s` (the plug is seen on, then
    fails twice: over 1 s on a loaded machine): "left on" is inhibited."""
    level = [5.0]
    tv = EmulatedPlug("HS110v2", alias="tv", power=lambda s: level[0])
    emulator = Emulator()
    [port] = await emulator.start([tv])
    cfg = write_config(tmp_path, {"tv": port}, http_receiver, smtp[1], INHIBITED)
    try:
        async with service(cfg) as store:
            await wait_for(lambda: any(r["state"] == "standby" for r in store.status()), 10.0)
            level[0] = 100.0
            await wait_for(lambda: any(r["state"] == "on" for r in store.status()), 10.0)
            await emulator.set_online(tv, False)
            await wait_for(lambda: any(a["status"] == "inhibited" for a in store.alerts()), 20.0)
            await asyncio.sleep(1.0)
    finally:
        await emulator.stop()
    assert [m["title"] for m in http_receiver.received] == ["tv unreachable"]
    capsys.readouterr()
    assert main(["history", "--alerts", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "tv-left-on -> phone: tv left on (inhibited by another active alert: not sent)" in out


SILENCED = """\
- name: tv-on
  plugs: [tv]
  when: {to: "on"}
  notify: phone
  title: "{{ plug }} switched on at {{ at | time }}"
"""


async def test_a_silenced_alert_goes_out_when_the_silence_expires(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    level = [5.0]
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="tv", power=lambda s: level[0])])
    cfg = write_config(tmp_path, {"tv": port}, http_receiver, smtp[1], SILENCED)
    try:
        async with service(cfg) as store:
            await wait_for(lambda: any(r["state"] == "standby" for r in store.status()), 10.0)
            assert await asyncio.to_thread(
                main, ["silence", "tv", "--for", "3s", "--config", str(cfg)]) == 0
            level[0] = 100.0
            await wait_for(lambda: any(a["status"] == "silenced" for a in store.alerts()), 10.0)
            assert http_receiver.received == []
            await wait_for(lambda: bool(http_receiver.received), 10.0)  # the silence ended
            (on,) = [t for t in store.transitions("tv") if t.to_state == "on"]
    finally:
        await emulator.stop()
    out = capsys.readouterr().out
    assert out.startswith("silenced plug tv until ") and "(id 1; " in out
    local = datetime.fromtimestamp(on.ts, BERLIN).strftime("%H:%M")
    assert [m["title"] for m in http_receiver.received] == [f"tv switched on at {local}"]


def test_a_target_with_format_html_sends_html_mail(smtp: tuple[Mailbox, int]) -> None:
    """`format: html`: the rule text is HTML, the mail carries it as an HTML part."""
    from plugwatch.notify.apprise_notifier import AppriseNotifier
    from plugwatch.notify.targets import TargetOptions

    box, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=pw@example.com&to=me@example.com"
    notifier = AppriseNotifier({"mail": url}, {"mail": TargetOptions(format="html")})
    notifier.send_sync("mail", "washer finished", "Ran <b>1 h 34 min</b>")
    (envelope,) = box.messages
    message = email.message_from_bytes(envelope.content)
    html = [p for p in message.walk() if p.get_content_type() == "text/html"]
    assert html and "<b>1 h 34 min</b>" in html[0].get_payload(decode=True).decode()
