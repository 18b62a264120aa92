"""The outbox sender delivers only while it may (a clustered instance holding the sender lease),
and a stopped sender ends between two alerts, never in the middle of the outbox."""

from __future__ import annotations

import asyncio
from typing import Any

from plugwatch.notify.sender import AlertSender


class Outbox:
    def __init__(self, n: int) -> None:
        self.rows = [{"id": i, "target": "t", "title": f"a{i}", "body": "", "attempts": 0,
                      "dedupe_key": f"r|p|{i}"} for i in range(n)]
        self.recorded: list[int] = []

    def pending_alerts(self, now: float, limit: int) -> list[Any]:
        return [r for r in self.rows if r["id"] not in self.recorded][:limit]

    def record_attempt(self, alert_id: int, ok: bool, error: str | None, now: float,
                       next_due: float | None) -> None:
        if ok:
            self.recorded.append(alert_id)


class Notifier:
    def __init__(self, stop: asyncio.Event | None = None, after: int = 0) -> None:
        self.sent: list[str] = []
        self.stop, self.after = stop, after

    async def send(self, target: str, title: str, body: str, **_: Any) -> None:
        self.sent.append(title)
        if self.stop is not None and len(self.sent) == self.after:
            self.stop.set()


async def test_a_sender_that_may_not_send_delivers_nothing() -> None:
    outbox, notifier = Outbox(3), Notifier()
    allowed = [True, False]
    sender = AlertSender(outbox, notifier, may_send=lambda: allowed.pop(0))
    assert await sender.run_once() == 1  # the second ask says no: the round ends there
    assert notifier.sent == ["a0"] and outbox.recorded == [0]


async def test_a_stopped_sender_ends_between_two_alerts() -> None:
    stop = asyncio.Event()
    outbox, notifier = Outbox(5), Notifier(stop, after=2)
    await AlertSender(outbox, notifier).run(stop)
    assert notifier.sent == ["a0", "a1"] and outbox.recorded == [0, 1]
