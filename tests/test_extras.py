"""Optional parts: a command that needs a missing extra says in one line which one to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plugwatch.errors import MissingExtra
from plugwatch.extras import require

# Runs plugwatch with `module` made unimportable, as on an install without its extra.
HIDE = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hide())
from plugwatch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HIDE.format(module=module), *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_plot_without_matplotlib_names_the_plot_extra(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("".join(f"{i},{i % 50}\n" for i in range(100)), encoding="utf-8")
    done = run_without("matplotlib", "plot", str(trace), "-o", str(tmp_path / "x.png"),
                       cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "plugwatch: error: plugwatch plot needs the optional 'plot' part of plugwatch, which is "
        "not installed: pip install 'plugwatch[plot]' (or pipx inject plugwatch matplotlib)\n")
    assert not (tmp_path / "x.png").exists()


def test_postgresql_without_psycopg_names_the_postgres_extra(tmp_path: Path) -> None:
    done = run_without("psycopg", "db", "upgrade", "--database",
                       "postgresql://app:secret@db.example/plugwatch", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(
        "plugwatch: error: database postgresql+psycopg://app:***@db.example/plugwatch needs the "
        "optional 'postgres' part of plugwatch, which is not installed: pip install "
        "'plugwatch[postgres]'")
    assert "secret" not in done.stderr and done.stderr.count("\n") == 1


def test_sqlite_service_commands_need_no_extra(tmp_path: Path) -> None:
    """The core on SQLite runs with matplotlib, psycopg and python-kasa all absent."""
    (tmp_path / "plugwatch.yaml").write_text(
        "database: sqlite:///pw.db\nplugs:\n  - {name: washer, host: 127.0.0.1:1}\n",
        encoding="utf-8")
    hide_all = HIDE.replace("== {module!r}", "in ('matplotlib', 'psycopg', 'kasa')")
    done = subprocess.run([sys.executable, "-c", hide_all, "status"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("washer")


def test_a_broken_installed_module_is_not_blamed_on_a_missing_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An ImportError from inside an installed module is shown as it is."""
    with pytest.raises(MissingExtra, match=r"pip install 'plugwatch\[plot\]'"):
        require("no_such_module_xyz", "plot", "x")
    (tmp_path / "broken_extra_mod.py").write_text("import no_such_inner\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="no_such_inner"):
        require("broken_extra_mod", "plot", "x")
