"""Several `plugwatch run` instances on one PostgreSQL share the plugs through leases (issue 16):
a killed instance's plugs are picked up by the others, a new one takes its share, a clean stop
hands over at once, and an instance paused past its lease writes nothing for plugs it lost."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_notify_receivers import HttpReceiver

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import State
from plugwatch.store import Store, open_store
from plugwatch.store.leases import LeaseStore
from plugwatch.store.scratch import scratch_schema

LEASE_S = 2.0
PLUGS = 12
CONFIG = """\
database: "{database}"
cluster: {{lease: {lease}}}
defaults:
  interval: 0.25
  timeout: 0.5
  window: 1
  unreachable_after: 4
  thresholds: {{standby: 0.5, on: 10, hysteresis: {{standby: 0.2, on: 2}}}}
  dwell: {{on: 0.5, standby: 0.5, off: 0.5}}
plugs:
{plugs}
{extra}"""
RULES = """\
- name: done
  plugs: [p0]
  when: {from: "on", to: standby}
  notify: [hook]
  title: "{{ plug }} finished"
  body: "ran {{ run.duration }}"
"""


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    """A notification target: an HTTP receiver keeping what it was sent."""
    receiver = HttpReceiver()
    receiver.up()
    yield receiver
    receiver.close()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with scratch_schema(postgres_url) as url:
        yield url


class Instances:
    """Real `plugwatch run` processes on one config; each logs to a file of its own."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.config.with_name(f"instance-{len(self.procs)}.log")
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "plugwatch", "-v", "run", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.config.with_name(f"instance-{self.procs.index(proc)}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def holders(store: Store) -> Counter[str]:
    """Live leases per instance (plugs only)."""
    held = LeaseStore(store, "test", LEASE_S).holders()
    return Counter(owner for name, owner in held.items() if name.startswith("plug:"))


def last_state(store: Store, plug: str) -> State | None:
    steps = store.transitions(plug=plug)
    return steps[-1].to_state if steps else None


def sampled_since(store: Store, names: list[str], ts: float) -> set[str]:
    return {n for n in names if any(r.ts > ts for r in store.readings(n, since=ts))}


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took (fails after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await asyncio.to_thread(check):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


async def test_instances_share_fail_over_rebalance_and_hand_over(
    database: str, tmp_path: Path, hook: HttpReceiver,
) -> None:
    levels = {f"p{i}": 2.0 for i in range(PLUGS)}  # standby; the test switches loads on and off
    emulator = Emulator()
    ports = await emulator.start([
        EmulatedPlug("HS110v2", power=lambda t, n=name: levels[n]) for name in levels])
    names = list(levels)
    config = tmp_path / "plugwatch.yaml"
    (tmp_path / "rules.yaml").write_text(RULES)
    config.write_text(CONFIG.format(database=database, lease=LEASE_S, plugs="".join(
        f"  - {{name: {n}, host: '127.0.0.1:{p}'}}\n" for n, p in zip(names, ports, strict=True)),
        extra=f"targets: {{hook: '{hook.url}'}}\nrules: rules.yaml\n"))
    store = open_store(database)
    cluster = Instances(config)
    try:
        a, b, c = cluster.start(), cluster.start(), cluster.start()
        await until(lambda: sorted(holders(store).values()) == [4, 4, 4], 30, "a fair split")
        t0 = time.time()
        await until(lambda: sampled_since(store, names, t0) == set(names), 10, "all sampled")

        # a load goes on while its instance is killed: the run is found once, by the new owner
        owner = LeaseStore(store, "test", LEASE_S).holders()
        victim_id = owner["plug:p0"]
        victim = next(p for p in (a, b, c) if f"-{p.pid}-" in victim_id)
        levels["p0"] = 500.0
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed = time.time()
        took = await until(lambda: sampled_since(store, names, killed) == set(names),
                           LEASE_S * 4 + 10, "the killed instance's plugs sampled again")
        assert took < LEASE_S * 2 + 3, f"coverage came back after {took:.1f} s"
        await until(lambda: sorted(holders(store).values()) == [6, 6], 10, "two instances, 6 each")
        await until(lambda: last_state(store, "p0") == State.ON, 10, "the new owner sees the run")
        levels["p0"] = 2.0

        # a fourth instance joins (three alive): it takes its share, 4 each
        d = cluster.start()
        await until(lambda: sorted(holders(store).values()) == [4, 4, 4], 30, "rebalanced to 4")

        # a clean stop hands over at once, well before its leases would expire
        stopping = next(p for p in (a, b, c, d) if p.poll() is None and p is not d)
        stopping.send_signal(signal.SIGTERM)
        assert stopping.wait(20) == 0, cluster.log(stopping)
        stopped = time.time()
        await until(lambda: sorted(holders(store).values()) == [6, 6], LEASE_S, "hand-over")
        await until(lambda: sampled_since(store, names, stopped) == set(names), 10, "covered")
        await until(lambda: last_state(store, "p0") == State.STANDBY, 10, "the run's end")
        await until(lambda: bool(hook.received), 20, "the alert delivered")
        await asyncio.sleep(1.0)
    finally:
        cluster.stop_all()
        await emulator.stop()
    for proc in cluster.procs:
        assert proc.returncode in (0, -signal.SIGKILL), cluster.log(proc)
    steps = [t for t in store.transitions(plug="p0") if t.from_state != State.UNKNOWN]
    assert [(t.from_state, t.to_state) for t in steps] == [
        (State.STANDBY, State.ON), (State.ON, State.STANDBY)]
    assert len(store.runs(plug="p0")) == 1
    assert [m["title"] for m in hook.received] == ["p0 finished"]  # once, by one sender
    for name in names:  # a first state is decided (and announced) once, whoever sampled it
        first = [t for t in store.transitions(plug=name) if t.from_state == State.UNKNOWN]
        assert len(first) <= 1, name
    for name in names[1:]:  # and nothing else: no flap at a hand-over
        assert [t for t in store.transitions(plug=name) if t.from_state != State.UNKNOWN] == []
    store.close()


async def test_an_instance_paused_past_its_lease_writes_nothing_for_the_plugs_it_lost(
    database: str, tmp_path: Path,
) -> None:
    emulator = Emulator()
    ports = await emulator.start([EmulatedPlug("HS110v2", power=lambda t: 40.0)
                                  for _ in range(4)])
    names = [f"q{i}" for i in range(4)]
    config = tmp_path / "plugwatch.yaml"
    config.write_text(CONFIG.format(database=database, lease=LEASE_S, plugs="".join(
        f"  - {{name: {n}, host: '127.0.0.1:{p}'}}\n" for n, p in zip(names, ports, strict=True)),
        extra=""))
    store = open_store(database)
    cluster = Instances(config)
    try:
        paused = cluster.start()
        await until(lambda: owned_by(store, paused) == 4, 30, "one owner")
        other = cluster.start()
        await until(lambda: sorted(holders(store).values()) == [2, 2], 30, "split 2/2")
        os.kill(paused.pid, signal.SIGSTOP)
        await until(lambda: owned_by(store, other) == 4, LEASE_S * 4 + 5,
                    "the other instance takes over")
        taken = time.time()
        await asyncio.sleep(0.5)
        os.kill(paused.pid, signal.SIGCONT)
        await asyncio.sleep(LEASE_S)  # the paused one wakes, writes, notices, drops
        assert "lost the leases of 2 plugs" in cluster.log(paused)
        # one sampler per plug after the take-over: no two readings closer than half an interval
        for name in names:
            stamps = sorted(r.ts for r in store.readings(name, since=taken))
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            assert gaps and min(gaps) > 0.125, (name, gaps)
    finally:
        cluster.stop_all()
        await emulator.stop()
        store.close()


def owned_by(store: Store, proc: subprocess.Popen[bytes]) -> int:
    """How many plug leases the instance running as `proc` holds (its id holds its pid)."""
    return sum(n for owner, n in holders(store).items() if f"-{proc.pid}-" in owner)


async def test_workers_on_postgresql_share_the_plugs_by_leases(
    database: str, tmp_path: Path,
) -> None:
    """`run --workers 2` on PostgreSQL: two clustered children, 3 plugs each; status shows
    which child holds each plug; SIGTERM to the parent stops both cleanly."""
    emulator = Emulator()
    ports = await emulator.start([EmulatedPlug("HS110v2", power=lambda t: 40.0)
                                  for _ in range(6)])
    names = [f"w{i}" for i in range(6)]
    config = tmp_path / "plugwatch.yaml"
    config.write_text(CONFIG.format(database=database, lease=LEASE_S, plugs="".join(
        f"  - {{name: {n}, host: '127.0.0.1:{p}'}}\n" for n, p in zip(names, ports, strict=True)),
        extra="").replace(f"cluster: {{lease: {LEASE_S}}}\n", ""))
    store = open_store(database)
    proc = subprocess.Popen([sys.executable, "-m", "plugwatch", "run", "--config", str(config),
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await until(lambda: sorted(holders(store).values()) == [3, 3], 40, "two children, 3 each")
        status = subprocess.run([sys.executable, "-m", "plugwatch", "status", "--config",
                                 str(config)], capture_output=True, text=True, check=True).stdout
        owners = {line.split("held by ")[1] for line in status.splitlines() if "held by" in line}
        assert len(owners) == 2 and status.count("held by") == 6
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, err.decode()
        assert holders(store) == Counter()  # released on the clean stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.close()
        await emulator.stop()


def test_cluster_on_sqlite_is_one_clear_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from plugwatch.cli import main

    config = tmp_path / "plugwatch.yaml"
    config.write_text("database: sqlite:///pw.db\nplugs:\n  - {name: a, host: 127.0.0.1:1}\n")
    assert main(["run", "--config", str(config), "--cluster"]) == 1
    assert capsys.readouterr().err == (
        "plugwatch: error: --cluster needs a PostgreSQL database (the instances share the plugs "
        "through leases in it); on SQLite use --workers K\n")
    config.write_text("database: sqlite:///pw.db\ncluster: {lease: 10s}\nplugs:\n"
                      "  - {name: a, host: 127.0.0.1:1}\n")
    assert main(["run", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "cluster: needs a PostgreSQL database" in err and err.count("\n") == 1
