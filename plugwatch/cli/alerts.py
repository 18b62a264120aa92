"""Commands: `ack` (stop an alert's reminders, or list the active alerts), `silence`.

    plugwatch ack                          # the active alerts, with what can be acknowledged
    plugwatch ack washer                   # every active alert of the washer (or of a rule)
    plugwatch ack washer-done/washer       # one rule's alert for one plug
    plugwatch silence washer --for 2h      # no messages about the washer for 2 hours
    plugwatch silence tag:laundry --for 1d --comment "on holiday"
    plugwatch silence --list | --expire ID

They write to the database only; the running service applies them within about a second.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from plugwatch.errors import ConfigError

if TYPE_CHECKING:
    from plugwatch.config import Config
    from plugwatch.store import Store


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `ack` and `silence` to the `plugwatch` parser."""
    from plugwatch.cli.service import _config_arg

    ack = sub.add_parser("ack", help="acknowledge an alert so its reminders stop")
    ack.add_argument("alert", nargs="?", metavar="ALERT|PLUG|RULE",
                     help="RULE/PLUG as listed, a plug (all its alerts) or a rule (all of its); "
                          "none: list the active alerts")
    ack.add_argument("--note", help="a note kept with the acknowledgement")
    _config_arg(ack)
    ack.set_defaults(func=cmd_ack)

    silence = sub.add_parser("silence", help="hold back the notifications of a plug, rule or tag")
    silence.add_argument("what", nargs="?", metavar="PLUG|RULE|tag:NAME",
                         help="a plug or rule name (or plug:GLOB, rule:GLOB, tag:NAME); "
                              "none: list the silences in force")
    silence.add_argument("--for", dest="duration", metavar="DURATION",
                         help="how long, e.g. 30m, 2h, 1d")
    silence.add_argument("--comment", help="why (shown by --list)")
    silence.add_argument("--list", action="store_true", help="the silences in force")
    silence.add_argument("--expire", type=int, metavar="ID", help="end silence ID now")
    _config_arg(silence)
    silence.set_defaults(func=cmd_silence)


def _open(args: argparse.Namespace) -> tuple[Config, Store, list[str]]:
    """The config, its store and the names of its rules."""
    from plugwatch.config import load_config
    from plugwatch.service.alerting import load_config_rules
    from plugwatch.store import open_store

    config = load_config(args.config, need_targets=False)
    rules = [rule.name for rule in load_config_rules(config)]
    return config, open_store(config.database), rules


def cmd_ack(args: argparse.Namespace) -> int:
    """`plugwatch ack [ALERT|PLUG|RULE]`."""
    from plugwatch.cli.service import display_zone
    from plugwatch.formatting import when
    from plugwatch.service.controls import acknowledge, active_alerts

    config, store, rules = _open(args)
    tz, now = display_zone(args, config), time.time()
    try:
        if args.alert is None:
            active = active_alerts(store)
            if not active:
                print("no active alerts")
            for ep in active:
                fired = ep.active_at if ep.active_at is not None else ep.trigger.ts
                state = ("acknowledged " + when(ep.acked_at, tz, now) if ep.acked_at is not None
                         else f"inhibited by {ep.held}" if ep.held is not None
                         else f"next reminder {when(ep.fire_at, tz, now)}"
                         if ep.fire_at is not None else "no more reminders")
                print(f"{ep.rule}/{ep.plug:<24} since {when(fired, tz, now)}, "
                      f"{ep.n} sent, {state}")
            return 0
        matched = acknowledge(store, args.alert, source="cli", note=args.note,
                              plugs=[p.name for p in config.plugs], rules=rules)
    finally:
        store.close()
    print(f"acknowledged {', '.join(matched)}: no more reminders "
          "(the running service applies it within a second)")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    """`plugwatch silence WHAT --for D`, `--list`, `--expire ID`."""
    from plugwatch.cli.service import display_zone
    from plugwatch.config.durations import duration_arg
    from plugwatch.formatting import when
    from plugwatch.service.controls import silence

    config, store, rules = _open(args)
    tz, now = display_zone(args, config), time.time()
    try:
        if args.expire is not None:
            if not store.expire_silence(args.expire, now):
                raise ConfigError(f"no silence {args.expire} in force (see `plugwatch silence "
                                  "--list`)")
            print(f"silence {args.expire} ended")
            return 0
        if args.what is None or args.list:
            found = store.silences(ending_after=now)
            if not found:
                print("no silences in force")
            for s in found:
                note = f"  ({s.comment})" if s.comment else ""
                print(f"{s.id:>4}  {s.label:<32} until {when(s.ends, tz, now)}{note}")
            return 0
        if args.duration is None:
            raise ConfigError("silence needs --for DURATION (e.g. --for 2h)")
        tags = {t for p in config.plugs for t in p.tags}
        made = silence(store, args.what, duration_arg("--for", args.duration),
                       plugs=[p.name for p in config.plugs], rules=rules, tags=tags,
                       comment=args.comment, now=now)
    finally:
        store.close()
    print(f"silenced {made.label} until {when(made.ends, tz, now)} (id {made.id}; "
          f"`plugwatch silence --expire {made.id}` ends it)")
    return 0
