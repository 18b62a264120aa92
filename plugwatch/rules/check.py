"""Checking loaded rules against the config: plugs, tags, targets, templates, time zones."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugwatch.model import State
from plugwatch.rules.loading import LoadedRule, RuleFileError, load_rules
from plugwatch.rules.model import TagSelector
from plugwatch.rules.templates import check_template, uses_run

_GLOB = re.compile(r"[*?\[]")


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none configured"


def check_rules(
    loaded: Sequence[LoadedRule],
    plug_tags: Mapping[str, Iterable[str]] | None = None,
    targets: Iterable[str] | None = None,
) -> list[str]:
    """One line per problem ("file:line: rule 'name': field: problem (fix)"); [] when all good.

    `plug_tags` (plug name -> tags) and `targets` come from the config; None skips those checks.
    """
    problems: list[str] = []
    target_names = set(targets) if targets is not None else None
    rule_names = [item.rule.name for item in loaded]
    for item in loaded:
        rule = item.rule

        def bad(field: str, msg: str, item: LoadedRule = item) -> None:
            at = item.line_of(field)
            problems.append(f"{item.file}:{at}: rule '{item.rule.name}': {field}: {msg}")

        if target_names is not None:
            for target in rule.targets:
                if target not in target_names:
                    bad("notify", f"unknown target {target!r} (targets: {_known(target_names)})")
        names = set(rule_names) if rule_names is not None else None
        for u in rule.unless:
            if names is not None and u.rule not in names:
                bad("unless", f"unknown rule {u.rule!r} (rules: {_known(names)})")
        if plug_tags is not None and isinstance(rule.plugs, list):
            for name in rule.plugs:
                if not _GLOB.search(name) and name not in plug_tags:
                    bad("plugs", f"unknown plug {name!r} (plugs: {_known(plug_tags)})")
        texts = [("title", rule.title), ("body", rule.body)]
        texts += [(f"notify[{i}].{f}", getattr(e, f)) for i, e in enumerate(rule.notify)
                  for f in ("title", "body") if not isinstance(e, str) and getattr(e, f)]
        if rule.wait:
            texts += [("group_title", rule.group_title), ("group_body", rule.group_body)]
        for field, source in texts:
            problem = check_template(source)
            if problem:
                bad(field, problem)
            elif uses_run(source) and not _gets_run(item) and not field.startswith("group"):
                bad(field, "`run` is only set for rules with `when: {from: on}` "
                    "(use `{% if run %}...{% endif %}` or change `when`)")
        if rule.quiet_hours is not None and rule.quiet_hours.tz:
            try:
                ZoneInfo(rule.quiet_hours.tz)
            except (ZoneInfoNotFoundError, ValueError):
                bad("quiet_hours.tz", f"unknown time zone {rule.quiet_hours.tz!r} "
                    "(use an IANA name such as Europe/Berlin)")
    return problems


def rule_warnings(
    loaded: Sequence[LoadedRule], plug_tags: Mapping[str, Iterable[str]]
) -> list[str]:
    """Lines for globs and tags that select no plug today (allowed: plugs may be added later)."""
    warnings: list[str] = []
    all_tags = {tag for tags in plug_tags.values() for tag in tags}
    for item in loaded:
        where = f"{item.file}:{item.line}: rule '{item.rule.name}'"
        if isinstance(item.rule.plugs, TagSelector):
            for tag in item.rule.plugs.tags:
                if tag not in all_tags:
                    warnings.append(f"{where}: plugs.tags: no plug has tag {tag!r} yet "
                                    f"(tags: {_known(all_tags)})")
        else:
            for pattern in item.rule.plugs:
                if _GLOB.search(pattern) and not fnmatch.filter(plug_tags, pattern):
                    warnings.append(f"{where}: plugs: {pattern!r} matches no plug yet "
                                    f"(plugs: {_known(plug_tags)})")
    return warnings


def _gets_run(item: LoadedRule) -> bool:
    """True when every trigger of the rule ends an On run, or the template guards `run`."""
    when = item.rule.when
    if when.unusual_run is not None or (
            when.from_ == [State.ON] and when.to is not None and State.ON not in when.to):
        return True
    texts = [item.rule.title, item.rule.body]
    texts += [getattr(e, f) or "" for e in item.rule.notify if not isinstance(e, str)
              for f in ("title", "body")]
    return "if run" in "".join(texts)


def load_checked(
    path: str | os.PathLike[str],
    plug_tags: Mapping[str, Iterable[str]] | None = None,
    targets: Iterable[str] | None = None,
) -> list[LoadedRule]:
    """The rules at `path`, loaded and checked; RuleFileError listing every problem otherwise."""
    loaded = load_rules(path)
    problems = check_rules(loaded, plug_tags, targets)
    if problems:
        raise RuleFileError(problems)
    return loaded
