"""Rendering alert titles and bodies: Jinja2, sandboxed, strict about undefined names."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from plugwatch.formatting import format_duration
from plugwatch.model import RunSummary, Transition
from plugwatch.rules.model import DEFAULT_BODY, DEFAULT_TITLE

log = logging.getLogger(__name__)
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ENV.filters["duration"] = format_duration

# Names a template may use; `run` is None unless the trigger ended an On run.
CONTEXT_NAMES = frozenset(
    {"plug", "rule", "from", "to", "reason", "power_w", "at", "since", "now", "duration",
     "from_duration", "repeat", "run"}
)


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return _ENV.from_string(source)


def check_template(source: str) -> str | None:
    """None when `source` compiles and uses only known names, else a one-line problem."""
    try:
        names = meta.find_undeclared_variables(_ENV.parse(source))
    except TemplateError as exc:
        return f"template error: {exc} (see docs/rules.md, Templates)"
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


def _clock(ts: float, tz: ZoneInfo | None) -> str:
    return datetime.fromtimestamp(ts, tz or UTC).isoformat(timespec="seconds")


def context(
    rule: str, t: Transition, run: RunSummary | None, from_s: float | None, now: float,
    repeat: int, tz: ZoneInfo | None,
) -> dict[str, Any]:
    """The names a template sees for transition `t` firing at `now`."""
    return {
        "plug": t.plug, "rule": rule, "from": t.from_state.value, "to": t.to_state.value,
        "reason": t.reason, "power_w": t.power_w, "at": _clock(t.ts, tz), "since": t.ts,
        "now": _clock(now, tz), "duration": format_duration(max(0.0, now - t.ts)),
        "from_duration": format_duration(from_s) if from_s is not None else "unknown time",
        "repeat": repeat,
        "run": None if run is None else {
            "duration": format_duration(run.duration_s), "duration_s": run.duration_s,
            "energy_wh": run.energy_wh, "energy_kwh": run.energy_wh / 1000.0,
            "peak_w": run.peak_w, "start": _clock(run.start, tz), "end": _clock(run.end, tz),
        },
    }


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
