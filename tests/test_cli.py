"""The command line as a user meets it."""

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from plugwatch import __version__
from plugwatch.cli import build_parser, main


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
    assert loaded.isdisjoint({"numpy", "sqlalchemy", "apprise", "matplotlib", "asyncio"})


def test_status_and_history_import_no_numpy_matplotlib_or_alembic(tmp_path: Path) -> None:
    """Everyday read-only commands on a current database stay light (bench/bench_startup.py)."""
    (tmp_path / "plugwatch.yaml").write_text(
        "database: sqlite:///pw.db\nplugs:\n  - {name: washer, host: 127.0.0.1:1}\n",
        encoding="utf-8")
    assert main(["db", "upgrade", "--config", str(tmp_path / "plugwatch.yaml")]) == 0
    for command in ("status", "history"):
        code = ("import sys; from plugwatch.cli import main; main([" + repr(command) + "]); "
                "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)")
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, check=True)
        loaded = set(done.stderr.split())
        assert "sqlalchemy" in loaded, command
        assert loaded.isdisjoint({"numpy", "matplotlib", "alembic", "apprise", "jinja2"}), command


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"plugwatch {__version__}\n"


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{parser.prog} {name}".removeprefix("plugwatch "), sub))
                found += _commands(sub)
    return found


def test_every_sub_command_has_a_description_in_its_help() -> None:
    commands = _commands(build_parser())
    assert {"run", "status", "init", "db upgrade", "rules check"} <= {name for name, _ in commands}
    for name, parser in commands:
        assert parser.description and parser.description.endswith("."), name
        assert parser.description in parser.format_help(), name


@pytest.mark.parametrize(("argv", "level"), [
    (["db", "current"], logging.WARNING),
    (["-v", "db", "current"], logging.INFO),
    (["db", "current", "-v"], logging.INFO),  # -v after the sub-command, as docs/service.md says
    (["db", "-v", "current", "-v"], logging.DEBUG),
    (["-v", "db", "current", "-v"], logging.DEBUG),
    (["db", "current", "-q"], logging.ERROR),
])
def test_verbosity_flags_work_before_and_after_the_sub_command(
    argv: list[str], level: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plugwatch.yaml").write_text("database: sqlite:///pw.db\n", encoding="utf-8")
    seen: list[int] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.append(kw["level"]))
    main(argv)
    assert seen == [level]


def test_init_writes_a_config_and_rules_that_check_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "new"
    assert main(["init", str(folder)]) == 0
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert written == ["plugwatch.yaml", "rules/freezer-duty.yaml", "rules/left-on.yaml",
                       "rules/power-cut.yaml", "rules/sump-pump.yaml", "rules/unreachable.yaml",
                       "rules/washer-done.yaml"]
    assert "wrote" in capsys.readouterr().out
    assert main(["rules", "check", "--config", str(folder / "plugwatch.yaml")]) == 0
    capsys.readouterr()
    from plugwatch.config import load_config

    written_config = load_config(folder / "plugwatch.yaml")  # a plug of every polled family
    assert {p.driver for p in written_config.plugs} == {"kasa", "shelly", "tasmota", "kasa-klap"}
    assert "#   driver: tapo" in (folder / "plugwatch.yaml").read_text(encoding="utf-8")
    (folder / "rules" / "left-on.yaml").write_text("# mine\n", encoding="utf-8")
    (folder / "plugwatch.yaml").unlink()
    assert main(["init", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("plugwatch: error: ") and err.count("\n") == 1
    assert "left-on.yaml" in err and "already exist" in err and "nothing written" in err
    assert not (folder / "plugwatch.yaml").exists()  # nothing written, not even the missing one
    assert (folder / "rules" / "left-on.yaml").read_text(encoding="utf-8") == "# mine\n"
