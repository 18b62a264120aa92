"""The example rules in rules/ load, check against a config, and render clean text."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules import load_rules
from plugwatch.rules.templates import context, render_title_body

RULES = Path(__file__).resolve().parent.parent / "rules"
T0 = 1_764_618_960.0


def shipped() -> list:
    return load_rules(RULES)


@pytest.mark.parametrize("repeat", [0, 2])
@pytest.mark.parametrize("item", shipped(), ids=lambda item: item.rule.name)
def test_every_shipped_rule_renders_without_double_or_stray_spaces(item, repeat: int) -> None:
    """A first alert and a reminder: no "  " (the old unreachable rule had one), no edge
    blanks, times as clock times rather than ISO stamps."""
    rule = item.rule
    to = rule.when.to[0] if rule.when.to else State.ON
    from_ = rule.when.from_[0] if rule.when.from_ else State.STANDBY
    t = Transition("washer", T0, from_, to, "power", 2.0)
    run = RunSummary("washer", T0 - 3600, T0, 812.0, 2100.0, 0.25, "EUR")
    ctx = context(rule.name, t, run if from_ is State.ON else None, 3600.0, T0 + 900, repeat,
                  ZoneInfo("Europe/Berlin"))
    for text in render_title_body(rule.title, rule.body, ctx):
        assert "  " not in text and text == text.strip(), text
        assert not re.search(r"\d{4}-\d\d-\d\dT", text), f"an ISO time for people: {text}"
