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
from typing import Any

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


def cpu_and_rss(pid: int) -> tuple[float, int]:
    """(user + system CPU seconds, resident bytes) of a process, from /proc."""
    import os

    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return ((int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK"),
            pages * os.sysconf("SC_PAGE_SIZE"))


async def test_a_flooding_plug_costs_run_little_cpu_and_no_memory(tmp_path: Path) -> None:
    """`plugwatch run` polling a plug that floods bytes at every read, beside a normal plug:
    each read ends after one frame with the connection closed (the plug sees a new connection
    per read), the process spends a small part of a core and its memory does not grow (it used
    to append every chunk to a growing buffer: a third of a core); the normal plug keeps its
    readings and the flood is explained in one line."""
    import asyncio

    flood, normal = FaultyPlug(fault="flood"), FaultyPlug(power_w=60.0)
    ports = {"flood": await flood.start(), "tv": await normal.start()}
    config = tmp_path / "plugwatch.yaml"
    config.write_text(f"database: sqlite:///{tmp_path}/pw.db\n"
                      "defaults: {interval: 0.2s, timeout: 0.5s}\nplugs:\n" + "".join(
                          f"  - {{name: {n}, host: '127.0.0.1:{p}'}}\n" for n, p in ports.items()))
    proc = subprocess.Popen([sys.executable, "-m", "plugwatch", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while flood.connections < 5:
            assert proc.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        cpu0, rss0 = cpu_and_rss(proc.pid)
        connections, started = flood.connections, time.monotonic()
        await asyncio.sleep(6.0)
        cpu1, rss1 = cpu_and_rss(proc.pid)
        elapsed = time.monotonic() - started
        assert flood.connections - connections >= 10  # hung up on, read after read
        assert (cpu1 - cpu0) / elapsed < 0.15, (cpu1 - cpu0) / elapsed
        assert rss1 - rss0 < 4 * 1024 * 1024, (rss0, rss1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
        await flood.stop()
        await normal.stop()
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if "plug flood" in line]
    # its first failure, its move to unreachable, and once its random bytes may fail the other
    # way (not decrypting to JSON / decrypting to invalid JSON): never a line per read
    assert 2 <= len(lines) <= 3, err
    assert "bad answer from 127.0.0.1:" in lines[0] and "Traceback" not in err
    assert sum("is unreachable after" in line for line in lines) == 1, err
    assert sum("differently now" in line for line in lines) == len(lines) - 2, err
    store = open_store(f"sqlite:///{tmp_path}/pw.db")
    try:
        assert len(store.readings("tv")) >= 25 and store.readings("flood") == []
    finally:
        store.close()


class Lines:
    """A child's stdout or stderr, its lines collected as they come (by a thread)."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def join(self) -> None:
        self._thread.join(10)


async def test_run_through_a_database_outage_keeps_events_and_a_stop_in_one_exits_1(
    private_pg, tmp_path: Path,  # noqa: F811
) -> None:
    """`plugwatch run`, 20 plugs at 20 Hz and a rule, PostgreSQL stopped: the writer, the outbox
    and the alert timers each log one line when the outage starts and one when it ends, the
    thinning of the queue (max_queued_readings: 1000) one line, never a line per retry; the
    transition confirmed during the outage is written once the database is back.
    Stopped during a second outage, `run` exits 1 with one line counting what was not written."""
    import asyncio

    from plugwatch.emulator import EmulatedPlug, Emulator

    washer = [3.0]
    plugs = [EmulatedPlug("HS110v2", alias="washer", power=lambda _s: washer[0])]
    plugs += [EmulatedPlug("HS110v2", alias=f"p{i}", power=20.0) for i in range(19)]
    emulator = Emulator()
    ports = await emulator.start(plugs)
    names = ["washer"] + [f"p{i}" for i in range(19)]
    config = tmp_path / "plugwatch.yaml"
    (tmp_path / "rules.yaml").write_text(
        "- {name: done, plugs: [washer], when: {from: 'on', to: standby}, notify: hook}\n")
    config.write_text(
        f"database: {private_pg.url}\nmax_queued_readings: 1000\n"
        "targets: {hook: 'json://127.0.0.1:9/'}\nrules: rules.yaml\n"
        "defaults: {interval: 0.05s, timeout: 0.5s, window: 0.2s,\n"
        "           dwell: {on: 0.3s, standby: 0.3s, off: 0.3s}}\nplugs:\n" + "".join(
            f"  - {{name: {n}, host: '127.0.0.1:{p}'}}\n" for n, p in zip(names, ports,
                                                                            strict=True)))
    proc = subprocess.Popen([sys.executable, "-m", "plugwatch", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Lines(proc.stdout), Lines(proc.stderr)

    async def until(lines: Lines, text: str, n: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while lines.count(text) < n:
            assert proc.poll() is None, err.lines
            assert time.monotonic() < deadline, (text, out.lines, err.lines)
            await asyncio.sleep(0.05)

    try:
        await until(out, "washer           state standby")
        private_pg.stop()
        await until(err, "database unavailable, keeping everything queued")
        outage_started = time.time()
        washer[0] = 500.0
        await until(out, "standby -> on (power)")
        await until(err, "readings are waiting for the database: thinning them")
        await asyncio.sleep(2.0)
        private_pg.start()
        await until(err, "database available again")
        outage_ended = time.time()
        store = open_store(private_pg.url)
        try:
            steps = [(t.from_state, t.to_state) for t in store.transitions(plug="washer")]
            readings = [r.ts for r in store.readings("p3", since=outage_started)]
        finally:
            store.close()
        assert steps == [(State.UNKNOWN, State.STANDBY), (State.STANDBY, State.ON)]
        # thinned, yet spread over the whole outage
        assert 10 <= len(readings) < (outage_ended - outage_started) * 20
        assert readings[0] < outage_started + 2.0 and readings[-1] > outage_ended - 2.0
        private_pg.stop()
        await until(err, "database unavailable, keeping everything queued", 2)
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
        await emulator.stop()
    out.join()
    err.join()
    assert proc.returncode == 1, err.lines
    last = err.lines[-1]
    assert last.startswith("plugwatch: error: stopped with ") and " readings, " in last
    assert f"not written to postgresql+psycopg://postgres@127.0.0.1:{private_pg.port}/" in last
    assert err.count("thinning") == 1 and err.count("database available again") == 1
    assert err.count("outbox: readable again after") == 1
    assert err.count("alert timers: working again after") == 1
    # not a line per retry (each retries every second): start and end, start again, and the
    # timers' last tick at the stop
    assert err.count("outbox: ") <= 3 and err.count("alert timers: ") <= 4, err.lines
    assert len(err.lines) <= 15, err.lines


async def test_a_notifier_outage_is_three_lines_however_many_attempts_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """20 alerts to a real HTTP receiver that refuses connections for 10 minutes: every attempt
    is recorded, but the log gets one line at the first failure, one every 2 minutes while it
    lasts (with the count) and one when the target delivers again; every alert arrives once."""
    from plugwatch.notify.apprise_notifier import AppriseNotifier
    from plugwatch.notify.memory import MemoryOutbox
    from plugwatch.notify.sender import AlertSender
    from plugwatch.rules import Alert
    from tests.test_notify_receivers import HttpReceiver

    receiver = HttpReceiver()
    clock = [1000.0]
    outbox = MemoryOutbox()
    outbox.add([Alert(f"k{i}", "done", "washer", "phone", f"washer {i}", "Ran 1 h", 0.0,
                      0.0).as_row() for i in range(20)])
    sender = AlertSender(outbox, AppriseNotifier({"phone": receiver.url}),
                         clock=lambda: clock[0], base_s=5, cap_s=60)
    caplog.set_level(logging.DEBUG, logger="plugwatch.notify.sender")
    try:
        for _ in range(10):  # ten minutes, a look at the outbox every 60 s
            assert await sender.run_once() == 0
            clock[0] += 60
        assert sender.failed_attempts >= 100
        receiver.up()
        assert await sender.run_once() == 20
    finally:
        receiver.close()
    lines = [r.getMessage() for r in caplog.records
             if r.name == "plugwatch.notify.sender" and r.levelno >= logging.WARNING]
    assert len(lines) == 1 + 4 + 1, lines  # start, at 2, 4, 6, 8 min, delivers again
    assert lines[0].startswith("alert 1 to phone: attempt 1 failed: ")
    assert lines[1].startswith("target phone failing for 2 min: ")
    assert lines[-1].startswith("target phone delivers again after 10 min (")
    assert sorted(m["title"] for m in receiver.received) == sorted(f"washer {i}"
                                                                  for i in range(20))


async def test_a_delivery_whose_record_fails_is_recorded_later_never_sent_twice() -> None:
    """The database goes away between a delivery to a real HTTP receiver and its record: the
    sender keeps the delivery in mind and records it once the outbox answers again, instead of
    sending it a second time (the fault-injection bench saw that repeat at a crash-stop)."""
    from plugwatch.notify.apprise_notifier import AppriseNotifier
    from plugwatch.notify.memory import MemoryOutbox
    from plugwatch.notify.sender import AlertSender
    from plugwatch.rules import Alert
    from tests.test_notify_receivers import HttpReceiver

    class FlakyOutbox(MemoryOutbox):
        away = False

        def _check(self) -> None:
            if self.away:
                raise StoreError("reading the alert outbox from postgresql://db failed")

        def pending_alerts(self, now: float, limit: int) -> list[Any]:
            self._check()
            return super().pending_alerts(now, limit)

        def record_attempt(self, alert_id: int, ok: bool, error: str | None, now: float,
                           next_due: float | None) -> None:
            self._check()
            super().record_attempt(alert_id, ok, error, now, next_due)

    receiver = HttpReceiver()
    receiver.up()
    outbox = FlakyOutbox()
    outbox.add([Alert("k1", "done", "washer", "phone", "washer finished", "Ran 1 h", 0.0,
                      0.0).as_row()])
    notifier = AppriseNotifier({"phone": receiver.url})
    send = notifier.send

    async def send_then_lose_the_database(*args: Any, **kwargs: Any) -> None:
        await send(*args, **kwargs)
        outbox.away = True  # gone right after the receiver answered

    notifier.send = send_then_lose_the_database  # type: ignore[method-assign]
    sender = AlertSender(outbox, notifier, clock=lambda: 1000.0)
    try:
        with pytest.raises(StoreError):
            await sender.run_once()
        with pytest.raises(StoreError):
            await sender.run_once()  # still away: nothing sent meanwhile
        outbox.away = False
        assert await sender.run_once() == 0  # recorded, not delivered again
        assert await sender.run_once() == 0
    finally:
        receiver.close()
    assert [m["title"] for m in receiver.received] == ["washer finished"]
    assert outbox.rows["k1"].status == "sent" and outbox.rows["k1"].attempts == 1


def test_a_plug_flipping_between_two_reasons_logs_each_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flooding plug's random bytes fail one of two ways at random (the bench saw a line per
    flip): each reason is logged once in a failing spell, then only counted."""
    from plugwatch.model import ReadFailure
    from plugwatch.service.failures import FailureLog

    failures = FailureLog()
    caplog.set_level(logging.WARNING, logger="plugwatch.plugs")
    for i in range(40):
        why = ("answer is not valid JSON ('utf-8' codec can't decode)" if i % 2 else
               f"answer does not decrypt to JSON (first bytes {i:02x})")
        failures.observe("flood", ReadFailure(1000.0 + i, f"bad answer from p: {why}",
                                              "bad_answer"),
                         State.UNREACHABLE if i >= 2 else State.UNKNOWN)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "read failed: " in lines[0] and "read failed differently now: " in lines[1]
    assert "is unreachable after 3 failed reads" in lines[2]
