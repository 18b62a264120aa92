"""Alerting with the real store (SQLite) and a real HTTP receiver: restarts, timers, reloads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_notify_receivers import HttpReceiver, http_receiver

from plugwatch.config import load_config
from plugwatch.model import State, Transition
from plugwatch.notify.apprise_notifier import AppriseNotifier
from plugwatch.notify.sender import AlertSender
from plugwatch.rules import RuleFileError
from plugwatch.service.alerting import SETTLE_S, Alerting
from plugwatch.store import Batch, open_store
from tests.helpers import Clock

__all__ = ["http_receiver"]  # fixture
T0 = 1_767_614_400.0

RULES = """\
- name: done
  plugs: [washer]
  when: {from: "on", to: standby}
  notify: phone
  title: "{{ plug }} done"
- name: gone
  plugs: {tags: [critical]}
  when: {to: unreachable}
  for: 5m
  notify: phone
  title: "{{ plug }} unreachable"
"""


OPENED: list[Any] = []


@pytest.fixture(autouse=True)
def close_stores(db_url: str) -> Iterator[None]:
    """Every store a test opened is closed (before its PostgreSQL schema is dropped)."""
    yield
    while OPENED:
        OPENED.pop().close()


@pytest.fixture
def setup(tmp_path: Path, http_receiver: HttpReceiver, db_url: str) -> tuple[Path, Clock]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    cfg = tmp_path / "plugwatch.yaml"
    cfg.write_text(
        f"database: '{db_url}'\nplugs:\n"
        "  - {name: washer, driver: kasa, host: 127.0.0.1}\n"
        "  - {name: freezer, driver: kasa, host: 127.0.0.2, tags: [critical]}\n"
        f"targets:\n  phone: {http_receiver.url}\nrules: rules.yaml\n", encoding="utf-8")
    return cfg, Clock(T0)


def start(cfg: Path, clock: Clock) -> tuple[Alerting, Any]:
    """A fresh Alerting on the stored state, as after a process restart."""
    config = load_config(cfg)
    store = open_store(config.database)
    OPENED.append(store)
    store.ensure_plugs(config.plugs)
    sender = AlertSender(store, AppriseNotifier({"phone": str(config.targets["phone"])}),
                         clock=clock)
    return Alerting.from_config(config, store, clock=clock, sender=sender), store


async def test_restart_between_transition_and_send_delivers_once(
    setup: tuple[Path, Clock], http_receiver: HttpReceiver
) -> None:
    cfg, clock = setup
    alerting, store = start(cfg, clock)
    events = [Transition("washer", T0, State.ON, State.STANDBY, "power", 2.0)]
    rows = alerting.on_events(events, T0)
    store.write_batch(Batch(transitions=events, alerts=rows))  # what the service's writer does
    del alerting  # killed before the sender ran
    again, store = start(cfg, clock)
    store.write_batch(Batch(alerts=again.on_events(events, T0)))  # re-fed events: same keys
    assert await again.sender.run_once() == 1
    assert await again.sender.run_once() == 0
    assert [m["title"] for m in http_receiver.received] == ["washer done"]
    (row,) = store.alerts()
    assert row["status"] == "sent" and row["attempts"] == 1


async def test_pending_for_timer_survives_a_restart_and_fires_once(
    setup: tuple[Path, Clock], http_receiver: HttpReceiver
) -> None:
    cfg, clock = setup
    alerting, _ = start(cfg, clock)
    alerting.on_events([Transition("freezer", T0, State.ON, State.UNREACHABLE, "read_failures",
                                   None)], T0)
    clock.now = T0 + SETTLE_S
    assert alerting.tick() == 0  # nothing due yet; the timer is saved
    again, _ = start(cfg, clock)
    clock.now = T0 + 299
    assert again.tick() == 0
    clock.now = T0 + 301
    assert again.tick() == 1
    assert await again.sender.run_once() == 1
    third, _ = start(cfg, clock)
    clock.now = T0 + 3600
    assert third.tick() == 0
    assert await third.sender.run_once() == 0
    assert [m["title"] for m in http_receiver.received] == ["freezer unreachable"]


def test_broken_rule_file_refuses_start_and_reload_keeps_old_rules(
    setup: tuple[Path, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    cfg, clock = setup
    alerting, _ = start(cfg, clock)
    (cfg.parent / "rules.yaml").write_text(RULES.replace("to: standby", "to: standbye"))
    assert alerting.reload() is False
    assert "rules.yaml:3: rule 'done': when.to[0]: unknown state 'standbye'" in caplog.text
    assert set(alerting.engine.rules) == {"done", "gone"}
    with pytest.raises(RuleFileError, match=r"rules.yaml:3: rule 'done'"):
        start(cfg, clock)


async def test_the_service_refuses_to_start_with_a_broken_rule_file(
    setup: tuple[Path, Clock]
) -> None:
    from plugwatch.service.app import run_service

    cfg, _ = setup
    (cfg.parent / "rules.yaml").write_text("- name: x\n  when: {to: on}\n  notify: pager\n")
    config = load_config(cfg)
    store = open_store(config.database)
    with pytest.raises(RuleFileError, match=r"rules.yaml:3: rule 'x': notify: unknown target"):
        await asyncio.wait_for(run_service(config, store), 10)
    store.close()
