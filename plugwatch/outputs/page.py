"""The status page at `/` (and `/plug/<name>`): server-rendered HTML with inline SVG charts.

Every plug with its state, since when, power now and last contact; for each plug (on `/` up to
MAX_CHARTS of them, else one page per plug) a chart of the last 24 h of power over the state
bands and the last runs. No scripts, no front-end build: the page reloads itself with a
`<meta http-equiv="refresh">`. Read-only, and it shows no address, URL or secret: only plug names
and what the detector decided. Runs in a worker thread (it queries the database).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plugwatch.formatting import format_duration, format_money

DAY_S = 86400.0
MAX_CHARTS = 12  # more plugs than this: `/` lists them, each links to its own page
LAST_RUNS = 5
REFRESH_S = 30


class StatusPage:
    """Renders the status page of one LiveView."""

    def __init__(self, view: Any, zone: str = "UTC", clock: Callable[[], float] = time.time):
        from jinja2 import Environment, select_autoescape

        from plugwatch.outputs.page_template import TEMPLATE

        self.view = view
        self.zone = zone
        self.clock = clock
        env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
        self.template = env.from_string(TEMPLATE)

    def overview(self, refresh_s: int = REFRESH_S) -> str:
        """The page at `/`: every plug, with charts when there are at most MAX_CHARTS."""
        rows = self.view.plugs()
        charted = rows if len(rows) <= MAX_CHARTS else []
        return self._render(rows, charted, refresh_s, title="plugwatch")

    def plug(self, name: str, refresh_s: int = REFRESH_S) -> str:
        """The page at `/plug/<name>`: that plug's row, chart and runs."""
        rows = [row for row in self.view.plugs() if row["plug"] == name]
        return self._render(rows, rows, refresh_s, title=f"plugwatch: {name}")

    def _render(self, rows: list[dict[str, Any]], charted: list[dict[str, Any]], refresh_s: int,
                title: str) -> str:
        now = self.clock()
        health = self.view.health()
        return self.template.render(
            title=title, refresh=max(2, min(int(refresh_s), 3600)), health=health,
            generated=self._time(now), zone=self.zone, many=len(charted) < len(rows),
            plugs=[self._row(row, now) for row in rows],
            charts=[self._chart(row, now) for row in charted],
        )

    def _row(self, row: dict[str, Any], now: float) -> dict[str, Any]:
        since = row["since_ts"]
        contact = row["last_contact_ts"]
        return {
            "name": row["plug"], "state": row["state"],
            "since": self._time(since) if since else "-",
            "for": format_duration(now - since) if since else "",
            "power": _watts(row["power_w"]), "raw": _watts(row["raw_power_w"]),
            "energy": f"{row['energy_kwh']:.3f} kWh" if row["energy_kwh"] is not None else "-",
            "contact": (f"{format_duration(now - contact)} ago" if contact else "never"),
        }

    def _chart(self, row: dict[str, Any], now: float) -> dict[str, Any]:
        from plugwatch.outputs.chart import power_chart, state_bands  # numpy: on first view only

        store, name = self.view.store, row["plug"]
        start = now - DAY_S
        ts, watts = store.reading_arrays(name, since=start, until=now)
        changes = store.transitions(plug=name, since=start, until=now)
        runs = store.runs(plug=name, since=now - 7 * DAY_S)[-LAST_RUNS:]
        seen = [float(ts[0])] if len(ts) else []
        seen += [changes[0].ts] if changes else []
        seen += [row["since_ts"]] if row["since_ts"] else []  # e.g. unreachable from the start
        bands = state_bands([(t.ts, str(t.from_state), str(t.to_state)) for t in changes],
                            row["state"], start, now, min(seen) if seen else None)
        return {
            "name": name, "svg": power_chart(name, ts, watts, bands, start, now, self.zone),
            "runs": [{"start": self._time(r.start), "duration": format_duration(r.duration_s),
                      "energy": f"{r.energy_wh:.0f} Wh", "peak": f"{r.peak_w:.0f} W",
                      "cost": format_money(r.cost, r.currency or "") if r.cost is not None
                      else ""}
                     for r in reversed(runs)],
        }

    def _time(self, ts: float) -> str:
        moment = datetime.fromtimestamp(ts, ZoneInfo(self.zone))
        today = datetime.fromtimestamp(self.clock(), ZoneInfo(self.zone)).date()
        return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M")


def _watts(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} W" if value < 1000 else f"{value / 1000:.2f} kW"
