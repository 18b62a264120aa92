"""Commands: run (the service), status, history, demo (the service against emulated plugs)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from plugwatch.errors import ConfigError

if TYPE_CHECKING:
    from plugwatch.config import Config
    from plugwatch.store import Store


DEFAULT_CONFIG = "plugwatch.yaml"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add run, status, history and demo to the `plugwatch` parser."""
    run = sub.add_parser("run", help="sample every configured plug and record what happens")
    _config_arg(run)
    run.add_argument("--workers", type=int, default=1, metavar="K",
                     help="sample in K processes, the plugs shared out among them (one process "
                          "uses at most one core: about 8,000 samples/s)")
    run.add_argument("--cluster", nargs="?", const="", metavar="LEASE",
                     help="share the plugs with other instances on the same PostgreSQL database "
                          "(as `cluster:` in the config; LEASE default 15s)")
    run.add_argument("--shard", help=argparse.SUPPRESS)  # "I/K", set by --workers
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="each plug's state, since when, last power and contact")
    _config_arg(status, database=True)
    status.add_argument("--json", action="store_true", help="one JSON object per plug")
    status.add_argument("--check", action="store_true",
                        help="exit status 2 unless every plug is live and reachable (for "
                             "scripts and monitoring); the reasons on stderr")
    status.set_defaults(func=cmd_status)

    history = sub.add_parser("history", help="recorded transitions (and runs)")
    _config_arg(history, database=True)
    history.add_argument("--plug", help="only this plug")
    history.add_argument("--since", default="24h", help="how far back, e.g. 30m, 24h, 7d")
    history.add_argument("--runs", action="store_true", help="also list finished runs")
    history.add_argument("--json", action="store_true", help="JSON lines, as `replay --json`")
    history.add_argument("--alerts", action="store_true",
                         help="list the alerts (notifications) with their delivery status instead")
    history.set_defaults(func=cmd_history)

    demo = sub.add_parser("demo", help="run the real service against emulated plugs (no hardware)")
    demo.add_argument("--speed", type=float, default=60.0,
                      help="emulated time speed-up (default 60: a minute per second)")
    demo.add_argument("--duration", type=float, default=None,
                      help="seconds before it stops (default: the whole story, 80 s at speed 60)")
    demo.add_argument("--db", default="plugwatch-demo.db", help="SQLite file to record into")
    demo.set_defaults(func=cmd_demo)


def _config_arg(parser: argparse.ArgumentParser, database: bool = False) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (plugwatch.yaml)")
    tz_arg(parser)
    if database:
        parser.add_argument("--database", metavar="URL",
                            help="read this database instead of the config's (e.g. the demo's)")


def tz_arg(parser: argparse.ArgumentParser) -> None:
    """Add --tz (the zone times are printed in) to a command's parser."""
    parser.add_argument("--tz", metavar="ZONE",
                        help="print times in this IANA zone, e.g. Europe/Berlin or UTC "
                             "(default: `timezone:` in the config, else the machine's)")


def display_zone(args: argparse.Namespace, config: Any | None) -> Any:
    """The zone to print times in: --tz, else the config's `timezone:`, else the machine's."""
    from plugwatch.formatting import zone_named

    if getattr(args, "tz", None):
        return zone_named(args.tz, "--tz")
    return zone_named(config.timezone if config is not None else None)


def parse_since(text: str, now: float) -> float:
    """'24h' -> the epoch time 24 hours before `now` (ConfigError on a bad value)."""
    from plugwatch.config.durations import duration_arg

    return now - duration_arg("--since", text)


def _open(args: argparse.Namespace, need_targets: bool = False) -> tuple[Config | None, Store]:
    """(Config or None when --database is given, Store). Only `run` needs the targets' secrets."""
    from plugwatch.config import load_config
    from plugwatch.store import open_store

    if getattr(args, "database", None):
        return None, open_store(args.database)
    config = load_config(args.config, need_targets=need_targets)
    return config, open_store(config.database)


def cmd_run(args: argparse.Namespace) -> int:
    """`plugwatch run`: the service until SIGINT/SIGTERM, then a clean stop (exit 0; 1 if some
    records could not be written). A second `run` on the same database exits with one line."""
    from plugwatch.config import load_config
    from plugwatch.service.workers import parse_shard
    from plugwatch.store import open_store
    from plugwatch.store.lock import InstanceLock, lock_instance

    shard = parse_shard(args.shard)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    config = _clustered(load_config(args.config, need_targets=True, check_targets=True),
                        args.cluster)
    if not config.plugs:
        raise ConfigError(f"{args.config}: no plugs configured, so there is nothing to watch: "
                          "add at least one under `plugs:` (see docs/configuration.md)")
    if args.workers > 1 and config.cluster_lease_s is None and _is_postgresql(config.database):
        config = _clustered(config, "")  # K processes share the plugs by leases, as instances do
    store = open_store(config.database)
    try:  # one instance per database, unless they share it by leases (the lock is shared then)
        lock = InstanceLock() if shard is not None else lock_instance(
            store, shared=config.cluster_lease_s is not None)
    except BaseException:
        store.close()
        raise
    try:
        return _run_locked(args, config, store, shard)
    finally:
        lock.release()


def _run_locked(args: argparse.Namespace, config: Config, store: Store,
                shard: tuple[int, int] | None) -> int:
    """The body of `run` once this instance holds the database: workers, or the service."""
    import asyncio

    from plugwatch.service.app import run_service
    from plugwatch.service.workers import run_workers

    if args.workers > 1 and shard is None:
        from plugwatch.service.alerting import load_config_rules
        from plugwatch.service.summary import startup_summary

        try:
            rules = load_config_rules(config)  # a broken rule file stops here, not in K children
        finally:
            store.close()  # the schema is up to date before the children open the database
        for line in startup_summary(config, len(rules), workers=args.workers):
            say(line)
        tz = ["--tz", args.tz] if args.tz else []
        log_format = ["--log-format", getattr(args, "log_format", "text")]
        cluster = [] if config.cluster_lease_s is None else [
            "--cluster", f"{config.cluster_lease_s}s"]
        return run_workers(["-v"] * args.verbose + log_format + ["run", "--config", args.config,
                            *tz, *cluster], args.workers, shard=not cluster)
    tz = display_zone(args, config)
    try:
        show = [lambda event: say(describe(event, tz))]
        asyncio.run(run_service(config, store, listeners=show, shard=shard, announce=say))
    finally:
        store.close()
    return 0


def say(line: str) -> None:
    """Print `line` on stdout at once, its newline in the same write: the processes of
    `run --workers K` share stdout, and with PYTHONUNBUFFERED=1 (as under many service managers)
    print() writes the newline apart, after which another process's line can come first."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _is_postgresql(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql"))


def _clustered(config: Config, lease: str | None) -> Config:
    """`config`, clustered with `--cluster [LEASE]` (None: as the config says)."""
    import dataclasses

    from plugwatch.config.durations import duration_arg

    if lease is None:
        return config
    if not _is_postgresql(config.database):
        raise ConfigError("--cluster needs a PostgreSQL database (the instances share the plugs "
                          "through leases in it); on SQLite use --workers K")
    seconds = duration_arg("--cluster", lease) if lease else config.cluster_lease_s or 15.0
    if seconds <= 0:
        raise ConfigError(f"--cluster: the lease must be longer than zero, got {lease!r}")
    return dataclasses.replace(config, cluster_lease_s=seconds)


def cmd_status(args: argparse.Namespace) -> int:
    """`plugwatch status`: one line (or JSON object) per plug, from the running service when it
    serves HTTP, else from the database; `--check`: exit 2 unless every plug is live."""
    from plugwatch.cli.status import CHECK_FAILED, PlugStatus, from_database, from_service
    from plugwatch.config import load_config
    from plugwatch.store import open_store

    now = time.time()
    config = None if args.database else load_config(args.config, need_targets=False)
    intervals = {p.name: p.interval_s for p in config.plugs} if config is not None else {}
    plugs = None
    if config is not None and config.http is not None:
        plugs = from_service(config.http.host, config.http.port, intervals, now)
    if plugs is None:
        store = open_store(args.database or (config.database if config else ""))
        try:
            plugs = from_database(store.status(), intervals)
        finally:
            store.close()
    tz = display_zone(args, config)
    by_name = {p.plug: p for p in plugs}
    shown = [by_name.get(name) or PlugStatus.unknown(name, intervals.get(name))
             for name in (list(intervals) if config is not None else sorted(by_name))]
    for plug in shown:
        print(json.dumps(plug.json(now)) if args.json else plug.line(tz, now))
    if not args.check:
        return 0
    problems = [text for plug in shown if (text := plug.problem(now))]
    for text in problems:
        print(f"plugwatch: check: {text}", file=sys.stderr)
    return CHECK_FAILED if problems or not shown else 0


def cmd_history(args: argparse.Namespace) -> int:
    """`plugwatch history`: transitions (and runs) since a time, oldest first."""
    from plugwatch.formatting import run_json, transition_json

    config, store = _open(args)
    tz = display_zone(args, config)
    if args.plug is not None and config is not None:
        config.plug(args.plug)  # ConfigError listing the valid names
    elif args.plug is not None:  # --database only: the plugs the database knows
        known = store.plug_names()
        if args.plug not in known:
            store.close()
            raise ConfigError(f"unknown plug {args.plug!r}: the database knows "
                              f"{', '.join(known) or 'no plugs yet'}")
    since = parse_since(args.since, time.time())
    if args.alerts:
        from plugwatch.notify.history import alert_history_lines

        try:
            rows = store.alerts(since=since)
        finally:
            store.close()
        for line in alert_history_lines(rows, plug=args.plug, as_json=args.json, tz=tz):
            sys.stdout.write(line + "\n")
        return 0
    try:
        events: list[Any] = list(store.transitions(plug=args.plug, since=since))
        if args.runs:
            events += store.runs(plug=args.plug, since=since)
            events += _open_runs(store.load_snapshots(), config, args.plug)
    finally:
        store.close()
    events.sort(key=lambda e: (getattr(e, "ts", None) or e.end))
    for event in events:
        if args.json:
            shape = transition_json(event) if hasattr(event, "to_state") else run_json(event)
            sys.stdout.write(json.dumps(shape) + "\n")
        else:
            sys.stdout.write(describe(event, tz) + "\n")
    return 0


def _open_runs(snapshots: dict[str, Any], config: Any, plug: str | None) -> list[Any]:
    """The runs still going, as the detectors' snapshots hold them (`"open": true`)."""
    from plugwatch.detect import Detector
    from plugwatch.model import DetectorSettings

    settings = {p.name: p.detector for p in config.plugs} if config is not None else {}
    runs = []
    for name, (_, snap) in snapshots.items():
        if plug is None or name == plug:
            detector = Detector.restore(name, settings.get(name, DetectorSettings()), snap)
            if (run := detector.open_run()) is not None:
                runs.append(run)
    return runs


def describe(event: Any, tz: Any) -> str:
    """One human line for a Transition or a RunSummary, times in zone `tz`."""
    from plugwatch.formatting import clock, format_duration, format_energy, format_money

    if hasattr(event, "to_state"):
        power = "" if event.power_w is None else f" at {event.power_w:.1f} W"
        change = (f"state {event.to_state}" if str(event.from_state) == "unknown"
                  else f"{event.from_state} -> {event.to_state}")
        return f"{clock(event.ts, tz)}  {event.plug:<16} {change} ({event.reason}){power}"
    cost = "" if event.cost is None else f", {format_money(event.cost, event.currency or '')}"
    unseen = (f", {format_duration(event.unobserved_s)} of it unobserved"
              if getattr(event, "unobserved_s", 0.0) else "")
    what = "open run" if getattr(event, "open", False) else "run"
    return (f"{clock(event.end, tz)}  {event.plug:<16} {what} of "
            f"{format_duration(event.duration_s)}, {format_energy(event.energy_wh)}{cost}, "
            f"peak {event.peak_w:.0f} W (started {clock(event.start, tz)}){unseen}")


def cmd_demo(args: argparse.Namespace) -> int:
    """`plugwatch demo`: emulated washer, TV and flaky plug watched by the real service."""
    import asyncio

    from plugwatch.service.demo import run_demo

    if args.speed <= 0 or (args.duration is not None and args.duration <= 0):
        raise ConfigError("--speed and --duration must be positive numbers")
    if not args.verbose:  # the story tells the fridge's outage in emulated time; its real-time
        logging.getLogger("plugwatch.plugs").setLevel(logging.ERROR)  # warnings only with -v
    asyncio.run(run_demo(speed=args.speed, duration_s=args.duration, db_path=args.db))
    return 0
