"""Commands: `rules check [PATH]` (validate rule files against the config), `notify test TARGET`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugwatch.errors import ConfigError

if TYPE_CHECKING:
    from plugwatch.config import Config


DEFAULT_CONFIG = "plugwatch.yaml"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `rules check` and `notify test` to the `plugwatch` parser."""
    rules = sub.add_parser("rules", help="alert rules (YAML)")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    check = rules_sub.add_parser("check", help="validate rule files against the config")
    check.add_argument("path", nargs="?", help="rule file or folder (default: `rules:` in config)")
    check.add_argument("--config", help=f"config file (default: {DEFAULT_CONFIG} when present)")
    check.set_defaults(func=cmd_rules_check)

    notify = sub.add_parser("notify", help="notification targets")
    notify_sub = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    test = notify_sub.add_parser("test", help="send a test message to a target from the config")
    test.add_argument("target", help="a target name from `targets:` in the config")
    test.add_argument("--config", default=DEFAULT_CONFIG, help="config file (plugwatch.yaml)")
    test.set_defaults(func=cmd_notify_test)


def _config(path: str | None) -> tuple[Config | None, list[str]]:
    """(the config at `path` or the default file when present, the config's own problems).

    An unset ${NAME} in `targets:` does not keep the rules from being checked (they need only
    the targets' names): it is one of the problems. A config with other problems is None.
    """
    from plugwatch.config import load_config

    if path is None:
        if not Path(DEFAULT_CONFIG).exists():
            return None, []
        path = DEFAULT_CONFIG
    try:
        return load_config(path), []
    except ConfigError as exc:
        problems = str(exc).splitlines()
    try:
        return load_config(path, need_targets=False), problems
    except ConfigError:
        return None, problems


def _file_line(problem: str) -> tuple[str, int]:
    """("file", line) of a "file:line: ..." problem, to list problems in file order."""
    match = re.match(r"^(.*?):(\d+): ", problem)
    return (match.group(1), int(match.group(2))) if match else (problem, 0)


def plug_tags(config: Config) -> dict[str, list[str]]:
    """Plug name -> tags, from a Config."""
    return {plug.name: list(plug.tags or []) for plug in config.plugs}


def cmd_rules_check(args: argparse.Namespace) -> int:
    """`plugwatch rules check`: one line per problem (file:line, rule, field, fix); exit 1.

    The config's own problems are listed too, and do not stop the rules from being checked.
    """
    from plugwatch.formatting import plural
    from plugwatch.rules import RuleFileError, check_rules, rule_warnings
    from plugwatch.rules.loading import load_rules_and_problems, rule_files

    config, problems = _config(args.config)
    path = args.path or (getattr(config, "rules_path", None) if config else None) or "rules"
    try:  # the valid rules are checked too, however many others have problems
        loaded, found = load_rules_and_problems(path)
    except RuleFileError as exc:  # no such file or folder
        loaded, found = [], exc.problems
    found += check_rules(loaded, plug_tags(config) if config else None,
                         list(config.targets) if config else None)
    for line in rule_warnings(loaded, plug_tags(config)) if config else []:
        print(f"warning: {line}", file=sys.stderr)
    problems += sorted(found, key=_file_line)
    for line in problems:
        print(line, file=sys.stderr)
    config_name = args.config or DEFAULT_CONFIG
    unchecked = "" if config else f" (plug and target names not checked: {config_name} is invalid)"
    if problems:
        where = f"{path}" if config or not Path(config_name).exists() else f"{config_name}, {path}"
        print(f"{plural(len(problems), 'problem')} in {where}{unchecked}", file=sys.stderr)
        return 1
    files = len(rule_files(path))
    if config is not None:
        against = f"against {config_name}"
    else:
        against = f"(no {DEFAULT_CONFIG} here: plug and target names not checked; use --config)"
    print(f"{plural(len(loaded), 'rule')} in {plural(files, 'file')} OK {against}")
    return 0


def cmd_notify_test(args: argparse.Namespace) -> int:
    """`plugwatch notify test TARGET`: send one test message now."""
    from plugwatch.config import load_config
    from plugwatch.notify.apprise_notifier import AppriseNotifier
    from plugwatch.redact import redact

    config = load_config(args.config)
    notifier = AppriseNotifier({name: str(url) for name, url in config.targets.items()})
    notifier.send_sync(args.target, "plugwatch test", "A test message from plugwatch: it works.")
    print(f"sent a test message to {args.target!r} ({redact(str(config.targets[args.target]))})")
    return 0
