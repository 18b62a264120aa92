"""Log lines: plain text by default, one JSON object per line with --log-format json; secrets in
URLs are hidden in both, in the message and in tracebacks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from plugwatch.logs import TEXT_FORMAT, JsonFormatter, RedactingFormatter

SECRET_URL = "mailtos://me:hunter2@smtp.example.com?to=me@example.com"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    """A real LogRecord, with the current exception when `exc`."""
    info = sys.exc_info() if exc else None
    return logging.LogRecord("plugwatch.notify.sender", logging.WARNING, __file__, 1, message,
                             args, info)


def test_json_line_has_fields_and_no_secret() -> None:
    try:
        raise RuntimeError(f"cannot send to {SECRET_URL}")
    except RuntimeError:
        line = JsonFormatter().format(record("target %s failed", SECRET_URL, exc=True))
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "plugwatch.notify.sender"
    assert data["ts"].endswith("Z") and len(data["ts"]) == len("2026-12-01T21:00:00.123Z")
    assert data["message"] == "target mailtos://me:***@smtp.example.com?to=*** failed"
    assert "RuntimeError" in data["exception"]
    assert "hunter2" not in line and "\n" not in line


def test_text_format_hides_secrets_too() -> None:
    line = RedactingFormatter(TEXT_FORMAT).format(record("target %s failed", SECRET_URL))
    assert "WARNING plugwatch.notify.sender: target mailtos://me:***@" in line
    assert "hunter2" not in line


def test_cli_json_errors_stay_one_plain_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--log-format json changes log records only; a user error is still one line on stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "plugwatch", "--log-format", "json", "status", "--config",
         str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("plugwatch: error: ") and result.stderr.count("\n") == 1
