"""Rendering alert titles and bodies: Jinja2, sandboxed, strict about undefined names.

Filters for people: `{{ at | time }}` ("20:56", "yesterday 20:56", "28 Nov 20:56", in the rule's
zone, seen from when the alert fires), `{{ 4500 | duration }}`, `{{ run.energy_wh | energy }}`,
`{{ run.cost | money }}` (in the configured currency).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from plugwatch.formatting import format_duration, format_energy, format_money, when
from plugwatch.model import RunSummary, Transition
from plugwatch.rules.model import DEFAULT_BODY, DEFAULT_TITLE

log = logging.getLogger(__name__)
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _epoch(value: Any) -> float | None:
    """An epoch, ISO 8601 text or datetime as epoch seconds (None when it is none of them)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


@pass_context
def _time_filter(ctx: Context, value: Any) -> str:
    ts = _epoch(value)
    if ts is None:
        return str(value)
    return when(ts, ctx.get("_tz") or UTC, float(ctx.get("_now") or ts))


@pass_context
def _money_filter(ctx: Context, value: Any) -> str:
    return format_money(value, str(ctx.get("currency") or ""))


_ENV.filters["duration"] = format_duration
_ENV.filters["energy"] = format_energy
_ENV.filters["money"] = _money_filter
_ENV.filters["time"] = _time_filter

# Names a template may use; `run` is None unless the trigger ended an On run.
CONTEXT_NAMES = frozenset(
    {"plug", "rule", "from", "to", "reason", "power_w", "at", "end", "since", "now", "duration",
     "from_duration", "repeat", "run", "currency",
     "alerts", "plugs", "count",  # every alert of a grouped message (one when not grouped)
     "duty", "usual", "last_run"}  # condition rules' figures (None for other rules)
)


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return _ENV.from_string(source)


def check_template(source: str) -> str | None:
    """None when `source` compiles and uses only known names, else a one-line problem."""
    try:
        names = meta.find_undeclared_variables(_ENV.parse(source))
    except TemplateError as exc:  # its str() adds a line 'File "<introspection>", line 1'
        first = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).splitlines()
        return f"template error: {first[0]} (see docs/rules.md, Templates)"
    unknown = sorted(names - CONTEXT_NAMES)
    if unknown:
        return f"unknown name {unknown[0]!r} (use: {', '.join(sorted(CONTEXT_NAMES))})"
    return None


def uses_run(source: str) -> bool:
    """True when the template refers to `run`."""
    try:
        return "run" in meta.find_undeclared_variables(_ENV.parse(source))
    except TemplateError:
        return False


def _clock(ts: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(ts, tz or UTC).isoformat(timespec="seconds")


def context(
    rule: str, t: Transition, run: RunSummary | None, from_s: float | None, now: float,
    repeat: int, tz: tzinfo | None,
) -> dict[str, Any]:
    """The names a template sees for transition `t` firing at `now`."""
    return {
        "plug": t.plug, "rule": rule, "from": t.from_state.value, "to": t.to_state.value,
        "reason": t.reason, "power_w": t.power_w, "at": _clock(t.ts, tz), "since": t.ts,
        "end": _clock(t.ts, tz), "now": _clock(now, tz),
        "duration": format_duration(max(0.0, now - t.ts)),
        "from_duration": format_duration(from_s) if from_s is not None else "unknown time",
        "repeat": repeat, "currency": getattr(run, "currency", None) or "",
        "run": None if run is None else {
            "duration": format_duration(run.duration_s), "duration_s": run.duration_s,
            "energy_wh": run.energy_wh, "energy_kwh": run.energy_wh / 1000.0,
            "energy": format_energy(run.energy_wh), "cost": getattr(run, "cost", None),
            "peak_w": run.peak_w, "start": _clock(run.start, tz), "end": _clock(run.end, tz),
            "unobserved_s": getattr(run, "unobserved_s", 0.0),
            "unobserved": format_duration(getattr(run, "unobserved_s", 0.0)),
        },
        "duty": None, "usual": None, "last_run": None,
        "_tz": tz or UTC, "_now": now,
    }


def render_strict(source: str, ctx: dict[str, Any]) -> str:
    """`source` rendered with `ctx`; a template error is raised (for checks and tests)."""
    return str(_compile(source).render(ctx))


def render(source: str, ctx: dict[str, Any], fallback: str) -> str:
    """`source` rendered with `ctx`; on an error the `fallback` (an alert is never lost)."""
    try:
        return str(_compile(source).render(ctx))
    except Exception as exc:  # any template failure must still deliver the alert
        log.warning("rule %s: template failed (%s); using the default text", ctx.get("rule"), exc)
        return str(_compile(fallback).render(ctx))


def render_title_body(title: str, body: str, ctx: dict[str, Any]) -> tuple[str, str]:
    """The rendered title and body of an alert."""
    return render(title, ctx, DEFAULT_TITLE), render(body, ctx, DEFAULT_BODY)
