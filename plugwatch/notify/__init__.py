"""Notifications: the outbox sender (retries, back-off) and apprise delivery (URLs redacted).

    apprise_notifier.AppriseNotifier(targets).send(target, title, body)   in a worker thread
    sender.AlertSender(outbox, notifier).run(stop)        delivers the outbox, records attempts
    memory.MemoryOutbox()                                 an outbox in memory (tests, replay)

Nothing is imported here, so that the config (which needs only targets.py) does not load apprise's
side of things: `plugwatch status` stays fast.
"""
