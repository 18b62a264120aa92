"""The writer thread batches what the service records into single transactions on a real store."""

from __future__ import annotations

from pathlib import Path

from plugwatch.model import Reading, RunSummary, State, Transition
from plugwatch.service.writer import Writer
from plugwatch.store import open_store


def test_items_are_written_in_batches_and_rewrites_are_no_ops(tmp_path: Path) -> None:
    """2,500 readings with max 1,000 items per batch take at least 3 transactions; an event
    written twice (as after a restart's re-feed) is stored once."""
    store = open_store(f"sqlite:///{tmp_path}/w.db")
    try:
        from plugwatch.testing import emulated_config

        store.ensure_plugs(emulated_config({"washer": 9999}, "sqlite://").plugs)
        writer = Writer(store, flush_s=0.2, max_items=1000)
        writer.start()
        for i in range(2500):
            writer.put(("washer", Reading(1000.0 + i, 5.0, True, 0.001 * i), [], [], None, None))
        step = Transition("washer", 1500.0, State.STANDBY, State.ON, "power", 1200.0)
        run = RunSummary("washer", 1500.0, 1600.0, 33.0, 2000.0)
        for _ in range(2):
            writer.put(("washer", None, [step, run], [], (1600.0, {"any": "snapshot"}),
                        {"rules_engine": {"n": 1}}))
        assert writer.flush(10.0)
        assert writer.stats.batches >= 3
        assert writer.close(10.0)
        assert len(store.readings("washer")) == 2500
        assert [t.ts for t in store.transitions(plug="washer")] == [1500.0]
        assert [r.energy_wh for r in store.runs(plug="washer")] == [33.0]
        assert store.load_snapshots()["washer"][0] == 1600.0
        assert store.load_kv("rules_engine") == {"rules_engine": {"n": 1}}
    finally:
        store.close()


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    """Closing the writer (a clean stop) writes every queued item before the thread ends."""
    store = open_store(f"sqlite:///{tmp_path}/w.db")
    try:
        from plugwatch.testing import emulated_config

        store.ensure_plugs(emulated_config({"tv": 9999}, "sqlite://").plugs)
        writer = Writer(store, flush_s=5.0)
        writer.start()
        for i in range(10):
            writer.put(("tv", Reading(2000.0 + i, 80.0), [], [], None, None))
        assert writer.close(10.0)
        assert len(store.readings("tv")) == 10
    finally:
        store.close()
