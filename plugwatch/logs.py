"""Log output: plain text for people (the default) or one JSON object per line for log shippers.

    setup_logging(logging.INFO, "json")
    {"ts": "2026-12-01T21:00:00.123Z", "level": "warning", "logger": "plugwatch.notify.sender",
     "message": "alert 3 to phone: attempt 1 failed: ...", "exception": "Traceback ..."}

Both formats pass every message and traceback through plugwatch.redact, so a URL with a password
or token that reaches a log line anyway shows as `***`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from plugwatch.redact import redact_text

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """The plain text format with secrets in URLs hidden."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ms), level, logger, message, exception when any."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        data = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        if record.exc_info:
            data["exception"] = redact_text(self.formatException(record.exc_info))
        elif record.stack_info:
            data["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(data, ensure_ascii=False)


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(text.split())


class OneLineFilter(logging.Filter):
    """Folds a record's message into one line (for libraries whose messages span several)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\n" in message:
            record.msg, record.args = one_line(message), None
        return True


def setup_logging(level: int, fmt: str = "text") -> None:
    """Send log records of `level` and above to stderr in `fmt` ("text" or "json").

    Like logging.basicConfig, it does nothing when the root logger already has a handler (an
    embedding program's, or pytest's).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
