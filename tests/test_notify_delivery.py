"""Delivery through apprise to real local receivers: SMTP (aiosmtpd) and HTTP (apprise json://)."""

from __future__ import annotations

import asyncio

import pytest
from test_notify_receivers import HttpReceiver, Mailbox, http_receiver, smtp

from plugwatch.errors import NotifyError
from plugwatch.notify.apprise_notifier import AppriseNotifier
from plugwatch.notify.memory import MemoryOutbox
from plugwatch.notify.sender import AlertSender, backoff
from plugwatch.rules import Alert

__all__ = ["http_receiver", "smtp"]  # fixtures


def alert(key: str, target: str, title: str = "washer finished", due: float = 0.0) -> dict:
    return Alert(key, "washer-done", "washer", target, title, "Ran 1 h", 0.0, due).as_row()


async def test_email_arrives_at_a_local_smtp_server(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=plugwatch@example.com&to=me@example.com"
    await AppriseNotifier({"mail": url}).send("mail", "washer finished", "Ran 1 h 2 min")
    (msg,) = box.messages
    assert msg.rcpt_tos == ["me@example.com"]
    text = msg.content.decode()
    assert "washer finished" in text and "Ran 1 h 2 min" in text


async def test_push_arrives_at_a_local_http_receiver(http_receiver: HttpReceiver) -> None:
    await AppriseNotifier({"phone": http_receiver.url}).send("phone", "tv left on", "since 22:00")
    (got,) = http_receiver.received
    assert (got["title"], got["message"]) == ("tv left on", "since 22:00")


async def test_failure_names_the_target_and_hides_its_secret(http_receiver: HttpReceiver) -> None:
    http_receiver.down()
    url = f"json://user:s3cretpass@127.0.0.1:{http_receiver.port}/tok3nvalue"
    with pytest.raises(NotifyError) as err:
        await AppriseNotifier({"phone": url}).send("phone", "t", "b")
    assert "'phone'" in str(err.value) and "\n" not in str(err.value)
    assert "s3cretpass" not in str(err.value) and "tok3nvalue" not in str(err.value)
    with pytest.raises(NotifyError, match=r"unknown target .fone. .*phone"):
        await AppriseNotifier({"phone": url}).send("fone", "t", "b")


async def test_receiver_down_then_up_delivers_exactly_once(http_receiver: HttpReceiver) -> None:
    """Failed attempts are recorded and retried with back-off; once up, one message arrives."""
    clock = [1000.0]
    outbox = MemoryOutbox()
    outbox.add([alert("k1", "phone")])
    sender = AlertSender(outbox, AppriseNotifier({"phone": http_receiver.url}),
                         clock=lambda: clock[0], base_s=5, cap_s=600)
    http_receiver.down()
    for _ in range(3):
        assert await sender.run_once() == 0
        assert await sender.run_once() == 0  # not due again yet: no retry storm
        clock[0] += 200  # the notifier stays down for ten minutes
    row = outbox.rows["k1"]
    assert row.status == "pending" and row.attempts == 3 and "'phone'" in (row.last_error or "")
    assert row.due_at - row.history[-1][0] == 20  # third failure: 5 s, 10 s, then 20 s
    http_receiver.up()
    clock[0] += 600
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0
    outbox.add([alert("k1", "phone")])  # re-processing the same trigger is a no-op
    clock[0] += 3600
    assert await sender.run_once() == 0
    assert [m["title"] for m in http_receiver.received] == ["washer finished"]
    assert row.status == "sent" and row.attempts == 4


async def test_deferred_alert_waits_for_its_due_time(http_receiver: HttpReceiver) -> None:
    outbox = MemoryOutbox()
    outbox.add([alert("k2", "phone", due=5000.0)])
    clock = [4000.0]
    sender = AlertSender(outbox, AppriseNotifier({"phone": http_receiver.url}),
                         clock=lambda: clock[0])
    assert await sender.run_once() == 0
    clock[0] = 5000.0
    assert await sender.run_once() == 1


async def test_sender_loop_delivers_when_woken(http_receiver: HttpReceiver) -> None:
    outbox = MemoryOutbox()
    sender = AlertSender(outbox, AppriseNotifier({"phone": http_receiver.url}), poll_s=30)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(0.05)
    outbox.add([alert("k3", "phone", due=0.0)])
    sender.wake()
    for _ in range(100):
        if http_receiver.received:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(http_receiver.received) == 1


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 5, 600) for n in (1, 2, 3, 8, 50)] == [5, 10, 20, 600, 600]


@pytest.mark.parametrize(("scheme", "path", "field"), [
    ("hassio", "/api/services/persistent_notification/create", "notification_id"),
    ("bark", "/push", "id"),
])
async def test_replace_gives_one_notification_id_per_alert(
    http_receiver: HttpReceiver, scheme: str, path: str, field: str,
) -> None:
    """`replace: true` on a Home Assistant or Bark target (here a local HTTP server answering
    as the service): the first message and its reminder carry the same notification id, so
    the reminder replaces the message on the phone; another alert gets another id."""
    from plugwatch.notify.targets import TargetOptions, tag_of

    url = f"{scheme}://127.0.0.1:{http_receiver.port}/l0ngliv3dt0ken"
    notifier = AppriseNotifier({"t": url}, {"t": TargetOptions(replace=True)})
    first = "washer-done|washer|t|1764618960.000|0"
    for key in (first, first[:-1] + "1", "washer-done|washer|t|1764622560.000|0"):
        await notifier.send("t", "washer finished", "Ran 1 h", tag=tag_of(key))
    assert http_receiver.paths == [path] * 3
    ids = [m[field] for m in http_receiver.received]
    assert ids[0] == ids[1] == "plugwatch-washer-done-washer-1764618960-000" != ids[2]


def test_replace_on_a_service_without_notification_ids_is_one_line() -> None:
    from pydantic import ValidationError

    from plugwatch.notify.targets import TargetEntry

    with pytest.raises(ValidationError) as err:
        TargetEntry(url="ntfy://ntfy.sh/my-topic", replace=True)
    (problem,) = err.value.errors()
    assert problem["msg"].endswith(
        "replace: needs a service with notification ids (bark://, form://, hassio://, json://, "
        "xml://); ntfy:// has none")
