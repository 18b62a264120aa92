"""The example rules in rules/ load, check against a config, and render clean text."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules import load_rules
from plugwatch.rules.check import check_rules
from plugwatch.rules.templates import context, render_strict

RULES = Path(__file__).resolve().parent.parent / "rules"
T0 = 1_764_618_960.0


def shipped() -> list:
    return load_rules(RULES)


FACTS = {  # what condition rules add to a template's names
    "duty_cycle": {"duty": {"percent": 81.5, "above": 75.0, "over": "6 h"}},
    "no_run_for": {"last_run": T0 - 3 * 86400},
    "unusual_run": {"usual": {"by": "energy", "value": 2100.0, "low": 700.0, "median": 800.0,
                              "high": 900.0, "runs": 10, "text": "700 Wh to 900 Wh",
                              "direction": "more"}},
}


@pytest.mark.parametrize("repeat", [0, 2])
@pytest.mark.parametrize("item", shipped(), ids=lambda item: item.rule.name)
def test_every_shipped_rule_renders_without_double_or_stray_spaces(item, repeat: int) -> None:
    """A first alert and a reminder: no "  " (the old unreachable rule had one), no edge
    blanks, times as clock times rather than ISO stamps; no template falls back to the default
    text (a broken template would)."""
    rule = item.rule
    states = rule.when.states
    to = rule.when.to[0] if rule.when.to else states[0]
    from_ = State.ON if rule.when.kind == "unusual_run" else (
        rule.when.from_[0] if rule.when.from_ else State.STANDBY)
    t = Transition("washer", T0, from_, to, "power", 2.0)
    run = RunSummary("washer", T0 - 3600, T0, 812.0, 2100.0, 0.25, "EUR")
    ctx = context(rule.name, t, run if from_ is State.ON else None, 3600.0, T0 + 900, repeat,
                  ZoneInfo("Europe/Berlin"))
    ctx.update(FACTS.get(rule.when.kind, {}))
    ctx.update(alerts=[{**ctx, "title": "freezer is unreachable"}] * 2,
               plugs=["freezer", "fridge"], count=2)
    texts = [rule.title, rule.body] + ([rule.group_title, rule.group_body] if rule.wait else [])
    for source in texts:
        text = render_strict(source, ctx).strip("\n")
        assert "  " not in text and text == text.strip(), text
        assert not re.search(r"\d{4}-\d\d-\d\dT", text), f"an ISO time for people: {text}"


def test_the_examples_check_together() -> None:
    """Every rule `unless:` names is shipped too (rules check passes on the folder)."""
    assert check_rules(shipped()) == []
