"""Several `plugwatch run` instances on one PostgreSQL share the plugs through leases (issue 16):
a killed instance's plugs are picked up by the others, a new one takes its share, a clean stop
hands over at once, and an instance paused past its lease writes nothing for plugs it lost."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_notify_receivers import HttpReceiver

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import State, Transition
from plugwatch.rules import Alert, Rule, RulesEngine
from plugwatch.store import Batch, Store, open_store
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


async def plugs_with_rules(levels: dict[str, float], rules: str, tmp_path: Path, database: str,
                           hook: HttpReceiver) -> tuple[Emulator, Path]:
    """Emulated plugs drawing `levels[name]` watts (the test changes them) and a clustered
    config with `rules` notifying `hook`."""
    emulator = Emulator()
    ports = await emulator.start([
        EmulatedPlug("HS110v2", power=lambda t, n=name: levels[n]) for name in levels])
    config = tmp_path / "plugwatch.yaml"
    (tmp_path / "rules.yaml").write_text(rules)
    config.write_text(CONFIG.format(database=database, lease=LEASE_S, plugs="".join(
        f"  - {{name: {n}, host: '127.0.0.1:{p}'}}\n" for n, p in zip(levels, ports, strict=True)),
        extra=f"targets: {{hook: '{hook.url}'}}\nrules: rules.yaml\n"))
    return emulator, config


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
    emulator, config = await plugs_with_rules(levels, RULES, tmp_path, database, hook)
    names = list(levels)
    store = open_store(database)
    cluster = Instances(config)
    try:
        a, b, c = cluster.start(), cluster.start(), cluster.start()
        await until(lambda: sorted(holders(store).values()) == [4, 4, 4], 90, "a fair split")
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
        await until(lambda: sorted(holders(store).values()) == [6, 6], 30, "two instances, 6 each")
        await until(lambda: last_state(store, "p0") == State.ON, 10, "the new owner sees the run")
        levels["p0"] = 2.0

        # a fourth instance joins (three alive): it takes its share, 4 each
        d = cluster.start()
        await until(lambda: sorted(holders(store).values()) == [4, 4, 4], 60, "rebalanced to 4")

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
        await until(lambda: owned_by(store, paused) == 4, 60, "one owner")
        other = cluster.start()
        await until(lambda: sorted(holders(store).values()) == [2, 2], 60, "split 2/2")
        os.kill(paused.pid, signal.SIGSTOP)
        # (the take-over itself is timed by the test above; here a loaded machine may be slow)
        await until(lambda: owned_by(store, other) == 4, 30, "the other instance takes over")
        taken = time.time()
        await asyncio.sleep(0.5)
        os.kill(paused.pid, signal.SIGCONT)  # it wakes, writes (fenced out), notices, drops
        await until(lambda: "lost the leases of 2 plugs" in cluster.log(paused), 30,
                    "the paused one notices")
        await until(lambda: all(len(store.readings(n, since=taken)) >= 8 for n in names), 30,
                    "every plug sampled since the take-over")
        # one sampler per plug after the take-over: no two readings closer than half an interval
        for name in names:
            stamps = sorted(r.ts for r in store.readings(name, since=taken))
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            assert gaps and min(gaps) > 0.125, (name, gaps)
    finally:
        cluster.stop_all()
        await emulator.stop()
        store.close()


TIMER_RULES = """\
- name: long-on
  plugs: [p0]
  when: {from: standby, to: "on"}
  for: 8s
  repeat: 6s
  max_repeats: 2
  notify: [hook]
  title: "{{ plug }} on, message {{ repeat }}"
"""
FOR_S, REPEAT_S = 8.0, 6.0


def holder_of(store: Store, plug: str, procs: list[subprocess.Popen[bytes]],
              ) -> subprocess.Popen[bytes] | None:
    """The process holding `plug`'s lease now (None: nobody)."""
    owner = LeaseStore(store, "test", LEASE_S).holders().get(f"plug:{plug}", "")
    return next((p for p in procs if f"-{p.pid}-" in owner), None)


async def test_a_for_timer_and_its_reminders_follow_the_plug_to_their_original_deadlines(
    database: str, tmp_path: Path, hook: HttpReceiver,
) -> None:
    """`for: 8s` starts on instance X, which is killed -9 2 s later: the instance that takes the
    plug sends the alert 8 s after the trigger (not 8 s after it took over); that one then stops
    cleanly after it and the third sends the two reminders, each in its 6 s slot. Each message
    reaches the HTTP receiver once."""
    levels = {f"p{i}": 2.0 for i in range(3)}
    emulator, config = await plugs_with_rules(levels, TIMER_RULES, tmp_path, database, hook)
    store = open_store(database)
    # what an instance of an earlier plugwatch left (its state was per instance): removed
    store.write_batch(Batch(kv={"rules_engine@old-7-abcdef": {"episodes": [{"rule": "x"}]},
                                "rules_engine@0/2": {}}))
    cluster = Instances(config)
    arrived: list[float] = []

    async def messages(n: int, timeout: float) -> None:
        start = time.monotonic()
        while len(hook.received) < n and time.monotonic() - start < timeout:
            while len(arrived) < len(hook.received):
                arrived.append(time.time())
            await asyncio.sleep(0.05)
        while len(arrived) < len(hook.received):
            arrived.append(time.time())
        assert len(hook.received) >= n, f"{len(hook.received)} messages, wanted {n}"

    try:
        procs = [cluster.start() for _ in range(3)]
        await until(lambda: sorted(holders(store).values()) == [1, 1, 1], 90, "one plug each")
        await until(lambda: last_state(store, "p0") == State.STANDBY, 10, "p0 in standby")
        levels["p0"] = 500.0
        await until(lambda: last_state(store, "p0") == State.ON, 10, "p0 on")
        trigger = store.transitions(plug="p0")[-1].ts
        first = holder_of(store, "p0", procs)
        assert first is not None
        await asyncio.sleep(max(0.0, trigger + 2.0 - time.time()))
        first.send_signal(signal.SIGKILL)  # its for: timer is 2 s old
        first.wait(10)
        alive = [p for p in procs if p is not first]
        await until(lambda: holder_of(store, "p0", alive) is not None, LEASE_S * 3 + 5,
                    "p0 taken over")
        await messages(1, FOR_S + 10)
        second = holder_of(store, "p0", alive)
        assert second is not None
        second.send_signal(signal.SIGTERM)  # a clean stop between the alert and its reminders
        assert second.wait(20) == 0, cluster.log(second)
        third = next(p for p in alive if p is not second)
        await until(lambda: holder_of(store, "p0", [third]) is third, LEASE_S * 2, "hand-over")
        await messages(3, FOR_S + 2 * REPEAT_S + 10 - (time.time() - trigger))
        await asyncio.sleep(2.0)  # nothing more comes
        await messages(3, 0)
    finally:
        cluster.stop_all()
        await emulator.stop()
    assert [m["title"] for m in hook.received] == [
        "p0 on, message 0", "p0 on, message 1", "p0 on, message 2"]
    rows = [a for a in store.alerts() if a["rule"] == "long-on"]
    assert [a["dedupe_key"] for a in rows] == [
        f"long-on|p0|hook|{trigger:.3f}|{n}" for n in range(3)]
    for n, (row, at) in enumerate(zip(rows, arrived, strict=True)):
        due = trigger + FOR_S + n * REPEAT_S  # the original deadline of each message
        # on time (a timer restarted at the take-over would be 4 s or more late)
        assert due <= row["created_at"] < due + 3.0, (n, row["created_at"] - trigger)
        assert due <= at < due + 6.0, (n, at - trigger)
    assert sorted(store.load_kv("rules_engine")) == [
        "rules_engine@0/2", "rules_engine@plug:p0", "rules_engine@plug:p1", "rules_engine@plug:p2"]
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
        await until(lambda: sorted(holders(store).values()) == [3, 3], 90, "two children, 3 each")
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


# -- the rules state follows the plug (pure: two engines standing for two instances) -------


def _rule(**kw: Any) -> Rule:
    kw.setdefault("notify", ["hook"])
    return Rule.model_validate(kw)


def _down(plug: str, ts: float) -> Transition:
    return Transition(plug, ts, State.ON, State.UNREACHABLE, "timeout", None)


def _hand_over(a: RulesEngine, b: RulesEngine, plugs: list[str], now: float) -> None:
    snaps = a.plug_snapshots(plugs)
    a.forget(plugs, now)
    b.adopt(json.loads(json.dumps(list(snaps.values()))), now)  # as stored: through JSON


def test_a_for_timer_and_its_reminders_go_on_with_the_plug_at_their_deadlines() -> None:
    rules = [_rule(name="down", when={"to": "unreachable"}, repeat="60s", max_repeats=2,
                   **{"for": "30s"})]
    a, b = RulesEngine(rules), RulesEngine(rules)
    a.on_transition(_down("freezer", 1000.0))
    a.on_transition(_down("tv", 1000.0))
    _hand_over(a, b, ["freezer"], 1010.0)
    assert [x.plug for x in a.due(1030.0)] == ["tv"]  # a fires only for the plug it kept
    assert b.due(1029.9) == []  # not restarted from zero at the hand-over (that is 1040)
    first = b.due(1030.0)
    assert [(x.plug, x.dedupe_key) for x in first] == [
        ("freezer", "down|freezer|hook|1000.000|0")]
    _hand_over(b, a, ["freezer"], 1050.0)  # and back, between two reminders
    assert a.due(1089.0) == [] and b.due(1200.0) == []
    assert sorted(x.dedupe_key for x in a.due(1090.0)) == [
        "down|freezer|hook|1000.000|1", "down|tv|hook|1000.000|1"]
    a.on_transition(Transition("freezer", 1100.0, State.UNREACHABLE, State.ON, "power", 5.0))
    assert [x.plug for x in a.due(1200.0)] == ["tv"]  # the freezer's alert is resolved


def test_a_plug_waiting_in_a_group_joins_the_new_owners_group_and_is_sent_on_time() -> None:
    rules = [_rule(name="cut", plugs={"tags": ["kitchen"]}, when={"to": "unreachable"},
                   group_by="rule", group_wait="20s")]
    tags = {"fridge": ["kitchen"], "kettle": ["kitchen"], "toaster": ["kitchen"]}
    a, b = RulesEngine(rules, tags), RulesEngine(rules, tags)
    a.on_transition(_down("fridge", 1000.0))
    a.on_transition(_down("kettle", 1005.0))
    b.on_transition(_down("toaster", 1008.0))  # b's own group, due at 1028
    _hand_over(a, b, ["kettle"], 1010.0)
    assert b.due(1019.9) == []
    sent = b.due(1020.0)  # kettle was to go with a's group at 1020: b's group goes then
    assert [(x.plug, x.plugs) for x in sent] == [("kettle+1", ("kettle", "toaster"))]
    assert [(x.plug, x.plugs) for x in a.due(1020.0)] == [("fridge", ("fridge",))]
    assert b.due(1100.0) == [] and a.due(1100.0) == []


def test_forgetting_a_plug_lets_go_what_its_alert_inhibited_and_keeps_nothing_of_it() -> None:
    rules = [_rule(name="router", plugs=["router"], when={"to": "unreachable"}),
             _rule(name="cam", plugs=["cam"], when={"to": "unreachable"},
                   unless={"rule": "router", "same_plug": False}, **{"for": "10s"})]
    a = RulesEngine(rules)
    a.on_transition(_down("router", 1000.0))
    a.on_transition(_down("cam", 1000.0))
    assert [x.status for x in a.due(1010.0)] == ["inhibited"]
    a.forget(["router"], 1020.0)  # the router's alert now lives on another instance
    assert [(x.plug, x.status) for x in a.due(1020.0)] == [("cam", "pending")]
    assert "router" not in json.dumps(a.snapshot())


def test_duty_cycle_spans_and_the_last_run_move_with_the_plug() -> None:
    """What condition rules judge moves too: the freezer's on-spans (so the new owner's share
    counts the half hour before the take-over) and the pump's last run (`no_run_for:`)."""
    rules = [_rule(name="duty", plugs=["freezer"], when={"duty_cycle": {"above": 50,
                                                                          "over": "1h"}}),
             _rule(name="sump", plugs=["pump"], when={"no_run_for": "2h"})]
    a, b = RulesEngine(rules), RulesEngine(rules)
    a.on_transition(Transition("freezer", 1000.0, State.OFF, State.ON, "power", 90.0))
    a.watch(["pump"], 1000.0, {"pump": 500.0})  # the pump last ran until 500
    _hand_over(a, b, ["freezer", "pump"], 1000.0 + 20 * 60)
    assert a.next_due() is None  # a keeps nothing of them
    fired: list[Alert] = []
    while (due := b.next_due()) is not None and due <= 500.0 + 2 * 3600:
        fired += b.due(due)
    duty = [x for x in fired if x.rule == "duty"]
    assert len(duty) == 1 and 1000.0 + 1800 < duty[0].created_at <= 1000.0 + 36 * 60
    assert [x.created_at for x in fired if x.rule == "sump"] == [500.0 + 2 * 3600]
