"""End to end: an emulated washer over TCP -> the real service -> rules -> email and push arrive."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_notify_receivers import HttpReceiver, Mailbox, http_receiver, smtp

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import DetectorSettings
from plugwatch.service.alerting import Alerting
from plugwatch.store import open_store
from plugwatch.testing import running_service
from tests.helpers import Cued, wait_for

__all__ = ["http_receiver", "smtp"]  # fixtures
FAST = DetectorSettings(window_s=0.1, on_w=10.0, on_band_w=2.0, dwell_on_s=0.3,
                        dwell_standby_s=1.0, dwell_off_s=0.5, unreachable_after=3, gap_s=5.0)
RULES = """\
- name: washer-done
  plugs: [washer]
  when: {from: "on", to: standby, min_duration: 1s}
  notify: [phone, mail]
  title: "{{ plug }} finished"
  body: "Ran {{ run.duration }}, peak {{ run.peak_w | round | int }} W"
"""


def washer(seconds: float) -> float:
    """Standby, a 1.5 s run at 1000 W, standby again."""
    return 1000.0 if 1.0 <= seconds < 2.5 else 2.0


async def test_washer_finished_arrives_by_email_and_push_exactly_once(
    tmp_path: Path, http_receiver: HttpReceiver, smtp: tuple[Mailbox, int]
) -> None:
    from plugwatch.config import config_from_dict

    box, smtp_port = smtp
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    power = Cued(washer)
    plug = EmulatedPlug("HS110v2", alias="washer", power=power)
    emulator = Emulator()
    [port] = await emulator.start([plug])
    config = config_from_dict({
        "database": f"sqlite:///{tmp_path}/pw.db",
        "defaults": {"interval": 0.1, "timeout": 0.5},
        "plugs": [{"name": "washer", "driver": "kasa", "host": f"127.0.0.1:{port}"}],
        "targets": {"phone": http_receiver.url,
                    "mail": f"mailto://127.0.0.1:{smtp_port}?from=pw@example.com&to=me@example.com"},
        "rules": str(tmp_path / "rules.yaml"),
    }, detector=FAST)
    store = open_store(config.database)
    alerting = Alerting.from_config(config, store)
    stop = asyncio.Event()
    try:
        async with running_service(config, store, on_events=alerting.on_events):
            task = asyncio.create_task(alerting.run(stop))
            await wait_for(lambda: [r["state"] for r in store.status()] == ["standby"], 30.0)
            power.start(plug)
            await wait_for(lambda: bool(http_receiver.received and box.messages), 30.0)
            await asyncio.sleep(0.5)  # nothing more arrives
            stop.set()
            await task
    finally:
        await emulator.stop()
    assert [m["title"] for m in http_receiver.received] == ["washer finished"]
    assert http_receiver.received[0]["message"].startswith("Ran 1 s, peak 1000 W")
    (mail,) = box.messages
    assert "washer finished" in mail.content.decode()
    rows = store.alerts()
    assert sorted((r["target"], r["status"]) for r in rows) == [("mail", "sent"), ("phone", "sent")]
    store.close()
