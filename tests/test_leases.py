"""Leases in PostgreSQL: claim only what is free or expired, renew only what is still ours, fence
writes of a lease that moved on, and share fairly among the live instances."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from plugwatch.store import Store, open_store
from plugwatch.store.leases import LeaseStore, fair_share, fence
from plugwatch.store.scratch import scratch_schema

NAMES = [f"plug:p{i}" for i in range(10)]


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    with scratch_schema(postgres_url) as url:
        store = open_store(url)
        yield store
        store.close()


def leases(store: Store, owner: str, lease_s: float = 5.0) -> LeaseStore:
    mine = LeaseStore(store, owner, lease_s)
    mine.ensure(NAMES)
    return mine


def test_two_instances_never_claim_the_same_plug(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    got_a = a.claim(NAMES, 6)
    got_b = b.claim(NAMES, 6)
    assert len(got_a) == 6 and len(got_b) == 4  # b gets only what was left
    assert set(got_a).isdisjoint(got_b)
    assert all(gen == 1 for gen in (*got_a.values(), *got_b.values()))
    assert store_holders(a) == {**dict.fromkeys(got_a, "a"), **dict.fromkeys(got_b, "b")}


def store_holders(lease_store: LeaseStore) -> dict[str, str]:
    return lease_store.holders()


def test_concurrent_claims_split_the_plugs_without_overlap(store: Store) -> None:
    """Eight threads claiming at once (SKIP LOCKED): every plug once, none twice."""
    owners = [leases(store, f"i{k}") for k in range(8)]
    results: dict[str, dict[str, int]] = {}

    def claim(mine: LeaseStore) -> None:
        results[mine.owner] = mine.claim(NAMES, 10)

    threads = [threading.Thread(target=claim, args=(m,)) for m in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [name for got in results.values() for name in got]
    assert sorted(claimed) == sorted(NAMES)


def test_an_expired_lease_can_be_taken_and_the_old_owner_can_no_longer_renew(store: Store) -> None:
    a, b = leases(store, "a", lease_s=0.3), leases(store, "b")
    held = a.claim(NAMES[:2], 2)
    assert b.claim(NAMES[:2], 2) == {}  # not expired yet
    assert a.renew(held) == held
    time.sleep(0.5)  # a paused past its lease
    taken = b.claim(NAMES[:2], 2)
    assert taken == {name: 2 for name in held}  # the generation grew
    assert a.renew(held) == {}  # a learns it lost them


def test_release_hands_over_at_once_and_leave_releases_everything(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    held = a.claim(NAMES, 10)
    a.release(list(held)[:3])
    assert len(b.claim(NAMES, 10)) == 3
    a.heartbeat("h", 1)
    a.leave()
    assert len(b.claim(NAMES, 10)) == 7
    assert [i.id for i in b.heartbeat("h", 2)] == ["b"]


def test_heartbeat_lists_live_instances_only(store: Store) -> None:
    a, b = leases(store, "a", lease_s=0.3), leases(store, "b")
    a.heartbeat("host-a", 10)
    assert [i.id for i in b.heartbeat("host-b", 20)] == ["a", "b"]
    time.sleep(0.5)
    live = b.heartbeat("host-b", 20)
    assert [(i.id, i.host, i.pid) for i in live] == [("b", "host-b", 20)]


def test_fence_keeps_only_the_leases_still_held_and_no_claim_meanwhile(store: Store) -> None:
    a, b = leases(store, "a", lease_s=0.5), leases(store, "b")
    held = a.claim(NAMES[:3], 3)
    stale = {NAMES[0]: held[NAMES[0]] - 1}  # an older generation of the same lease
    with store.engine.begin() as conn:
        assert fence(conn, "a", held) == set(NAMES[:3])
        assert fence(conn, "a", stale) == set()
        time.sleep(0.7)  # expired while a's write transaction holds the rows' share lock:
        assert b.claim(NAMES[:3], 3) == {}  # b skips them, no write can interleave with a's
    assert set(b.claim(NAMES[:3], 3)) == set(NAMES[:3])  # once a's transaction has ended
    with store.engine.begin() as conn:
        assert fence(conn, "a", held) == set()  # a's later writes are dropped


@pytest.mark.parametrize(("total", "instances", "share"), [
    (10, 1, 10), (10, 3, 4), (9, 3, 3), (10, 4, 3), (0, 2, 0), (5, 0, 5),
])
def test_fair_share(total: int, instances: int, share: int) -> None:
    assert fair_share(total, instances) == share


def test_holds_needs_the_generation_and_the_margin(store: Store) -> None:
    """The sender asks `holds` before each delivery: only the current holder with time to spare."""
    a, b = leases(store, "a", lease_s=1.0), leases(store, "b")
    [(name, gen)] = a.claim(NAMES[:1], 1).items()
    assert a.holds(name, gen, 0.5)
    assert not a.holds(name, gen - 1, 0.0)  # an older generation
    assert not b.holds(name, gen, 0.0)  # someone else's
    time.sleep(0.6)
    assert not a.holds(name, gen, 0.5)  # under half a lease left: too close to call
    assert a.holds(name, gen, 0.1)


STARTER = """\
import sys, time
import alembic.command, alembic.runtime.migration, psycopg  # what an upgrade imports, now
from plugwatch.store import open_store
url, at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, at - time.time()))  # every process imported: all open the store at once
open_store(url).close()
"""


def test_instances_starting_together_on_a_fresh_database_migrate_it_once(
    postgres_url: str,
) -> None:
    """Six processes open one brand-new schema at the same instant: the migrations run under
    an advisory lock, so one creates the tables, the others find them current; none fails."""
    import subprocess
    import sys

    from sqlalchemy import text

    from plugwatch.store.engine import head_revision

    with scratch_schema(postgres_url) as url:
        at = time.time() + 4.0  # past every process's imports, even on a loaded machine
        procs = [subprocess.Popen([sys.executable, "-c", STARTER, url, str(at)],
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [proc.communicate(timeout=60)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 6, "\n".join(errors)
        assert time.time() > at  # they did wait for the common start
        store = open_store(url)
        with store.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [(head_revision(),)]
        assert store.load_kv() == {}  # the tables are there and usable
        store.close()


def test_the_fence_covers_a_groups_message_by_all_its_plugs_and_each_plugs_rules_state(
    store: Store,
) -> None:
    """A clustered instance writes a grouped alert only while it holds every plug it lists, and
    a plug's rules-state row only while it holds that plug; its own kv rows always."""
    from plugwatch.rules import Alert
    from plugwatch.store import Batch
    from plugwatch.store.writes import plug_kv_key

    mine = leases(store, "a")
    held = mine.claim(NAMES[:2], 2)  # p0 and p1; p2 is nobody's
    store.fencer = lambda conn, plugs: {
        n.removeprefix("plug:") for n in fence(conn, "a", {f"plug:{p}": held[f"plug:{p}"]
                                                            for p in plugs if f"plug:{p}" in held})}

    def group(key: str, plugs: tuple[str, ...]) -> dict[str, object]:
        label = f"{plugs[0]}+{len(plugs) - 1}"
        return Alert(key, "cut", label, "hook", "t", "b", 1.0, 1.0, plugs=plugs).as_row()

    store.write_batch(Batch(
        alerts=[group("g1", ("p0", "p1")), group("g2", ("p0", "p2"))],
        kv={plug_kv_key("rules_engine", "p0"): {"n": 0}, plug_kv_key("rules_engine", "p2"): {},
            "instance-own": {"n": 1}}))
    assert [a["dedupe_key"] for a in store.alerts()] == ["g1"]
    assert store.load_kv() == {"rules_engine@plug:p0": {"n": 0}, "instance-own": {"n": 1}}
