"""Acknowledging and silencing alerts: one implementation for the CLI, HTTP and MQTT.

    acknowledge(store, "washer", source="cli", plugs=..., rules=...)   # -> ["washer-done/washer"]
    silence(store, "washer", 7200, plugs=..., rules=..., tags=...)      # -> a Silence

Both only write rows (`acks`, `silences`); the running service reads them every tick (about a
second) and applies them to its rules engine, and they stay in the database across restarts.
What is active is read from the engines' stored snapshots (`kv_state` rules_engine*).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from plugwatch.errors import ConfigError, PlugwatchError
from plugwatch.rules.controls import SILENCE_KINDS, Ack, Silence
from plugwatch.rules.episodes import Episode, active_in

if TYPE_CHECKING:
    from plugwatch.mqtt.client import MqttClient
    from plugwatch.store import Store

log = logging.getLogger(__name__)

KV_PREFIX = "rules_engine"


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def active_alerts(store: Store) -> list[Episode]:
    """The active alerts of every rules engine sharing this database (newest snapshots)."""
    found: dict[tuple[str, str], Episode] = {}
    for snapshot in store.load_kv(KV_PREFIX).values():
        for ep in active_in(snapshot):
            found[(ep.rule, ep.plug)] = ep
    return [found[k] for k in sorted(found)]


def parse_target(text: str, plugs: Iterable[str], rules: Iterable[str]) -> tuple[str | None,
                                                                                 str | None]:
    """"rule/plug", a plug name or a rule name -> (rule or None, plug or None)."""
    plugs, rules = set(plugs), set(rules)
    if "/" in text:
        rule, _, plug = text.partition("/")
        if rule not in rules:
            raise ConfigError(f"no rule named {rule!r} (rules: {_listing(rules)})")
        return rule, plug
    if text in plugs and text in rules:
        raise ConfigError(f"{text!r} is both a plug and a rule: say RULE/PLUG, e.g. "
                          f"{text}/{text}")
    if text in plugs:
        return None, text
    if text in rules:
        return text, None
    raise ConfigError(f"{text!r} is neither a plug nor a rule (plugs: {_listing(plugs)}; "
                      f"rules: {_listing(rules)})")


def acknowledge(
    store: Store, text: str, *, source: str, plugs: Iterable[str], rules: Iterable[str],
    now: float | None = None, note: str | None = None,
) -> list[str]:
    """Acknowledge the active alerts `text` names; their ids ("rule/plug"). A name that
    matches no unacknowledged active alert is a ConfigError listing the active ones."""
    now = time.time() if now is None else now
    rule, plug = parse_target(text, plugs, rules)
    probe = Ack(0, now, rule, plug, source)
    active = active_alerts(store)
    matched = [f"{ep.rule}/{ep.plug}" for ep in active
               if probe.matches(ep.rule, ep.plug) and ep.acked_at is None]
    if not matched:
        open_ = [f"{ep.rule}/{ep.plug}" for ep in active if ep.acked_at is None]
        raise ConfigError(f"nothing to acknowledge for {text!r}: no unacknowledged active alert "
                          f"(active: {_listing(open_)})")
    store.add_ack(now, rule, plug, source, note)
    return matched


def silence(
    store: Store, text: str, seconds: float, *, plugs: Iterable[str], rules: Iterable[str],
    tags: Iterable[str], now: float | None = None, comment: str | None = None,
) -> Silence:
    """Silence a plug, a rule (names or globs) or `tag:NAME` for `seconds` from now."""
    now = time.time() if now is None else now
    if seconds <= 0:
        raise ConfigError("--for must be longer than 0s (e.g. --for 2h)")
    kind, sep, value = text.partition(":")
    if sep and kind in SILENCE_KINDS:
        known = {"plug": set(plugs), "rule": set(rules), "tag": set(tags)}[kind]
        if value not in known and not any(c in value for c in "*?["):
            raise ConfigError(f"no {kind} named {value!r} ({kind}s: {_listing(known)})")
    else:
        rule, plug = parse_target(text, plugs, rules)
        if rule is not None and plug is not None:
            raise ConfigError("a silence covers a plug, a rule or a tag: say plug:NAME, "
                              "rule:NAME or tag:NAME")
        kind, value = ("plug", plug) if plug is not None else ("rule", rule or "")
    silence_id = store.add_silence(kind, value, now, now + seconds, now, comment)
    return Silence(silence_id, kind, value, now, now + seconds, comment or "")


def add_http_routes(http: Any, store: Store, plugs: Iterable[str],
                    rules: Callable[[], Iterable[str]]) -> None:
    """`POST /api/ack/{alert}` (ALERT, PLUG or RULE as for `plugwatch ack`; 200 with the ids
    acknowledged, 404 with the reason) and `GET /api/alerts` (the active alerts) on the HTTP
    endpoint. `rules()`: the rule names in force (they change on reload). The database calls
    run in a worker thread."""
    import asyncio

    from aiohttp import web

    plug_names = list(plugs)

    async def ack(request: Any) -> Any:
        name = request.match_info["alert"]
        try:
            matched = await asyncio.to_thread(acknowledge, store, name, source="http",
                                              plugs=plug_names, rules=list(rules()))
        except PlugwatchError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"acknowledged": matched})

    async def listing(request: Any) -> Any:
        active = await asyncio.to_thread(active_alerts, store)
        return web.json_response({"alerts": [
            {"id": f"{ep.rule}/{ep.plug}", "rule": ep.rule, "plug": ep.plug,
             "since": ep.trigger.ts, "fired_at": ep.active_at, "sent": ep.n,
             "acknowledged_at": ep.acked_at, "next": ep.fire_at, "inhibited_by": ep.held}
            for ep in active]})

    http.add_route("POST", "/api/ack/{alert}", ack)
    http.add_route("GET", "/api/alerts", listing)


SHOWN_PAYLOAD = 64  # characters of a bad MQTT payload quoted in its warning


def add_mqtt_ack(
    client: MqttClient, store: Store, prefix: str, plugs: Iterable[str],
    rules: Callable[[], Iterable[str]], may_ack: Callable[[], bool] | None = None,
) -> str:
    """Acknowledge from MQTT: a message on `<prefix>/ack` whose payload is ALERT, PLUG or RULE
    (as for `plugwatch ack`). The outcome goes to `<prefix>/ack/result` (not retained):
    `{"alert": "washer", "acknowledged": ["washer-done/washer"]}` or `{"alert": ..., "error":
    ...}`; a refused one is also one warning line. Retained messages are ignored (a retained
    ack would acknowledge every later alert on each reconnect). `may_ack()` (in a worker
    thread; clustered: "this instance holds the sender's lease") says whether this process
    answers. Returns the topic."""
    import asyncio
    import json

    topic = f"{prefix}/ack"
    plug_names = list(plugs)
    tasks: set[asyncio.Task[None]] = set()

    def answer(name: str, outcome: dict[str, Any]) -> None:
        client.publish(f"{topic}/result", json.dumps({"alert": name, **outcome}).encode(), qos=1)

    def handle(text: str) -> None:  # in a worker thread: database reads and writes
        if may_ack is not None and not may_ack():
            return
        try:
            matched = acknowledge(store, text, source="mqtt", plugs=plug_names,
                                  rules=list(rules()))
        except PlugwatchError as exc:
            log.warning("MQTT acknowledgement on %s refused: %s", topic, exc)
            answer(text, {"error": str(exc)})
            return
        answer(text, {"acknowledged": matched})

    def on_message(_topic: str, payload: bytes, retained: bool) -> None:
        if retained:
            if payload:
                log.warning("retained message on %s ignored: publish acknowledgements without "
                            "retain", topic)
            return
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = ""
        if not text or "\n" in text:
            shown = payload[:SHOWN_PAYLOAD].decode("utf-8", "replace")
            problem = (f"expected ALERT, PLUG or RULE (e.g. washer) on {topic}, got {shown!r}")
            log.warning("MQTT acknowledgement refused: %s", problem)
            answer(shown, {"error": problem})
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(handle, text))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    client.subscribe(topic, on_message, qos=1)
    return topic
