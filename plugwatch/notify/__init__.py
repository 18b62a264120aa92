"""Notifications: the outbox sender (retries, back-off) and apprise delivery (URLs redacted).

    AppriseNotifier(targets).send(target, title, body)     one message, in a worker thread
    AlertSender(outbox, notifier).run(stop)                 delivers the outbox, records attempts
"""

from __future__ import annotations

from plugwatch.notify.apprise_notifier import AppriseNotifier
from plugwatch.notify.memory import MemoryOutbox
from plugwatch.notify.sender import AlertSender, Outbox, backoff

__all__ = ["AlertSender", "AppriseNotifier", "MemoryOutbox", "Outbox", "backoff"]
