"""Commands: `rules check [PATH]` (validate rule files against the config), `notify test TARGET`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def _config(path: str | None) -> Any | None:
    """The config at `path`; the default file when present; None when there is none."""
    from plugwatch.config import load_config

    if path is None:
        if not Path(DEFAULT_CONFIG).exists():
            return None
        path = DEFAULT_CONFIG
    return load_config(path)


def plug_tags(config: Config) -> dict[str, list[str]]:
    """Plug name -> tags, from a Config."""
    return {plug.name: list(plug.tags or []) for plug in config.plugs}


def cmd_rules_check(args: argparse.Namespace) -> int:
    """`plugwatch rules check`: one line per problem (file:line, rule, field, fix); exit 1."""
    from plugwatch.rules import RuleFileError, check_rules, load_rules, rule_warnings
    from plugwatch.rules.loading import rule_files

    config = _config(args.config)
    path = args.path or (getattr(config, "rules_path", None) if config else None) or "rules"
    try:
        loaded = load_rules(path)
        problems = check_rules(
            loaded, plug_tags(config) if config else None,
            list(config.targets) if config else None,
        )
    except RuleFileError as exc:
        problems = exc.problems
    else:
        for line in rule_warnings(loaded, plug_tags(config)) if config else []:
            print(f"warning: {line}", file=sys.stderr)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    files = len(rule_files(path))
    if config is not None:
        against = f"against {args.config or DEFAULT_CONFIG}"
    else:
        against = f"(no {DEFAULT_CONFIG} here: plug and target names not checked; use --config)"
    print(f"{len(loaded)} rule(s) in {files} file(s) OK {against}")
    return 0


def cmd_notify_test(args: argparse.Namespace) -> int:
    """`plugwatch notify test TARGET`: send one test message now."""
    from plugwatch.config import load_config
    from plugwatch.notify import AppriseNotifier
    from plugwatch.redact import redact

    config = load_config(args.config)
    notifier = AppriseNotifier({name: str(url) for name, url in config.targets.items()})
    notifier.send_sync(args.target, "plugwatch test", "A test message from plugwatch: it works.")
    print(f"sent a test message to {args.target!r} ({redact(str(config.targets[args.target]))})")
    return 0
