"""`plugwatch status`: each plug's state as live as it can be had, and said plainly when it is not.

The running service is asked first when it serves HTTP (`http:` in the config: GET /api/status,
one port per --workers process); otherwise, or when it does not answer, the database tells what
was last recorded. A plug not heard of for longer than a few intervals is *stale*: the line says
so ("stale, last contact 12 min ago"). An unreachable plug shows why it failed, not a power.
`--check` makes the exit status say it: 0 when every plug is live and reachable, 2 otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from plugwatch.formatting import format_duration, format_power, iso, when

STALE_MIN_S = 30.0  # the service snapshots every plug at least every 10 s: allow for that
STALE_INTERVALS = 3  # ... and for a few missed intervals of slow plugs
CHECK_FAILED = 2  # `status --check` exit status when some plug is stale, unreachable or unknown
HTTP_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class PlugStatus:
    """One plug as `status` shows it."""

    plug: str
    state: str
    since: float | None
    power_w: float | None
    last_contact: float | None
    last_seen: float | None  # the latest sign of the service handling this plug
    failure: str | None  # why it is unreachable (its latest failure), when known
    held_by: str | None
    stale_after_s: float
    source: str = "database"  # or "service": its /api/status answered

    @classmethod
    def unknown(cls, plug: str, interval_s: float | None) -> PlugStatus:
        """A configured plug the database (or the service) knows nothing about yet."""
        return cls(plug, "unknown", None, None, None, None, None, None, stale_after(interval_s))

    def stale(self, now: float) -> bool:
        """True when the service has not handled this plug for longer than a few intervals."""
        return self.last_seen is None or now - self.last_seen > self.stale_after_s

    def problem(self, now: float) -> str | None:
        """What `--check` reports for this plug, or None when it is live and reachable."""
        if self.last_contact is None and self.last_seen is None:
            return f"{self.plug}: never contacted"
        if self.stale(now):
            return f"{self.plug}: stale, last contact {_ago(self.last_contact, now)}"
        if self.state in ("unreachable", "unknown"):
            reason = f" ({self.failure})" if self.failure else ""
            return f"{self.plug}: {self.state}{reason}"
        return None

    def json(self, now: float) -> dict[str, Any]:
        """The JSON object of `status --json`."""
        return {
            "plug": self.plug, "state": self.state,
            "since": iso(self.since) if self.since else None, "last_power_w": self.power_w,
            "last_contact": iso(self.last_contact) if self.last_contact else None,
            "stale": self.stale(now), "last_failure": self.failure, "held_by": self.held_by,
            "source": self.source,
        }

    def line(self, tz: tzinfo, now: float) -> str:
        """The human line: name, state, power (or failure reason), since when, contact."""
        if self.state == "unreachable":
            what = self.failure or "no answer"
        else:
            what = format_power(self.power_w)
        since = f"since {when(self.since, tz, now)} ({format_duration(now - self.since)})" \
            if self.since else "no state decided yet"
        if self.last_contact is None and self.last_seen is None:
            contact = "never contacted"
        elif self.stale(now):
            contact = f"stale, last contact {_ago(self.last_contact, now)}"
        else:
            contact = (f"last contact {when(self.last_contact, tz, now)} "
                       f"({_ago(self.last_contact, now)})" if self.last_contact else
                       "no reading yet")
        held = f"  held by {self.held_by}" if self.held_by else ""
        return f"{self.plug:<16} {self.state:<12} {what:>10}  {since}  {contact}{held}"


def _ago(ts: float | None, now: float) -> str:
    return "never" if ts is None else f"{format_duration(max(0.0, now - ts))} ago"


def stale_after(interval_s: float | None) -> float:
    """How long a plug may go unheard before its status is stale."""
    return max(STALE_MIN_S, STALE_INTERVALS * (interval_s or 0.0))


def from_database(rows: list[dict[str, Any]], intervals: dict[str, float]) -> list[PlugStatus]:
    """PlugStatus from Store.status() rows (the last recorded state of each plug)."""
    out = []
    for row in rows:
        seen = [t for t in (row.get("last_contact"), row.get("snapshot_ts")) if t]
        out.append(PlugStatus(
            plug=row["plug"], state=row.get("state") or "unknown", since=row.get("since"),
            power_w=row.get("last_power_w"), last_contact=row.get("last_contact"),
            last_seen=max(seen) if seen else None, failure=row.get("last_failure"),
            held_by=row.get("held_by"), stale_after_s=stale_after(intervals.get(row["plug"])),
        ))
    return out


def from_service(
    host: str, port: int, intervals: dict[str, float], now: float,
) -> list[PlugStatus] | None:
    """PlugStatus from the running service's /api/status (and its workers' on the next ports);
    None when nothing answers there."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    found: dict[str, PlugStatus] = {}
    for offset in range(max(1, len(intervals))):  # --workers K serve on port .. port+K-1
        data = _get_json(host, port + offset)
        if data is None:
            break
        for row in data.get("plugs", []):
            found[row["plug"]] = PlugStatus(
                plug=row["plug"], state=row.get("state") or "unknown", since=row.get("since_ts"),
                power_w=row.get("raw_power_w"), last_contact=row.get("last_contact_ts"),
                last_seen=now,  # the service answered for it just now
                failure=row.get("last_failure"), held_by=row.get("held_by"),
                stale_after_s=stale_after(intervals.get(row["plug"])), source="service",
            )
        if set(intervals) <= set(found):
            break
    return list(found.values()) if found else None


def _get_json(host: str, port: int) -> dict[str, Any] | None:
    import urllib.error  # only when the service serves HTTP: http.client and email cost ~30 ms
    import urllib.request

    where = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{where}:{port}/api/status",
                                    timeout=HTTP_TIMEOUT_S) as answer:
            data = json.loads(answer.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return data if isinstance(data, dict) else None
