"""The command line as a user meets it."""

import subprocess
import sys


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "plugwatch", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: plugwatch" in out


def test_unknown_command_is_one_clear_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugwatch", "frobnicate"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_building_the_parser_imports_no_heavy_library() -> None:
    """`plugwatch --help` stays fast: numpy, SQLAlchemy, Apprise and matplotlib load in handlers."""
    code = (
        "import sys, plugwatch.cli as c; c.build_parser(); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(out.split())
    assert "plugwatch" in loaded
    assert loaded.isdisjoint({"numpy", "sqlalchemy", "apprise", "matplotlib"})
