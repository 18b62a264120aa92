"""Hiding the secrets of an apprise URL (passwords, tokens, keys) before it is shown anywhere."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SECRET_QUERY = re.compile(r"(?i)([?&](?:pass|password|token|key|apikey|secret|auth)[^=&]*=)[^&]*")


def redact_url(url: str) -> str:
    """`url` with its password and path/query secrets replaced by ***: scheme and host stay."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.password else ""
    if parts.username and not parts.password:
        user = f"{parts.username}@"
    # Path segments of push services are often tokens (ntfy topics, webhook ids): keep only length.
    path = "/***" if parts.path.strip("/") else parts.path
    query = _SECRET_QUERY.sub(r"\1***", f"?{parts.query}") if parts.query else ""
    return f"{parts.scheme}://{user}{host}{path}{query}"


def scrub(text: str, url: str) -> str:
    """`text` with every secret part of `url` (password, path, query values) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    secrets = [parts.password or "", parts.path.strip("/"), url]
    secrets += [v for kv in parts.query.split("&") for v in kv.split("=")[1:]]
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
