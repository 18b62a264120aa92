"""Delivering one message to one named target through apprise, in a worker thread.

The apprise call blocks (HTTP, SMTP), so `send` runs it with asyncio.to_thread: the event loop never
waits on a notifier. Apprise failures become NotifyError with the target URL redacted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from plugwatch.errors import NotifyError
from plugwatch.redact import redact, redact_text

log = logging.getLogger(__name__)


class AppriseNotifier:
    """Sends to targets by name (name -> apprise URL, e.g. from `targets:` in plugwatch.yaml)."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._targets = dict(targets)

    def __repr__(self) -> str:
        shown = {name: redact(url) for name, url in self._targets.items()}
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
        shown = redact(url)
        sender = apprise.Apprise()
        if not sender.add(url):
            raise NotifyError(
                f"target {target!r} ({shown}): not a valid apprise URL (see apprise's wiki)"
            )
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            ok = sender.notify(title=title, body=body or " ")
        if not ok:
            lines = [line for line in captured.getvalue().splitlines() if line.strip()]
            reason = _scrub(lines[-1].strip(), url) if lines else "delivery failed"
            raise NotifyError(f"target {target!r} ({shown}): {reason}")
        log.debug("delivered %r to %s (%s)", title, target, shown)

    async def send(self, target: str, title: str, body: str) -> None:
        """Deliver in a worker thread; raises NotifyError."""
        await asyncio.to_thread(self.send_sync, target, title, body)


def _scrub(text: str, url: str) -> str:
    """`text` (an apprise log line) with every URL and every secret part of `url` hidden."""
    parts = urlsplit(url)
    secrets = [url, parts.password or "", parts.path.strip("/")]
    secrets += [v for kv in parts.query.split("&") for v in kv.split("=")[1:]]
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact_text(text)
