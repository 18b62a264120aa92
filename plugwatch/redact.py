"""Hiding secrets in URLs before they reach a log line, an error message or a repr.

    redact("mailtos://me:hunter2@smtp.example.com?to=me@example.com")
        -> "mailtos://me:***@smtp.example.com?to=***"
    redact("tgram://123456:ABC-token/987")        -> "tgram://***/***"
    redact("postgresql+psycopg://app:pw@db/plugwatch") -> "postgresql+psycopg://app:***@db/plugwatch"

Database URLs keep their user, host and database name (only the password is hidden). Notification
(apprise) URLs carry tokens in the user part, the host part or the path, so everything that is not
plainly a host name is hidden. `redact_text` does the same for every URL inside a longer text.
"""

from __future__ import annotations

import re

MASK = "***"
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>[^\s'\"<>]*)")
_HOST = re.compile(r"^(?:[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+|localhost|\[[0-9A-Fa-f:.]+\])$")
_DB_SCHEMES = ("sqlite", "postgres", "postgresql", "mysql", "mariadb", "oracle", "mssql")
_SECRET_KEYS = re.compile(r"pass|secret|token|key|auth|pwd", re.IGNORECASE)


def redact(url: str) -> str:
    """`url` with passwords and tokens replaced by ***; safe to log or show."""
    match = _URL.fullmatch(url.strip())
    if not match:
        return MASK if url else url
    return _redact_match(match)


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (for error messages from other libraries)."""
    return _URL.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    rest = match.group("rest")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    is_db = scheme.split("+", 1)[0].lower() in _DB_SCHEMES
    userinfo, at, hostport = netloc.rpartition("@")
    out = f"{scheme}://"
    if at:
        user, colon, _password = userinfo.partition(":")
        if colon:
            out += f"{user if is_db or _plain(user) else MASK}:{MASK}@"
        else:
            out += f"{user if is_db else MASK}@"
    out += hostport if is_db else _host(hostport)
    if slash:
        out += "/" + (path if is_db else (MASK if path else ""))
    if query:
        out += "?" + _query(query, hide_all=not is_db)
    return out


def _plain(user: str) -> bool:
    """A user name that reads like a name or a mail address, not like a token."""
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9._\-]{0,31}(?:%40[A-Za-z0-9.\-]+)?", user))


def _host(hostport: str) -> str:
    host, colon, port = hostport.partition(":")
    if host.startswith("["):  # IPv6 literal: [::1]:8080
        host, _, tail = hostport.partition("]")
        host += "]"
        colon, port = (":", tail[1:]) if tail.startswith(":") else ("", "")
    if not _HOST.match(host) or (colon and not port.isdigit()):
        return MASK if hostport else ""
    return host + (colon + port if colon else "")


def _query(query: str, hide_all: bool) -> str:
    parts = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        hidden = eq and value and (hide_all or _SECRET_KEYS.search(key))
        parts.append(f"{key}={MASK}" if hidden else item)
    return "&".join(parts)
