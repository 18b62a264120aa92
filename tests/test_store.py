"""The Store contract, on SQLite (a temp file) and on the machine's PostgreSQL (fresh schema)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import text

from plugwatch.config import config_from_dict
from plugwatch.errors import StoreError
from plugwatch.model import Reading, RunSummary, State, Transition
from plugwatch.store import Batch, Store, open_store

T0 = 1_763_900_000.123456  # sub-second epoch times must round-trip exactly (idempotency)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    store.ensure_plugs(config_from_dict({"plugs": [
        {"name": "washer", "host": "10.0.0.4", "tags": ["laundry"]},
        {"name": "tv", "host": "10.0.0.5:9999", "outlet": 1},
    ]}).plugs)
    yield store
    store.close()


def transition(plug: str, dt: float, a: State, b: State, power: float | None = 50.0) -> Transition:
    return Transition(plug, T0 + dt, a, b, "power", power)


def alert(key: str, due: float, **extra: object) -> dict[str, object]:
    return {"dedupe_key": key, "rule": "washer-done", "plug": "washer", "target": "phone",
            "title": "Washer done", "body": "after 1 h", "created_at": T0, "due_at": T0 + due,
            **extra}


def full_batch() -> Batch:
    return Batch(
        readings=[("washer", Reading(T0 + i, 100.0 + i, True, 0.5 + i / 1000)) for i in range(5)]
        + [("tv", Reading(T0 + 2, 40.0, None, None))],
        transitions=[transition("washer", 0, State.OFF, State.ON),
                     transition("washer", 4, State.ON, State.STANDBY, 2.0)],
        runs=[RunSummary("washer", T0, T0 + 4, 12.5, 104.0)],
        snapshots={"washer": (T0 + 4, {"state": "standby", "since": T0 + 4})},
        alerts=[alert("a1", 0)],
        kv={"rules/washer-done": {"n": 1}},
    )


def test_write_batch_twice_stores_everything_once(store: Store) -> None:
    """Re-writing a batch (a restart re-feeding readings) duplicates nothing."""
    store.write_batch(full_batch())
    store.write_batch(full_batch())
    assert [t.to_state for t in store.transitions()] == [State.ON, State.STANDBY]
    assert store.transitions()[0] == transition("washer", 0, State.OFF, State.ON)
    assert store.runs() == [RunSummary("washer", T0, T0 + 4, 12.5, 104.0)]
    assert len(store.alerts()) == 1 and len(store.readings("washer")) == 5
    assert store.readings("washer")[0] == Reading(T0, 100.0, True, 0.5)


def test_a_failing_batch_writes_nothing(store: Store) -> None:
    """One transaction: an invalid alert rolls back the transitions of the same batch."""
    batch = full_batch()
    batch.alerts = [{"dedupe_key": "broken"}]
    with pytest.raises(StoreError, match="alert 'broken' lacks rule, plug, target"):
        store.write_batch(batch)
    assert store.transitions() == [] and store.readings("washer") == []


def test_queries_filter_by_plug_and_time(store: Store) -> None:
    store.write_batch(full_batch())
    store.write_batch(Batch(transitions=[transition("tv", 2, State.OFF, State.ON)]))
    assert [t.plug for t in store.transitions()] == ["washer", "tv", "washer"]
    assert [t.plug for t in store.transitions(plug="tv")] == ["tv"]
    assert [t.ts - T0 for t in store.transitions(since=T0 + 1)] == [2, 4]
    assert store.runs(since=T0 + 5) == [] and len(store.runs(plug="washer")) == 1
    assert [r.ts - T0 for r in store.readings("washer", since=T0 + 1, until=T0 + 3)] == [1, 2, 3]
    ts, power = store.reading_arrays("washer", since=T0 + 3)
    assert ts.dtype == np.float64 and list(ts - T0) == [3, 4] and list(power) == [103, 104]
    assert [len(a) for a in store.reading_arrays("nobody")] == [0, 0]


def test_status_from_snapshot_and_last_reading(store: Store) -> None:
    """State and since come from the snapshot (else the last transition); power from the reading."""
    store.write_batch(full_batch())
    store.write_batch(Batch(transitions=[transition("tv", 2, State.OFF, State.ON)]))
    rows = {row["plug"]: row for row in store.status()}
    assert rows["washer"]["state"] == "standby" and rows["washer"]["since"] == T0 + 4
    assert rows["washer"]["last_power_w"] == 104.0 and rows["washer"]["last_contact"] == T0 + 4
    assert (rows["tv"]["state"], rows["tv"]["since"]) == ("on", T0 + 2)


def test_status_of_a_plug_never_seen(store: Store) -> None:
    rows = {row["plug"]: row for row in store.status()}
    assert rows["washer"] == {"plug": "washer", "state": "unknown", "since": None,
                              "last_power_w": None, "last_contact": None, "snapshot_ts": None,
                              "held_by": None, "last_failure": None, "last_failure_at": None}


def test_snapshots_never_go_back_in_time(store: Store) -> None:
    store.write_batch(Batch(snapshots={"washer": (T0 + 10, {"state": "on"})}))
    store.write_batch(Batch(snapshots={"washer": (T0 + 5, {"state": "off"})}))
    assert store.load_snapshots() == {"washer": (T0 + 10, {"state": "on"})}
    store.write_batch(Batch(snapshots={"washer": (T0 + 20, {"state": "standby"})}))
    assert store.load_snapshots()["washer"] == (T0 + 20, {"state": "standby"})


def test_json_keeps_infinities_and_nan(store: Store) -> None:
    """A detector snapshot holding -inf (a run's peak before its first sample) survives as is."""
    store.write_batch(Batch(snapshots={"washer": (T0, {"peak": float("-inf"), "w": [1.5]})},
                            kv={"x": float("inf")}))
    assert store.load_snapshots() == {"washer": (T0, {"peak": float("-inf"), "w": [1.5]})}
    assert store.load_kv() == {"x": float("inf")}


def test_kv_state_is_upserted(store: Store) -> None:
    store.write_batch(Batch(kv={"rules/a": [1, 2], "other": "x"}))
    store.write_batch(Batch(kv={"rules/a": {"n": 3}}))
    assert store.load_kv("rules/") == {"rules/a": {"n": 3}}
    assert store.load_kv() == {"rules/a": {"n": 3}, "other": "x"}


def test_outbox_attempts_retry_then_succeed_or_fail(store: Store) -> None:
    """pending -> retried later -> sent; a final failure is `failed`; errors are redacted."""
    store.write_batch(Batch(alerts=[alert("late", 60), alert("now", 0), alert("mute", 0,
                                                                              status="dropped")]))
    due = store.pending_alerts(T0 + 1)
    assert [a["dedupe_key"] for a in due] == ["now"]
    first = due[0]["id"]
    store.record_attempt(first, False, "mailtos://me:hunter2@smtp.x.org: refused", T0 + 1, T0 + 30)
    assert store.pending_alerts(T0 + 2) == []
    assert [a["dedupe_key"] for a in store.pending_alerts(T0 + 100)] == ["now", "late"]
    store.record_attempt(first, True, None, T0 + 31, None)
    late = store.pending_alerts(T0 + 100, limit=5)[0]["id"]
    store.record_attempt(late, False, "HTTP 500", T0 + 61, None)
    rows = {a["dedupe_key"]: a for a in store.alerts()}
    assert (rows["now"]["status"], rows["now"]["attempts"], rows["now"]["sent_at"]) == (
        "sent", 2, T0 + 31)
    assert (rows["late"]["status"], rows["late"]["last_error"]) == ("failed", "HTTP 500")
    assert rows["mute"]["status"] == "dropped" and store.pending_alerts(T0 + 1e6) == []
    assert "hunter2" not in repr(store.alerts())


def test_purge_readings_keeps_newer_ones(store: Store) -> None:
    store.write_batch(full_batch())
    assert store.purge_readings(T0 + 3) == 4  # washer 0, 1, 2 and tv 2
    assert [r.ts - T0 for r in store.readings("washer")] == [3, 4]
    assert len(store.transitions()) == 2  # transitions and runs are kept


def test_plugs_are_registered_and_updated(store: Store) -> None:
    """ensure_plugs updates a moved plug; batches naming an unknown plug create it."""
    store.ensure_plugs(config_from_dict({"plugs": [{"name": "tv", "host": "10.0.0.9"}]}).plugs)
    store.write_batch(Batch(readings=[("lamp", Reading(T0, 3.0))]))
    assert [row["plug"] for row in store.status()] == ["lamp", "tv", "washer"]
    with store.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT name, address FROM plugs")).all())
    assert rows == {"washer": "10.0.0.4", "tv": "10.0.0.9", "lamp": ""}


def test_reopening_keeps_data(db_url: str) -> None:
    """open_store on an existing database upgrades nothing and loses nothing."""
    first = open_store(db_url)
    first.write_batch(full_batch())
    first.close()
    again = open_store(db_url)
    assert len(again.transitions()) == 2
    again.close()


def test_unreachable_database_is_one_redacted_line() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://app:hunter2@127.0.0.1:1/db?connect_timeout=2")
    message = str(info.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith("upgrading the schema of postgresql+psycopg://app:***@127.0.0.1:1/db")
