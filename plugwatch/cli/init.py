"""Command: `plugwatch init [DIR]` writes a commented plugwatch.yaml and example rules to edit.

The files come from the installed package (plugwatch.resources), so a pipx install needs no clone
of the repository. Nothing is ever overwritten: when any of the files exists, nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from plugwatch.errors import ConfigError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `init` to the `plugwatch` parser."""
    p = sub.add_parser("init", help="write a commented plugwatch.yaml and example rules/ to edit")
    p.add_argument("dir", nargs="?", default=".", type=Path,
                   help="folder to write into (created if missing; default: the current folder)")
    p.set_defaults(func=init_command)


def init_command(args: argparse.Namespace) -> int:
    """Copy the packaged examples into DIR, refusing to overwrite anything."""
    from plugwatch.resources import example_config, example_rules_dir

    folder: Path = args.dir
    files = {folder / "plugwatch.yaml": example_config()}
    for src in sorted(example_rules_dir().glob("*.yaml")):
        files[folder / "rules" / src.name] = src
    present = [str(path) for path in files if path.exists()]
    if present:
        raise ConfigError(f"{', '.join(present)} already exist{'s' if len(present) == 1 else ''}; "
                          "nothing written (move it away or choose another folder)")
    try:
        for target, source in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from None
    for target in files:
        print(f"wrote {target}")
    config = folder / "plugwatch.yaml"
    print(f"next: edit the plugs and targets in {config}, then `plugwatch rules check --config "
          f"{config}` and `plugwatch run --config {config}`")
    return 0
