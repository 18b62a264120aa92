"""apprise's own log lines go through plugwatch: redacted, one line each, never twice per error."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from plugwatch.errors import NotifyError
from plugwatch.notify.apprise_notifier import AppriseNotifier, route_apprise_logs
from tests.test_notify_receivers import free_port

SECRET = "Hunter2secret"
TOKEN = "tok3nPathPart"


def config(tmp_path: Path) -> Path:
    """A config whose `mail` target is an SMTP server that refuses connections (a closed port)
    and whose `bad` target is a URL apprise cannot parse, both holding secrets."""
    path = tmp_path / "plugwatch.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path}/pw.db\n"
        "plugs:\n  - {name: washer, host: 127.0.0.1}\n"
        "targets:\n"
        f"  mail: mailto://me:{SECRET}@localhost:{free_port()}?to=me@example.com\n"
        f"  bad: notaproto://me:{SECRET}@host/{TOKEN}\n"
    )
    return path


def notify_test(path: Path, target: str, *verbose: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plugwatch", *verbose, "notify", "test", target,
         "--config", str(path)], capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("target", ["mail", "bad"])
def test_a_failed_send_is_one_line_without_secrets(tmp_path: Path, target: str) -> None:
    """A refused SMTP connection or an unparseable URL is ONE stderr line (apprise's own
    warning becomes its reason, not a second line), with neither password nor path token."""
    proc = notify_test(config(tmp_path), target, "-v")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"plugwatch: error: target '{target}' (")
    if target == "mail":
        assert "Connection error while submitting email" in lines[0]
    assert SECRET not in proc.stderr and TOKEN not in proc.stderr and "H...t" not in proc.stderr


def test_at_debug_level_apprise_speaks_redacted_one_line_per_record(tmp_path: Path) -> None:
    """-vv shows apprise's own records, each on one line, prefixed, with secrets hidden."""
    proc = notify_test(config(tmp_path), "mail", "-vv")
    apprise_lines = [line for line in proc.stderr.splitlines() if " apprise: " in line]
    assert any("Connection error while submitting email" in line for line in apprise_lines)
    assert all(" plugwatch.notify.apprise_notifier: apprise: " in line for line in apprise_lines)
    assert all(line[:4].isdigit() for line in proc.stderr.splitlines()[:-1])  # no continuations
    assert SECRET not in proc.stderr and TOKEN not in proc.stderr


def test_apprise_records_outside_a_send_are_logged_once_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record apprise logs on its own (not during a send) reaches plugwatch's logger once, on
    one line and redacted."""
    route_apprise_logs()
    route_apprise_logs()  # idempotent: still one handler
    with caplog.at_level(logging.WARNING):
        logging.getLogger("apprise").warning(
            "first line\nsecond https://u:%s@mail.example.com/x", SECRET)
    # (caplog also hooks non-propagating loggers such as apprise's own: only ours count here)
    (record,) = [r for r in caplog.records if r.name.startswith("plugwatch")]
    assert record.name == "plugwatch.notify.apprise_notifier"
    assert record.getMessage() == "apprise: first line second https://u:***@mail.example.com/***"


def test_an_in_process_failure_keeps_apprises_words_as_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Inside the service (no CLI), apprise's warning during a send is the NotifyError's reason
    and is not logged separately as well."""
    url = f"json://127.0.0.1:{free_port()}/{TOKEN}"
    notifier = AppriseNotifier({"phone": url})
    with caplog.at_level(logging.WARNING), pytest.raises(NotifyError) as caught:
        notifier.send_sync("phone", "t", "b")
    assert "phone" in str(caught.value) and TOKEN not in str(caught.value)
    assert "delivery failed" not in str(caught.value)  # apprise's own reason is there
    assert not [r for r in caplog.records if "apprise: " in r.getMessage()]
