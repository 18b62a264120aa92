"""Rules (PURE): the rule schema, loading rule files, checking them, and the rules engine.

    load_rules(path) -> [LoadedRule]     rule files with line numbers; RuleFileError lists problems
    check_rules(loaded, plug_tags, targets) -> [problem lines]
    RulesEngine(rules, plug_tags).on_events(events, now) / .due(now) -> [Alert]

The names below are imported from their modules on first use, so that importing one light part
(e.g. plugwatch.rules.cost, which the config needs) does not load Jinja and the engine as well:
`plugwatch status` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugwatch.rules.alert import Alert, dedupe_key
    from plugwatch.rules.check import check_rules, load_checked, rule_warnings
    from plugwatch.rules.engine import RulesEngine
    from plugwatch.rules.loading import LoadedRule, RuleFileError, load_rules
    from plugwatch.rules.model import QuietHours, Rule, TagSelector, When

_HOME = {
    "Alert": "alert", "dedupe_key": "alert",
    "check_rules": "check", "load_checked": "check", "rule_warnings": "check",
    "RulesEngine": "engine",
    "LoadedRule": "loading", "RuleFileError": "loading", "load_rules": "loading",
    "QuietHours": "model", "Rule": "model", "TagSelector": "model", "When": "model",
}
__all__ = [
    "Alert", "LoadedRule", "QuietHours", "Rule", "RuleFileError", "RulesEngine", "TagSelector",
    "When", "check_rules", "dedupe_key", "load_checked", "load_rules", "rule_warnings",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'plugwatch.rules' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"plugwatch.rules.{_HOME[name]}"), name)
    globals()[name] = value
    return value
