"""Files that ship with plugwatch: the migrations, the example rules and the example config.

In the repository they live where people look for them (alembic/, rules/); a built wheel carries
them inside the package (plugwatch/migrations, plugwatch/example_rules; see setup.py). These
functions find them either way, never through the current working directory.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _shipped(in_wheel: str, in_checkout: str) -> Path:
    installed = PACKAGE / in_wheel
    return installed if installed.is_dir() else PACKAGE.parent / in_checkout


def migrations_dir() -> Path:
    """The Alembic script folder (env.py, versions/)."""
    return _shipped("migrations", "alembic")


def example_rules_dir() -> Path:
    """The folder of example rule files."""
    return _shipped("example_rules", "rules")


def example_config() -> Path:
    """The commented example plugwatch.yaml."""
    return PACKAGE / "config" / "example.yaml"
