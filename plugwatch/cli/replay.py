"""Command: `plugwatch replay TRACE.csv` runs the detector over a recorded trace and prints events.

The same detector code as the live service (the numpy batch path, with identical events), so what
a user tunes here is what runs live. Settings: built-in defaults, or a plug's from --config/--plug,
then any flag given on the command line. Heavy imports (numpy) happen inside the handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from plugwatch.errors import ConfigError

MAX_PROBLEMS_SHOWN = 20


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `replay` to the `plugwatch` parser."""
    p = sub.add_parser(
        "replay", help="run the detector over a recorded CSV trace and print its events",
        description="Run the detector over a recorded CSV trace; print transitions and runs.",
    )
    p.add_argument("trace", type=Path, help="CSV file with a time and a power column")
    p.add_argument("--config", type=Path, help="plugwatch.yaml to take the plug's settings from")
    p.add_argument("--plug", help="plug name: its settings with --config; the name shown")
    add_tuning_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON object per event and line")
    p.add_argument("--rules", metavar="PATH",
                   help="also print the alerts these rule files would have fired (none sent)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad row instead of reporting and skipping it")
    from plugwatch.traces.options import add_csv_arguments

    add_csv_arguments(p)
    p.set_defaults(func=replay_command)


def add_tuning_arguments(p: argparse.ArgumentParser) -> None:
    """The detector-setting flags of `replay` (and `plot`, so both show the same runs)."""
    tune = p.add_argument_group("detector settings (override the defaults or the plug's)")
    tune.add_argument("--kind", metavar="KIND",
                      help="appliance kind whose window and dwells to start from: "
                           "washer, dryer, dishwasher, tv, computer, fridge, freezer, kettle, "
                           "always_on, generic")
    tune.add_argument("--standby", type=float, metavar="W", help="off/standby threshold in W")
    tune.add_argument("--on", type=float, metavar="W", help="standby/on threshold in W")
    tune.add_argument("--hysteresis", metavar="W[,W]",
                      help="band half-width in W for both thresholds, or STANDBY,ON widths")
    tune.add_argument("--window", metavar="T|N",
                      help="moving average over T (e.g. 20s, 0 for none) or N samples")
    tune.add_argument("--dwell-on", metavar="T", help="time on must hold, e.g. 30s")
    tune.add_argument("--dwell-standby", metavar="T", help="time standby must hold, e.g. 3m")
    tune.add_argument("--dwell-off", metavar="T", help="time off must hold, e.g. 2m")
    tune.add_argument("--gap", metavar="T", help="a longer pause restarts the moving average")


def _seconds(flag: str, text: str) -> float:
    from plugwatch.config.durations import duration_arg

    return duration_arg(flag, text)


def _bands(text: str) -> tuple[float, float]:
    parts = [part.strip() for part in text.split(",")]
    try:
        widths = [float(part) for part in parts]
    except ValueError:
        widths = []
    if len(widths) not in (1, 2) or any(w < 0 for w in widths):
        raise ConfigError(
            f"--hysteresis {text!r}: give one width in W (e.g. 0.2) or STANDBY,ON (e.g. 0.2,2)"
        )
    return widths[0], widths[-1]


def window_seconds(text: str, step_s: float) -> float:
    """--window as seconds: a duration (20s), or a count N of samples ~`step_s` apart."""
    if text.strip().isdigit():
        count = int(text)
        if count < 1:
            raise ConfigError(f"--window {text!r}: a count of samples starts at 1 (or use 20s)")
        return (count - 1) * step_s
    return _seconds("--window", text)


def settings_from_args(args: argparse.Namespace, step_s: float = 1.0, base: Any = None) -> Any:
    """DetectorSettings: `base` when given, else the plug's from --config/--plug (else the
    defaults), then the flags.

    `step_s` (the trace's typical sample spacing) turns a --window count into seconds."""
    from plugwatch.model import DetectorSettings

    if base is not None:
        pass
    elif args.config is not None:
        if args.plug is None:
            raise ConfigError("--config needs --plug NAME to say whose settings to use")
        from plugwatch.config import load_config

        base = load_config(args.config).plug(args.plug).detector
    else:
        base = DetectorSettings()
    if args.kind is not None:
        from plugwatch.detect.kinds import kind_named

        try:
            base = kind_named(args.kind).settings(base)
        except ValueError as exc:
            raise ConfigError(f"--kind: {exc}") from None
    changes: dict[str, Any] = {}
    for flag, field in (("standby", "standby_w"), ("on", "on_w")):
        if getattr(args, flag) is not None:
            changes[field] = getattr(args, flag)
    if args.window is not None:
        changes["window_s"] = window_seconds(args.window, step_s)
    if args.hysteresis is not None:
        changes["standby_band_w"], changes["on_band_w"] = _bands(args.hysteresis)
    for flag, field in (("dwell_on", "dwell_on_s"), ("dwell_standby", "dwell_standby_s"),
                        ("dwell_off", "dwell_off_s"), ("gap", "gap_s")):
        if getattr(args, flag) is not None:
            changes[field] = _seconds("--" + flag.replace("_", "-"), getattr(args, flag))
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise ConfigError(f"detector settings: {exc}") from None


def replay_command(args: argparse.Namespace) -> int:
    """Handler of `plugwatch replay`."""
    from plugwatch.detect import replay
    from plugwatch.traces.reader import csv_options_from_args, read_trace

    settings = settings_from_args(args)  # the flags are checked before the trace is read
    config = None
    if args.config is not None:
        from plugwatch.config import load_config

        config = load_config(args.config, need_targets=False)
    if args.rules:  # a broken rule file fails before the detector runs
        from plugwatch.rules import load_checked
        from plugwatch.rules.replay import replay_rules_lines

        load_checked(args.rules)
    options = csv_options_from_args(args)
    if options.max_power_w is None and config is not None and args.plug is not None:
        options = dataclasses.replace(options, max_power_w=config.plug(args.plug).max_power_w)
    trace = read_trace(args.trace, options, strict=args.strict)
    _report_problems(trace.problems, sys.stderr)
    if args.window is not None and args.window.strip().isdigit():
        settings = settings_from_args(args, median_step(trace.ts))
    plug = args.plug or args.trace.stem
    events = replay(plug, trace, settings)
    if config is not None and config.price is not None:
        from plugwatch.rules.cost import run_pricer

        pricer = run_pricer(config.price, config.tz)
        events = pricer(events) if pricer is not None else events
    if args.json:
        _print_json(events, sys.stdout)
    else:
        print_table(plug, events, trace, settings, args.tz, sys.stdout)
    if args.rules:
        until = float(trace.ts[-1]) if len(trace.ts) else None  # timers up to the trace's end
        lines, warnings, count = replay_rules_lines(args.rules, events, plug, config,
                                             as_json=args.json, tz_name=args.tz, until=until)
        for warning in warnings:
            print(f"plugwatch: warning: {warning}", file=sys.stderr)
        if not args.json:
            named = "--plug" if args.plug else "the file name; --plug NAME to change it"
            print(f"\n{_count(count, 'alert')} from the rules in {args.rules} for plug "
                  f"{plug!r} (from {named}; none sent)")
        for line in lines:
            print(line)
    return 0


def median_step(ts: Any) -> float:
    """The typical spacing of a trace's samples in seconds (1.0 for fewer than two)."""
    import numpy as np

    return float(np.median(np.diff(ts))) if len(ts) > 1 else 1.0


def _report_problems(problems: list[str], out: TextIO) -> None:
    """Skipped rows on stderr, each naming file:line; long lists are cut short."""
    for message in problems[:MAX_PROBLEMS_SHOWN]:
        print(f"plugwatch: warning: skipped {message}", file=out)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        print(f"plugwatch: warning: ... and {more} more bad rows skipped "
              "(use --strict to stop at the first)", file=out)


def _print_json(events: list[Any], out: TextIO) -> None:
    from plugwatch.formatting import run_json, transition_json
    from plugwatch.model import Transition

    for event in events:
        record = transition_json(event) if isinstance(event, Transition) else run_json(event)
        out.write(json.dumps(record) + "\n")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _clock(ts: float, tz: Any) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def describe_settings(s: Any) -> str:
    """One line with the detector settings in use."""
    from plugwatch.formatting import format_duration as d

    return (f"kind {s.kind}, standby {s.standby_w:g}+/-{s.standby_band_w:g} W,"
            f" on {s.on_w:g}+/-{s.on_band_w:g} W,"
            f" window {d(s.window_s)}, dwell on {d(s.dwell_on_s)} / standby {d(s.dwell_standby_s)}"
            f" / off {d(s.dwell_off_s)}, gap {d(s.gap_s)}")


def print_table(
    plug: str, events: list[Any], trace: Any, settings: Any, tz_name: str | None, out: TextIO
) -> None:
    """The events as a table for people, with a header about the trace and a closing summary."""
    from plugwatch.formatting import format_duration, format_money, format_power
    from plugwatch.model import RunSummary, State, Transition
    from plugwatch.traces.timeparse import zone

    tz = zone(tz_name)
    label = tz_name or "UTC"
    first, last = float(trace.ts[0]), float(trace.ts[-1])
    out.write(f"{plug}: {len(trace)} samples, {_clock(first, tz)} .. {_clock(last, tz)} {label}"
              f" ({format_duration(last - first)})\n")
    out.write(f"settings: {describe_settings(settings)}\n\n")
    if not events:
        out.write("no state changes\n")
        return
    out.write(f"{'time (' + label + ')':<21} {'change':<22} {'reason':<13} power\n")
    runs = 0
    for event in events:
        if isinstance(event, Transition):
            first_state = event.from_state is State.UNKNOWN
            change = f"state {event.to_state}" if first_state else \
                f"{event.from_state} -> {event.to_state}"
            out.write(f"{_clock(event.ts, tz):<21} {change:<22} {event.reason:<13} "
                      f"{format_power(event.power_w)}\n")
        elif isinstance(event, RunSummary):
            runs += 0 if event.open else 1
            what = ("open run " if event.open else "run ") + format_duration(event.duration_s)
            cost = ("" if event.cost is None
                    else f"  {format_money(event.cost, event.currency or '')}")
            unseen = (f", {format_duration(event.unobserved_s)} unobserved"
                      if event.unobserved_s else "")
            out.write(f"{'':<21} {what:<22} {event.energy_wh:.1f} Wh{'':<4} "
                      f"peak {format_power(event.peak_w)}{cost}{unseen}\n")
    transitions = [e for e in events if isinstance(e, Transition)]
    changes = [e for e in transitions if e.from_state is not State.UNKNOWN]
    final = transitions[-1] if transitions else None
    out.write(f"\n{_count(len(changes), 'transition')}, {_count(runs, 'run')}")
    if final is not None:
        still = " (a run still open at the end)" if final.to_state is State.ON else ""
        out.write(f"; at the end {final.to_state} since {_clock(final.ts, tz)}{still}")
    out.write("\n")
