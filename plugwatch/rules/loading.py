"""Reading rule files: YAML with line numbers, validated rule by rule into Rule models.

Every problem becomes one line "file:line: rule 'name': field: what is wrong (how to fix)", and all
problems of all files are reported together in one RuleFileError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

from plugwatch.errors import ConfigError
from plugwatch.model import State
from plugwatch.rules.model import Rule

Path_ = tuple[int | str, ...]
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
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


def rule_files(path: str | os.PathLike[str]) -> list[Path]:
    """The rule files at `path`: the file itself, or every *.yaml/*.yml in the folder, sorted."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    if not p.exists():
        raise RuleFileError([f"{p}: no such rule file or folder (check `rules:` in the config)"])
    return [p]


def _to_python(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """Plain Python data from a composed YAML node, recording each value's line under its path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _CONSTRUCTOR.construct_object(node)


def _line_of(lines: dict[Path_, int], path: Path_) -> int:
    """The line of the longest known prefix of `path`."""
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return 1


def _field(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as `when.to[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "rule"


def load_rule_file(file: Path) -> tuple[list[LoadedRule], list[str]]:
    """Rules of one file and the problems found in it (one line each)."""
    try:
        node = yaml.compose(file.read_text(encoding="utf-8"))
    except OSError as exc:
        return [], [f"{file}: cannot read: {exc.strerror or exc}"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        return [], [f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]
    if node is None:
        return [], []
    lines: dict[Path_, int] = {}
    data = _to_python(node, (), lines)
    if isinstance(data, dict) and set(data) == {"rules"}:
        data, lines = data["rules"], {k[1:]: v for k, v in lines.items() if k[:1] == ("rules",)}
    if not isinstance(data, list):
        return [], [f"{file}:1: a rule file is a YAML list of rules (start each with `- name:`)"]
    rules: list[LoadedRule] = []
    problems: list[str] = []
    for i, raw in enumerate(data):
        line = _line_of(lines, (i,))
        if not isinstance(raw, dict):
            problems.append(f"{file}:{line}: rule #{i + 1}: must be a mapping (name, when, notify)")
            continue
        label = f"rule '{raw['name']}'" if isinstance(raw.get("name"), str) else f"rule #{i + 1}"
        try:
            rules.append(LoadedRule(Rule.model_validate(raw), str(file), line))
        except ValidationError as exc:
            for err in sorted(exc.errors(), key=lambda e: _line_of(lines, (i, *e["loc"]))):
                at = _line_of(lines, (i, *err["loc"]))
                msg: str = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown key (check the spelling; see docs/rules.md)"
                elif err["type"] == "missing":
                    msg = "missing (this key is required; see docs/rules.md)"
                elif err["type"] == "string_type":
                    msg = f"must be text, got {err['input']!r} (put it in quotes)"
                elif err["type"] == "enum":
                    msg = f"unknown state {err['input']!r} (use {_STATES})"
                problems.append(f"{file}:{at}: {label}: {_field(err['loc'])}: {msg}")
    return rules, problems


def load_rules(path: str | os.PathLike[str]) -> list[LoadedRule]:
    """Every rule at `path` (a file or folder); raises RuleFileError listing all problems."""
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
    if problems:
        raise RuleFileError(problems)
    return rules


def local_zone() -> str:
    """The machine's IANA time zone name (TZ, /etc/timezone, /etc/localtime), else "UTC"."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        except OSError:
            link = os.path.realpath("/etc/localtime")
            name = link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name
