"""The migrations match the models (`alembic check`) and run both ways on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from plugwatch.cli import main
from plugwatch.errors import StoreError
from plugwatch.store import open_store, tables
from plugwatch.store.engine import (
    alembic_config,
    current_revision,
    head_revision,
    known_revisions,
    make_engine,
)


def test_alembic_check_finds_models_and_migrations_in_step(db_url: str) -> None:
    """After `upgrade head` autogenerate sees no difference (raises if it does)."""
    store = open_store(db_url)
    try:
        command.check(alembic_config(store.engine))
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_downgrade_to_nothing_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(config, "head")
        assert set(tables.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`db current` says an upgrade is needed (exit 1) until `db upgrade` has run."""
    config = tmp_path / "plugwatch.yaml"
    config.write_text("database: sqlite:///data.db\n", encoding="utf-8")
    assert main(["db", "current", "--config", str(config)]) == 1
    assert "no database file yet (run `plugwatch db upgrade`)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert capsys.readouterr().out == (
        f"sqlite:///{tmp_path}/data.db: schema at revision {head_revision()} (up to date)\n")
    assert main(["db", "current", "--config", str(config)]) == 0
    assert (tmp_path / "data.db").exists()


def test_db_upgrade_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--database", "sqlite:////no/such/folder/x.db"]) == 1
    assert capsys.readouterr().err == (
        "plugwatch: error: cannot create SQLite database /no/such/folder/x.db: folder "
        "/no/such/folder does not exist (create it or change `database:`)\n")


def test_a_database_from_a_newer_plugwatch_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plugwatch.db"
    open_store(url).close()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert str(info.value) == (
        f"the schema of {url} is at revision 9999, which this plugwatch does not know (newest "
        f"known: {head_revision()}): the database was upgraded by a newer plugwatch; upgrade "
        "plugwatch to use it")


def test_a_failed_upgrade_does_not_blame_a_newer_plugwatch(tmp_path: Path) -> None:
    """A known revision whose upgrade fails says what failed, without the "newer" hint."""
    url = f"sqlite:///{tmp_path}/plugwatch.db"
    engine = make_engine(url)
    with engine.begin() as conn:  # a table in the way of the first migration
        conn.execute(text("CREATE TABLE plugs (x INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "table plugs already exists" in str(info.value)
    assert "newer" not in str(info.value)


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    """known_revisions() reads the version files without Alembic; it must agree with Alembic."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == scripts.get_current_head()
    assert set(known_revisions()) == {rev.revision for rev in scripts.walk_revisions()}
