"""Delivering one message to one named target through apprise, in a worker thread.

The apprise call blocks (HTTP, SMTP), so `send` runs it with asyncio.to_thread: the event loop never
waits on a notifier. Apprise failures become NotifyError with the target URL redacted.

apprise's own log records are routed through plugwatch (`route_apprise_logs`): each becomes one
redacted line on plugwatch's logger, and what apprise says while a message is being sent becomes
the reason of that send's NotifyError instead of a second line (shown as well only at debug level).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

from plugwatch.errors import NotifyError
from plugwatch.logs import one_line
from plugwatch.notify.targets import TargetOptions, url_with_tag
from plugwatch.redact import redact, redact_text

log = logging.getLogger(__name__)
_send_lock = threading.Lock()  # one send at a time (the sender delivers one by one anyway) ...


class _Sending:
    """... so apprise's records, from whichever of its threads, belong to the send in progress."""

    url: str | None = None
    lines: list[str] | None = None


_sending = _Sending()
_UNPARSEABLE = re.compile(r"Unparseable (.+?) URL")


class AppriseNotifier:
    """Sends to targets by name (name -> apprise URL, e.g. from `targets:` in plugwatch.yaml)."""

    def __init__(
        self, targets: Mapping[str, str], options: Mapping[str, TargetOptions] | None = None,
    ) -> None:
        self._targets = dict(targets)
        self._options = dict(options or {})
        route_apprise_logs()

    def __repr__(self) -> str:
        shown = {name: redact(url) for name, url in self._targets.items()}
        return f"AppriseNotifier({shown})"

    @property
    def targets(self) -> list[str]:
        """The names of the configured targets."""
        return sorted(self._targets)

    def send_sync(self, target: str, title: str, body: str, tag: str | None = None) -> None:
        """Deliver now (blocking); raises NotifyError naming the target, never its secret URL.

        `tag` identifies the alert: with the target's `replace: true` its messages share one
        notification id, so a reminder replaces the previous message where the service can.
        """
        import apprise

        url = self._targets.get(target)
        if url is None:
            known = ", ".join(self.targets) or "none configured"
            raise NotifyError(f"unknown target {target!r} (targets in the config: {known})")
        shown = redact(url)
        options = self._options.get(target, TargetOptions())
        if tag is not None and options.replace:
            url = url_with_tag(url, tag)
        with _send_lock:
            _sending.url, _sending.lines = url, []
            try:
                sender = apprise.Apprise()
                if not sender.add(url):
                    raise NotifyError(f"target {target!r} ({shown}): not a valid apprise URL "
                                      "(see apprise's wiki)")
                ok = sender.notify(title=title, body=body or " ", body_format=options.format)
                lines = _sending.lines
            finally:
                _sending.url = _sending.lines = None
        if not ok:
            reason = lines[-1] if lines else "delivery failed"
            raise NotifyError(f"target {target!r} ({shown}): {reason}")
        log.debug("delivered %r to %s (%s)", title, target, shown)

    async def send(self, target: str, title: str, body: str, tag: str | None = None) -> None:
        """Deliver in a worker thread; raises NotifyError."""
        await asyncio.to_thread(self.send_sync, target, title, body, tag)


class _AppriseLog(logging.Handler):
    """apprise's records as one redacted line each: kept as the reason of the send in progress
    (logged too only at debug level), otherwise logged on plugwatch's logger."""

    def emit(self, record: logging.LogRecord) -> None:
        url, lines = _sending.url, _sending.lines
        line = one_line(record.getMessage())
        line = _scrub(line, url) if url else redact_text(line)
        if lines is not None and record.levelno >= logging.WARNING:
            lines.append(line)
            if not log.isEnabledFor(logging.DEBUG):
                return
        log.log(record.levelno, "apprise: %s", line)


def url_problem(url: str) -> str | None:
    """None when apprise can use `url`, else apprise's reason in one line (secrets hidden).

    Asks apprise's own parser (`Apprise.instantiate`), so a URL it would refuse at send time
    (e.g. `mailtos://` with no sender it can work out) is refused when the config is loaded.
    """
    import apprise

    route_apprise_logs()
    with _send_lock:
        _sending.url, _sending.lines = url, []
        try:
            plugin = apprise.Apprise.instantiate(url)
            lines = _sending.lines
        finally:
            _sending.url = _sending.lines = None
    if plugin is not None:
        return None
    reasons = [line for line in lines if not line.startswith(("Could not load", "Unparseable"))]
    if reasons:
        return reasons[0].rstrip(": ")
    kind = next((m.group(1) for m in map(_UNPARSEABLE.match, lines) if m), None)
    if kind:
        return f"apprise cannot parse this {kind} URL (see its wiki for the {kind} URL format)"
    scheme = url.split("://", 1)[0]
    return f"apprise does not know the scheme {scheme + '://'!r}"


def route_apprise_logs() -> None:
    """Send apprise's log records through plugwatch's redaction, one line each (idempotent)."""
    logger = logging.getLogger("apprise")
    if not any(isinstance(handler, _AppriseLog) for handler in logger.handlers):
        logger.addHandler(_AppriseLog())
        logger.propagate = False


def _scrub(text: str, url: str) -> str:
    """`text` (an apprise log line) with every URL and every secret part of `url` hidden."""
    parts = urlsplit(url)
    secrets = [url, parts.password or "", parts.path.strip("/")]
    secrets += [v for kv in parts.query.split("&") for v in kv.split("=")[1:]]
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact_text(text)
