"""Rules (PURE): the rule schema, loading rule files, checking them, and the rules engine.

    load_rules(path) -> [LoadedRule]     rule files with line numbers; RuleFileError lists problems
    check_rules(loaded, plug_tags, targets) -> [problem lines]
    RulesEngine(rules, plug_tags).on_events(events, now) / .due(now) -> [Alert]
"""

from __future__ import annotations

from plugwatch.rules.alert import Alert, dedupe_key
from plugwatch.rules.check import check_rules, load_checked, rule_warnings
from plugwatch.rules.engine import RulesEngine
from plugwatch.rules.loading import LoadedRule, RuleFileError, load_rules
from plugwatch.rules.model import QuietHours, Rule, TagSelector, When

__all__ = [
    "Alert", "LoadedRule", "QuietHours", "Rule", "RuleFileError", "RulesEngine", "TagSelector",
    "When", "check_rules", "dedupe_key", "load_checked", "load_rules",
    "rule_warnings",
]
