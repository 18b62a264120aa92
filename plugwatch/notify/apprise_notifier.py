"""Delivering one message to one named target through apprise, in a worker thread.

The apprise call blocks (HTTP, SMTP), so `send` runs it with asyncio.to_thread: the event loop never
waits on a notifier. Apprise failures become NotifyError with the target URL redacted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from plugwatch.errors import NotifyError
from plugwatch.notify.redact import redact_url, scrub

log = logging.getLogger(__name__)


class AppriseNotifier:
    """Sends to targets by name (name -> apprise URL, e.g. from `targets:` in plugwatch.yaml)."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._targets = dict(targets)

    def __repr__(self) -> str:
        shown = {name: redact_url(url) for name, url in self._targets.items()}
        return f"AppriseNotifier({shown})"

    @property
    def targets(self) -> list[str]:
        """The names of the configured targets."""
        return sorted(self._targets)

    def send_sync(self, target: str, title: str, body: str) -> None:
        """Deliver now (blocking); raises NotifyError naming the target, never its secret URL."""
        import apprise

        url = self._targets.get(target)
        if url is None:
            known = ", ".join(self.targets) or "none configured"
            raise NotifyError(f"unknown target {target!r} (targets in the config: {known})")
        shown = redact_url(url)
        sender = apprise.Apprise()
        if not sender.add(url):
            raise NotifyError(
                f"target {target!r} ({shown}): not a valid apprise URL (see apprise's wiki)"
            )
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            ok = sender.notify(title=title, body=body or " ")
        if not ok:
            lines = [line for line in captured.getvalue().splitlines() if line.strip()]
            reason = scrub(lines[-1].strip(), url) if lines else "delivery failed"
            raise NotifyError(f"target {target!r} ({shown}): {reason}")
        log.debug("delivered %r to %s (%s)", title, target, shown)

    async def send(self, target: str, title: str, body: str) -> None:
        """Deliver in a worker thread; raises NotifyError."""
        await asyncio.to_thread(self.send_sync, target, title, body)
