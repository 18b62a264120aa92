"""The real service and `plugwatch run` against the defects of issue 13: failures explained once,
a stop that cannot flush, one instance per database, a config without plugs."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plugwatch.emulator.faults import FaultyPlug
from plugwatch.errors import StoreError
from plugwatch.model import State
from plugwatch.store import open_store
from plugwatch.store.lock import lock_instance
from plugwatch.testing import emulated_config, running_service
from tests.helpers import wait_for
from tests.test_service import FAST, unique
from tests.test_writer_faults import private_pg  # noqa: F401  (a fixture)

EXPLAINED = {
    "garbage": "does not decrypt to JSON",
    "lying_length": "",  # the plug closes or times out mid-frame: the driver says which
    "wrong_shape": "answer has no 'system' object",
    "hang": "timeout",
}


async def test_each_failure_is_explained_once_when_it_changes(
    db_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Plugs answering garbage, a lying length, the wrong shape, or hanging: each logs its first
    failure (with the reason), its move to unreachable and its recovery, one line each however
    many reads fail; the reason is stored for `plugwatch status`."""
    faulty = {fault: FaultyPlug(power_w=50.0, fault=fault) for fault in EXPLAINED}
    names = {fault: unique(fault) for fault in EXPLAINED}
    ports = {names[f]: await plug.start() for f, plug in faulty.items()}
    config = emulated_config(ports, db_url, interval_s=0.1, timeout_s=0.3, detector=FAST)
    caplog.set_level(logging.WARNING, logger="plugwatch.plugs")
    try:
        async with running_service(config) as service:
            def all_are(state: State) -> bool:
                return all(service.detectors[n].state == state for n in names.values())

            await wait_for(lambda: all_are(State.UNREACHABLE), 10.0)
            failed = service.sampler.stats.failures
            await wait_for(lambda: service.sampler.stats.failures >= failed + 20, 10.0)
            for plug in faulty.values():
                plug.fault = None
            await wait_for(lambda: all_are(State.ON), 10.0)
    finally:
        for plug in faulty.values():
            await plug.stop()
    lines = [r.getMessage() for r in caplog.records]
    for fault, name in names.items():
        mine = [line for line in lines if f"plug {name}" in line]
        assert len(mine) == 3, mine  # first failure, unreachable, answers again
        assert "read failed: " in mine[0] and EXPLAINED[fault] in mine[0]
        assert "is unreachable after 5 failed reads" in mine[1]
        assert "answers again after" in mine[2]
    store = open_store(db_url)
    try:
        rows = {row["plug"]: row for row in store.status()}
    finally:
        store.close()
    for fault, name in names.items():
        assert EXPLAINED[fault] in rows[name]["last_failure"]
        assert rows[name]["last_failure_at"] is not None


async def test_a_stop_while_the_database_is_away_fails_and_counts(
    private_pg, tmp_path: Path,  # noqa: F811
) -> None:
    """SIGTERM-like stop with PostgreSQL down: the service keeps retrying for its flush timeout,
    then stops with a StoreError (exit status 1 from `plugwatch run`) naming what is left."""
    plug = FaultyPlug(power_w=50.0)
    config = emulated_config({"tv": await plug.start()}, private_pg.url, interval_s=0.05,
                             detector=FAST)
    try:
        with pytest.raises(StoreError) as err:
            async with running_service(config, flush_timeout_s=1.5) as service:
                await wait_for(lambda: service.writer.stats.readings >= 5, 10.0)
                private_pg.stop()
                await wait_for(lambda: service.writer.stats.failing, 10.0)
                reads = plug.answers
                await wait_for(lambda: plug.answers >= reads + 10, 10.0)
    finally:
        await plug.stop()
    message = str(err.value)
    assert message.startswith("stopped with ") and " readings, " in message
    assert "not written to postgresql+psycopg://" in message and "\n" not in message
    assert int(message.split()[2].replace(",", "")) >= 10


class Running:
    """`plugwatch run` in a child process; its stdout lines are collected as they come."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plugwatch", "run", "--config", str(config), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_sampling(self, plugs: int, timeout: float = 30.0) -> None:
        """Until `plugs` plugs were seen unreachable: sampling (and its signal handlers) run."""
        deadline = time.monotonic() + timeout
        while sum("unreachable" in line for line in self.lines) < plugs:
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, f"no sampling seen: {self.lines}"
            time.sleep(0.1)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then (exit status, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        self._reader.join(5)
        return self.proc.returncode, err


def held(url: str) -> bool:
    """True while some instance holds the lock of `url`'s database."""
    store = open_store(url)
    try:
        lock = lock_instance(store, wait_s=0)
    except StoreError:
        return True
    finally:
        store.close()
    lock.release()
    return False


def write_config(folder: Path, database: str) -> Path:
    path = folder / "plugwatch.yaml"
    path.write_text(f"database: {database}\ndefaults: {{interval: 1s, timeout: 0.3s}}\n"
                    "plugs:\n  - {name: tv, host: 127.0.0.1:9}\n"
                    "  - {name: lamp, host: 127.0.0.1:9}\n")
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_run_on_the_same_database_exits_naming_the_first(
    db_url: str, tmp_path: Path, workers: int,
) -> None:
    """SQLite file or PostgreSQL schema: the second `run` exits 1 with one line naming the first
    (its pid); `--workers 2` children run under their parent's lock."""
    config = write_config(tmp_path, db_url)
    first = Running(config, "--workers", str(workers))
    try:
        first.wait_sampling(2)
        assert held(db_url)
        second = subprocess.run(
            [sys.executable, "-m", "plugwatch", "run", "--config", str(config)],
            capture_output=True, text=True, timeout=60)
        err = second.stderr
        assert second.returncode == 1
        assert err.startswith("plugwatch: error: ") and len(err.splitlines()) == 1, err
        assert "is in use by plugwatch run pid " in err
        assert str(first.proc.pid) in err
        assert first.proc.poll() is None  # the first goes on
    finally:
        status, err = first.stop()
    assert status == 0, err
    assert not held(db_url)  # released at exit


def test_other_postgresql_schemas_are_other_databases(postgres_url: str, tmp_path: Path) -> None:
    """Two instances on one PostgreSQL database but in different schemas both run."""
    from plugwatch.store.scratch import scratch_schema

    with scratch_schema(postgres_url) as one, scratch_schema(postgres_url) as two:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        runs = [Running(write_config(tmp_path / "a", one)),
                Running(write_config(tmp_path / "b", two))]
        try:
            for run in runs:
                run.wait_sampling(2)
            assert held(one) and held(two)
        finally:
            statuses = [run.stop() for run in runs]
        assert [status for status, _ in statuses] == [0, 0], statuses


@pytest.mark.parametrize("text", ["", "database: sqlite:///x.db\n", "plugs: []\n"])
def test_a_config_without_plugs_is_one_error_line(text: str, tmp_path: Path) -> None:
    config = tmp_path / "plugwatch.yaml"
    config.write_text(text)
    done = subprocess.run([sys.executable, "-m", "plugwatch", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr == (f"plugwatch: error: {config}: no plugs configured, so there is "
                           "nothing to watch: add at least one under `plugs:` (see "
                           "docs/configuration.md)\n")


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugwatch", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_a_target_apprise_refuses_is_one_line_at_load_without_the_secret(tmp_path: Path) -> None:
    """`mailtos://` that apprise cannot work out a sender for: refused when the config loads
    (it used to pass and be retried for ever), naming file:line and never the password."""
    config = tmp_path / "plugwatch.yaml"
    config.write_text("database: sqlite:///x.db\nplugs:\n  - {name: tv, host: 127.0.0.1:9}\n"
                      "targets:\n  phone: ntfy://ntfy.sh/my-topic\n"
                      "  mail: mailtos://smtp.example.com?to=me@example.com&pass=s3cr3tpassw0rd\n")
    done = run_once(config)
    assert done.returncode == 1
    assert done.stderr == (f"plugwatch: error: {config}:6: targets.mail: apprise refuses this "
                           "URL: Invalid ~From~ email specified\n")
    assert not (tmp_path / "x.db").exists()  # refused before anything started


def test_an_unknown_template_filter_is_one_line_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "- name: done\n  plugs: [tv]\n  when: {from: 'on', to: standby}\n  notify: [phone]\n"
        "  title: '{{ plug | nosuch }} finished'\n")
    config = tmp_path / "plugwatch.yaml"
    config.write_text("database: sqlite:///x.db\nplugs:\n  - {name: tv, host: 127.0.0.1:9}\n"
                      "targets:\n  phone: ntfy://ntfy.sh/my-topic\nrules: rules.yaml\n")
    done = run_once(config)
    assert done.returncode == 1
    assert done.stderr == (f"plugwatch: error: {tmp_path}/rules.yaml:5: rule 'done': title: "
                           "template error: No filter named 'nosuch'. (see docs/rules.md, "
                           "Templates)\n")
