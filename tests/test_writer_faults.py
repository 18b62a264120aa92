"""The writer under faults: a record the database refuses, a database that goes away, a stop
that cannot flush. Real SQLite files, the machine's PostgreSQL, and a private PostgreSQL server
that is really stopped and started."""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator

import pytest

from plugwatch.model import Reading, RunSummary, State, Transition
from plugwatch.service import writer as writer_module
from plugwatch.service.writer import Writer
from plugwatch.store import Store, open_store
from plugwatch.testing import emulated_config, privatepg

T0 = 1_767_225_600.0
PLUGS = ("washer", "dryer", "tv")


def alert(key: str, title: str = "Washer done") -> dict[str, object]:
    return {"dedupe_key": key, "rule": "done", "plug": "washer", "target": "phone",
            "title": title, "body": "it finished", "created_at": T0, "due_at": T0}


def open_with_plugs(url: str) -> Store:
    store = open_store(url)
    store.ensure_plugs(emulated_config({p: 9999 for p in PLUGS}, "sqlite://").plugs)
    return store


@pytest.fixture
def private_pg() -> Iterator[privatepg.PrivatePostgres]:
    """A PostgreSQL server of this test's own, to stop and start."""
    if not privatepg.available():
        import os

        reason = "PostgreSQL's initdb/pg_ctl are not installed"
        if os.environ.get("PLUGWATCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (PLUGWATCH_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip(reason)
    with privatepg.PrivatePostgres() as pg:
        yield pg


def test_a_refused_record_is_set_aside_and_everything_else_written(
    db_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLite refuses a NaN power (NOT NULL), PostgreSQL a NUL byte in text. The bad record alone
    goes to dead_letters, logged once; every other reading, event and alert of the batch is
    written, and the writer goes on writing."""
    store = open_with_plugs(db_url)
    sqlite = db_url.startswith("sqlite")
    try:
        writer = Writer(store, flush_s=0.05)
        writer.start()
        step = Transition("washer", T0 + 50, State.STANDBY, State.ON, "power", 1200.0)
        run = RunSummary("washer", T0 + 50, T0 + 90, 33.0, 2000.0)
        for i in range(100):
            for plug in PLUGS:
                writer.put((plug, Reading(T0 + i, 5.0 + i), (), (), None, None))
            if i == 50:
                poison = Reading(T0 + 50.5, math.nan) if sqlite else None
                bad_alert = alert("bad", "Washer\x00done")
                writer.put(("washer", poison, [step, run], [alert("good")] + (
                    [] if sqlite else [bad_alert]), (T0 + 50, {"n": 1}), None))
        caplog.set_level(logging.WARNING)
        assert writer.flush(20.0)
        writer.put(("tv", Reading(T0 + 500, 7.0), (), (), None, None))
        assert writer.close(10.0)
        for plug in PLUGS:
            assert len(store.readings(plug)) == 100 + (plug == "tv")
        assert [t.ts for t in store.transitions(plug="washer")] == [T0 + 50]
        assert [r.energy_wh for r in store.runs(plug="washer")] == [33.0]
        assert sorted(a["dedupe_key"] for a in store.alerts()) == ["good"]
        assert store.load_snapshots()["washer"][0] == T0 + 50
        [dead] = store.dead_letters()
        assert (dead["kind"], dead["plug"]) == (("reading", "washer") if sqlite
                                                 else ("alert", "washer"))
        assert ("NaN" if sqlite else "\\u0000") in dead["record"]
        assert writer.stats.set_aside == 1
        set_aside = [r for r in caplog.records if "set aside" in r.getMessage()]
        assert len(set_aside) == 1 and "\n" not in set_aside[0].getMessage()
    finally:
        store.close()


def test_an_outage_keeps_everything_and_logs_a_start_an_update_and_an_end(
    private_pg: privatepg.PrivatePostgres, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the database is stopped nothing is lost and the log gets one line at the start,
    one per OUTAGE_LOG_S (with counts) and one at the end: not one per retry."""
    monkeypatch.setattr(writer_module, "OUTAGE_LOG_S", 1.0)
    monkeypatch.setattr(writer_module, "RETRY_S", 0.1)
    store = open_with_plugs(private_pg.url)
    caplog.set_level(logging.WARNING, logger="plugwatch.service.writer")
    try:
        writer = Writer(store, flush_s=0.05)
        writer.start()
        writer.put(("tv", Reading(T0, 1.0), (), (), None, None))
        assert writer.flush(10.0)
        private_pg.stop()
        step = Transition("tv", T0 + 5, State.STANDBY, State.ON, "power", 90.0)
        for i in range(1, 400):
            writer.put(("tv", Reading(T0 + i, 90.0), [step] if i == 5 else (), [], None, None))
        time.sleep(2.6)
        assert writer.stats.failing and writer.queued == 399
        private_pg.start()
        assert writer.flush(20.0)
        assert writer.close(5.0)
        assert len(store.readings("tv")) == 400
        assert [t.ts for t in store.transitions(plug="tv")] == [T0 + 5]
    finally:
        store.close()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("database unavailable, keeping everything queued" in m for m in lines) == 1
    updates = [m for m in lines if m.startswith("database unavailable for")]
    assert 1 <= len(updates) <= 3 and "399 readings, 1 events" in updates[0]
    assert sum("database available again" in m for m in lines) == 1
    assert writer.stats.failures >= 10  # it retried often, yet logged a handful of lines


def test_past_the_cap_readings_are_thinned_and_events_kept(
    private_pg: privatepg.PrivatePostgres, caplog: pytest.LogCaptureFixture,
) -> None:
    """With room for 1,000 queued readings, 3 plugs x 2,000 readings during an outage: the queue
    stays under the cap, every plug keeps an even spread of readings over the whole outage,
    and all 30 transitions and alerts are written once the database is back."""
    store = open_with_plugs(private_pg.url)
    caplog.set_level(logging.WARNING, logger="plugwatch.service.writer")
    try:
        writer = Writer(store, flush_s=0.05, max_readings=1000)
        writer.start()
        private_pg.stop()
        for i in range(2000):
            for k, plug in enumerate(PLUGS):
                events, alerts = (), []
                if i % 200 == 0 and k == 0:
                    to = State.ON if i % 400 else State.OFF
                    events = [Transition(plug, T0 + i, State.STANDBY, to, "power", 5.0)]
                    alerts = [alert(f"a{i}")]
                writer.put((plug, Reading(T0 + i, 10.0), events, alerts, None, None))
            if i % 500 == 0:
                time.sleep(0.1)  # let the writer drain its inbox now and then
        time.sleep(1.5)
        assert writer._backlog.readings <= 1000
        private_pg.start()
        assert writer.flush(30.0)
        assert writer.close(5.0)
        for plug in PLUGS:
            stored = [r.ts for r in store.readings(plug)]
            assert 200 <= len(stored) <= 1000 and stored[-1] >= T0 + 1999 - 16
            gaps = [b - a for a, b in itertools.pairwise(stored)]
            assert max(gaps) <= 16  # thinned evenly over the whole outage, not cut off
        assert len(store.transitions(plug="washer")) == 10
        assert len(store.alerts()) == 10
    finally:
        store.close()
    thinning = [r for r in caplog.records if "thinning" in r.getMessage()]
    assert len(thinning) == 1 and writer.stats.thinned >= 5000


def test_a_stop_that_cannot_flush_says_what_is_left(private_pg: privatepg.PrivatePostgres) -> None:
    """The database stays away: close() gives up at its timeout and counts what was not written."""
    store = open_with_plugs(private_pg.url)
    try:
        writer = Writer(store, flush_s=0.05)
        writer.start()
        private_pg.stop()
        step = Transition("tv", T0 + 5, State.STANDBY, State.ON, "power", 90.0)
        for i in range(30):
            writer.put(("tv", Reading(T0 + i, 90.0), [step] if i == 5 else (), [], None, None))
        started = time.monotonic()
        assert not writer.close(2.0)
        assert time.monotonic() - started < 3.0
        assert writer.unwritten == {"readings": 30, "events": 1, "alerts": 0, "snapshots": 0}
    finally:
        store.close()


def test_an_outage_holds_one_rules_state_and_writes_it_with_its_events(
    private_pg: privatepg.PrivatePostgres, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every item with events carries the rules engine's whole state (here 100 KB). During an
    outage only the newest is held (memory stays flat however many events queue), yet no
    transaction ever holds events without the newest state queued with or after them: a kill
    between two batches cannot leave the rules state behind the stored events."""
    store = open_with_plugs(private_pg.url)
    batches: list[tuple[int, str | None]] = []  # (transitions, rules state written) per batch
    write_batch = store.write_batch

    def spy(batch):  # type: ignore[no-untyped-def]
        write_batch(batch)
        batches.append((len(batch.transitions), batch.kv.get("rules_engine", {}).get("n")))

    monkeypatch.setattr(store, "write_batch", spy)
    try:
        writer = Writer(store, flush_s=0.05, max_items=10)
        writer.start()
        private_pg.stop()
        for i in range(300):
            to = State.ON if i % 2 else State.STANDBY
            step = Transition("washer", T0 + i, State.OFF, to, "power", 5.0)
            state = {"rules_engine": {"n": i, "bulk": "x" * 100_000}}
            writer.put(("washer", Reading(T0 + i, 5.0), [step], [alert(f"a{i}")],
                        (T0 + i, {"i": i}), state))
        time.sleep(1.5)
        held = [e[5] for e in writer._backlog.entries if type(e) is tuple and e[5]]
        assert len(held) == 1 and held[0]["rules_engine"]["n"] == 299  # one 100 KB, not 300
        private_pg.start()
        assert writer.flush(30.0)
        assert writer.close(5.0)
        assert store.load_kv("rules_engine")["rules_engine"]["n"] == 299
        assert len(store.transitions(plug="washer")) == 300 and len(store.alerts()) == 300
    finally:
        store.close()
    written = [b for b in batches if b[0]]
    assert written and all(n == 299 for _, n in written)  # every batch with events: the newest
