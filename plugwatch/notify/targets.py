"""Notification targets: an apprise URL, or a mapping with per-target formatting.

    targets:
      phone: ntfy://ntfy.sh/my-topic
      mail: {url: "mailtos://...", format: html}          # the rule texts are HTML
      ha:   {url: "hassio://ha.lan/TOKEN", replace: true}  # a reminder replaces the last one

`replace: true` gives every message of one alert (its first message and every reminder) the
same notification id where the service has one: Home Assistant's `nid`, Bark's `id`; for
json://, xml:// and form:// an `X-Plugwatch-Tag` header the receiver can key on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# scheme -> the URL parameter carrying a notification id (a "+" prefix: an HTTP header)
REPLACE_PARAM = {"hassio": "nid", "hassios": "nid", "bark": "id", "barks": "id",
                 "json": "+X-Plugwatch-Tag", "jsons": "+X-Plugwatch-Tag",
                 "xml": "+X-Plugwatch-Tag", "xmls": "+X-Plugwatch-Tag",
                 "form": "+X-Plugwatch-Tag", "forms": "+X-Plugwatch-Tag"}


def apprise_url(value: str) -> str:
    """`value` when it looks like an apprise URL; never echoes it in the error (tokens)."""
    if not _URL.match(value):
        raise ValueError("not an apprise URL (use e.g. ntfy://ntfy.sh/my-topic)")
    return value


def scheme_of(url: str) -> str:
    """The lower-case scheme of an apprise URL ("json", "mailtos", ...)."""
    return url.split("://", 1)[0].lower()


def target_entry(value: Any) -> Any:
    """A target given as a plain URL is a TargetEntry with default options; a bad URL is
    reported on the target itself (`targets.phone: not an apprise URL`)."""
    if isinstance(value, str):
        return {"url": apprise_url(value)}
    return value


class TargetOptions(BaseModel):
    """How messages to one target are sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["text", "markdown", "html"] = "text"  # what the rule texts are written in
    replace: bool = False  # reminders of one alert replace its last message where supported


class TargetEntry(TargetOptions):
    """A target written as a mapping: `{url: ..., format: ..., replace: ...}`."""

    url: Annotated[str, AfterValidator(apprise_url)]

    @model_validator(mode="after")
    def _replace_supported(self) -> TargetEntry:
        if self.replace and scheme_of(self.url) not in REPLACE_PARAM:
            kinds = ", ".join(sorted({s.rstrip("s") + "://" for s in REPLACE_PARAM}))
            raise ValueError(f"replace: needs a service with notification ids ({kinds}); "
                             f"{scheme_of(self.url)}:// has none")
        return self


def tag_of(dedupe_key: str) -> str:
    """The notification id shared by an alert's messages: its key without target, repeat
    number and status, in characters every service accepts (Home Assistant's `nid`: letters,
    digits, `_` and `-` only)."""
    parts = dedupe_key.split("|")
    kept = [*parts[:2], *parts[3:4]] if len(parts) >= 4 else parts  # rule, plug, trigger
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(["plugwatch", *kept]))[:120]


def url_with_tag(url: str, tag: str) -> str:
    """`url` with the notification id parameter of its service set to `tag`."""
    param = REPLACE_PARAM.get(scheme_of(url))
    if param is None:
        return url
    joiner = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
    return f"{url}{joiner}{quote(param)}={quote(tag)}"
