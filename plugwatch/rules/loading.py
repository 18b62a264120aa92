"""Reading rule files: YAML with line numbers, validated rule by rule into Rule models.

Every problem becomes one line "file:line: rule 'name': field: what is wrong (how to fix)", and all
problems of all files are reported together in one RuleFileError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from plugwatch.config.yamlload import Loc, field_path, parse_yaml
from plugwatch.errors import ConfigError
from plugwatch.model import State
from plugwatch.rules.model import Rule

_STATES = ", ".join(s.value for s in State if s is not State.UNKNOWN)


class RuleFileError(ConfigError):
    """One or more rule files are invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LoadedRule:
    """A validated rule and where it was written."""

    rule: Rule
    file: str
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)  # top-level key -> its line

    def line_of(self, key: str) -> int:
        """The line of the rule's key `key` (e.g. "title"; "when.to" is taken as "when")."""
        return self.key_lines.get(key.split(".")[0], self.line)


def rule_files(path: str | os.PathLike[str]) -> list[Path]:
    """The rule files at `path`: the file itself, or every *.yaml/*.yml in the folder, sorted."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    if not p.exists():
        raise RuleFileError([f"{p}: no such rule file or folder (check `rules:` in the config)"])
    return [p]


def _describe(err: ErrorDetails) -> str:
    """A pydantic error on a rule as a short sentence with a hint."""
    msg: str = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see docs/rules.md)"
    elif err["type"] == "missing":
        msg = "missing (this key is required; see docs/rules.md)"
    elif err["type"] == "string_type":
        msg = f"must be text, got {err['input']!r} (put it in quotes)"
    elif err["type"] == "enum":
        msg = f"unknown state {err['input']!r} (use {_STATES})"
    return msg


def load_rule_file(file: Path) -> tuple[list[LoadedRule], list[str]]:
    """Rules of one file and the problems found in it (one line each)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        return [], [f"{file}: cannot read: {exc.strerror or exc}"]
    try:
        doc = parse_yaml(text, str(file))
    except ConfigError as exc:  # invalid YAML or a repeated key, already "file:line: ..."
        return [], [str(exc)]
    if not doc.lines:  # an empty file (or only comments): no rules, no problems
        return [], []
    data: Any = doc.data
    base: Loc = ()
    if isinstance(data, dict) and set(data) == {"rules"}:
        data, base = data["rules"], ("rules",)
    if not isinstance(data, list):
        return [], [f"{file}:1: a rule file is a YAML list of rules (start each with `- name:`)"]
    rules: list[LoadedRule] = []
    problems: list[str] = []
    for i, raw in enumerate(data):
        line = doc.line_of((*base, i))
        if not isinstance(raw, dict):
            problems.append(f"{file}:{line}: rule #{i + 1}: must be a mapping (name, when, notify)")
            continue
        label = f"rule '{raw['name']}'" if isinstance(raw.get("name"), str) else f"rule #{i + 1}"
        try:
            key_lines = {key: doc.line_of((*base, i, key)) for key in raw if isinstance(key, str)}
            rules.append(LoadedRule(Rule.model_validate(raw), str(file), line, key_lines))
        except ValidationError as exc:
            for err in sorted(exc.errors(), key=lambda e: doc.line_of((*base, i, *e["loc"]))):
                at = doc.line_of((*base, i, *err["loc"]))
                where = field_path(err["loc"]) or "rule"
                problems.append(f"{file}:{at}: {label}: {where}: {_describe(err)}")
    return rules, problems


def load_rules(path: str | os.PathLike[str]) -> list[LoadedRule]:
    """Every rule at `path` (a file or folder); raises RuleFileError listing all problems."""
    rules, problems = load_rules_and_problems(path)
    if problems:
        raise RuleFileError(problems)
    return rules


def load_rules_and_problems(path: str | os.PathLike[str]) -> tuple[list[LoadedRule], list[str]]:
    """The valid rules at `path` and every problem found (so that the valid ones can still be
    checked in the same pass: `rules check`). A missing path raises RuleFileError."""
    rules: list[LoadedRule] = []
    problems: list[str] = []
    for file in rule_files(path):
        found, bad = load_rule_file(file)
        rules.extend(found)
        problems.extend(bad)
    seen: dict[str, LoadedRule] = {}
    for loaded in rules:
        first = seen.setdefault(loaded.rule.name, loaded)
        if first is not loaded:
            problems.append(
                f"{loaded.file}:{loaded.line}: rule '{loaded.rule.name}': name: already used at "
                f"{first.file}:{first.line} (rule names must be unique)"
            )
    return rules, problems
