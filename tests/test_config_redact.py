"""Secrets in URLs are hidden before they can reach a log, an error or a repr."""

from __future__ import annotations

import pytest

from plugwatch.redact import redact, redact_text


@pytest.mark.parametrize(("url", "shown"), [
    # mail: the user name stays, the password and the query values go
    ("mailtos://user:hunter2@smtp.example.com?to=me@example.com",
     "mailtos://user:***@smtp.example.com?to=***"),
    # ntfy: the host stays, the topic (anyone knowing it can read it) goes
    ("ntfy://ntfy.sh/my-topic", "ntfy://ntfy.sh/***"),
    # a bare topic or a bot token in the host part is hidden
    ("ntfy://my-topic", "ntfy://***"),
    ("tgram://123456:ABC-token/987", "tgram://***/***"),
    ("pover://userkey123@apptoken", "pover://***@***"),
    ("json://localhost:8080/hook", "json://localhost:8080/***"),
    # databases keep user, host and database name
    ("postgresql+psycopg://app:pw@db.lan:5432/plugwatch",
     "postgresql+psycopg://app:***@db.lan:5432/plugwatch"),
    ("postgresql+psycopg://postgres@127.0.0.1/test?password=x&sslmode=require",
     "postgresql+psycopg://postgres@127.0.0.1/test?password=***&sslmode=require"),
    ("sqlite:////var/lib/plugwatch.db", "sqlite:////var/lib/plugwatch.db"),
    ("not a url", "***"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_redact_text_finds_urls_inside_messages() -> None:
    text = "connection to postgresql://u:secret@h/db failed; target mailto://a:b@x.org"
    assert redact_text(text) == (
        "connection to postgresql://u:***@h/db failed; target mailto://a:***@x.org"
    )
