"""The packages a user installs (sdist and wheel) work outside the repository.

Builds the sdist and, from it, the wheel (as `python -m build` does), checks both carry the
migrations, the example rules and the example config, installs the wheel into a fresh virtual
environment and runs `init`, `db upgrade`, a short `demo` and `status` from an empty folder.
Slow (a build and an install from the package index or pip's cache): about a minute.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ["migrations/env.py", "migrations/script.py.mako", "migrations/versions/0001_initial.py",
           "example_rules/washer-done.yaml", "config/example.yaml"]


def run(*argv: str | Path, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel), the wheel built from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, REPO, cwd=out)
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return sdist, wheel


def test_the_sdist_carries_what_the_wheel_is_built_from(built: tuple[Path, Path]) -> None:
    with tarfile.open(built[0]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"setup.py", "alembic/env.py", "alembic/versions/0001_initial.py",
            "rules/washer-done.yaml", "plugwatch/config/example.yaml"} <= names


def test_the_wheel_carries_migrations_rules_and_example_config(built: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(built[1]) as whl:
        names = set(whl.namelist())
    assert {f"plugwatch/{path}" for path in SHIPPED} <= names
    assert not any(name.startswith(("tests/", "bench/", "alembic/")) for name in names)


def test_an_installed_wheel_runs_init_upgrade_and_demo_from_an_empty_folder(
    built: tuple[Path, Path], tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "pip", "install", "-q", built[1], cwd=tmp_path)
    plugwatch = venv / "bin" / "plugwatch"
    home = tmp_path / "home"
    home.mkdir()
    assert "wrote plugwatch.yaml" in run(plugwatch, "init", cwd=home)
    assert sorted(p.name for p in (home / "rules").iterdir()) == [
        "freezer-duty.yaml", "left-on.yaml", "power-cut.yaml", "sump-pump.yaml",
        "unreachable.yaml", "washer-done.yaml"]
    assert "OK against plugwatch.yaml" in run(plugwatch, "rules", "check", cwd=home)
    assert run(plugwatch, "db", "upgrade", cwd=home).endswith("(up to date)\n")
    demo = run(plugwatch, "demo", "--speed", "400", "--db", "demo.db", cwd=home)
    assert "washer  run finished" in demo
    status = run(plugwatch, "status", "--database", "sqlite:///demo.db", cwd=home)
    assert {line.split()[0] for line in status.splitlines()} >= {"washer", "tv", "fridge"}
