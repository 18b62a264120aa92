"""Commands: calibrate (propose thresholds and dwells from readings), plot (PNG of power/histogram).

Readings come from a CSV trace (the same CSV options as `replay`) or from the database
(`--plug NAME --since 7d`). Heavy libraries are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugwatch.errors import ConfigError, PlugwatchError

if TYPE_CHECKING:
    from plugwatch.detect.calibrate import ReplayFigures



def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `calibrate` and `plot` to the `plugwatch` parser."""
    cal = sub.add_parser("calibrate", help="propose thresholds and dwell times from readings")
    _source_arguments(cal, "7d")
    cal.add_argument("--json", action="store_true", help="print one JSON object for machines")
    cal.set_defaults(func=calibrate)

    plot = sub.add_parser("plot", help="draw power, states and runs (or a histogram) to a file")
    _source_arguments(plot, "24h")
    plot.add_argument("-o", "--output", required=True, type=Path,
                      help="file to write: .png, .svg or .pdf (the extension picks the format)")
    plot.add_argument("--hist", action="store_true", help="draw the power histogram instead")
    plot.add_argument("--width", type=int, default=1200, help="pixels (default 1200)")
    plot.add_argument("--height", type=int, default=600, help="pixels (default 600)")
    plot.add_argument("--proposed", action="store_true",
                      help="detect with the settings calibrate proposes (default: as `replay`: "
                           "the built-in defaults, or the plug's with --plug, then the flags)")
    from plugwatch.cli.replay import add_tuning_arguments

    add_tuning_arguments(plot)
    plot.set_defaults(func=plot_command)


def _source_arguments(parser: argparse.ArgumentParser, since: str) -> None:
    parser.add_argument("trace", nargs="?", type=Path, help="CSV trace (or use --plug)")
    parser.add_argument("--plug", help="read this plug's readings from the database instead")
    parser.add_argument(
        "--since", default=since, help=f"how far back with --plug (default {since})"
    )
    parser.add_argument("--config", type=Path, default=Path("plugwatch.yaml"), help="config file")
    from plugwatch.traces.options import add_csv_arguments

    add_csv_arguments(parser)


def calibrate(args: argparse.Namespace) -> int:
    """Print the proposal, its reasoning, a YAML snippet and what a replay with it finds."""
    from plugwatch.cli.progress import Progress
    from plugwatch.detect.calibrate import plain_threshold, propose

    with Progress(3, "reading") as bar:
        name, trace = _load(args)
        bar.stage("calibrating")
        bar.step()
        proposal = propose(trace.ts, trace.power_w)
        bar.stage("replaying")
        bar.step()
        replayed = _replay(name, trace, proposal.settings)
        naive = plain_threshold(trace.ts, trace.power_w)
        bar.step()
    if args.json:
        out = proposal.to_json()
        out["replay"] = replayed.to_json()
        out["plain_0_5_w"] = naive.to_json()
        print(json.dumps(out, indent=2))
        return 0
    from plugwatch.formatting import format_duration, plural

    span = format_duration(float(trace.ts[-1] - trace.ts[0]))
    print(f"{name}: {plural(len(trace), 'reading')} over {span}")
    for line in proposal.reasons:
        print(f"  - {line}")
    print(f"replay with these settings: {replayed.text('off/standby flap')}")
    print(f"a plain 0.5 W threshold on raw readings: {naive.text()}")
    if replayed.changes_per_day is None:
        print("(no daily rates: the readings cover less than 12 h)")
    print("\n# paste under the plug (or defaults:) in plugwatch.yaml")
    print(proposal.yaml_snippet(), end="")
    return 0


def plot_command(args: argparse.Namespace) -> int:
    """Write the PNG asked for."""
    from plugwatch.extras import require

    require("matplotlib", "plot", "plugwatch plot")
    from plugwatch.cli.progress import Progress
    from plugwatch.detect.calibrate import histogram, propose
    from plugwatch.traces.plotfile import output_format

    output_format(args.output)  # a .jpg is refused before anything is read
    if not 100 <= args.width <= 10000 or not 100 <= args.height <= 10000:
        raise ConfigError("--width and --height must be between 100 and 10000 pixels")
    from plugwatch.traces.plot import plot_histogram, plot_power

    with Progress(3, "reading") as bar:
        name, trace = _load(args)
        bar.stage("calibrating")
        bar.step()
        proposal = propose(trace.ts, trace.power_w)
        bar.stage("drawing")
        bar.step()
        size = {"width": args.width, "height": args.height}
        shown = name if args.power_col is None else f"{name}, column {args.power_col}"
        try:
            if args.hist:
                hist = histogram(trace.ts, trace.power_w)
                title = f"{shown}: the share of time at each power, with calibrate's proposal"
                plot_histogram(args.output, hist, proposal, title=title, **size)
            else:
                settings, note = _plot_settings(args, proposal, trace)
                events = _events(name, trace, settings)
                plot_power(args.output, trace.ts, trace.power_w, settings, events, title=shown,
                           note=note, tz=_zone(args.tz), zone_name=args.tz or "UTC", **size)
        except OSError as exc:
            raise PlugwatchError(f"cannot write {args.output}: {exc.strerror}") from exc
        bar.step()
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _load(args: argparse.Namespace) -> tuple[str, Any]:  # Any: a plugwatch.traces.Trace
    """(name, trace) from the CSV file or the database; a one-line error when neither is usable."""
    if (args.trace is None) == (args.plug is None):
        raise ConfigError("give either a CSV trace file or --plug NAME (with --since), not both")
    if args.trace is not None:
        from plugwatch.traces.reader import csv_options_from_args, read_trace

        trace = read_trace(args.trace, csv_options_from_args(args))
        name = args.trace.stem
    else:
        from plugwatch.config.durations import duration_arg

        trace = _from_store(args.config, args.plug, duration_arg("--since", args.since))
        name = args.plug
    if len(trace) < 10:
        raise ConfigError(f"{name}: only {len(trace)} readings; calibrate needs at least 10")
    return name, trace


def _from_store(config_path: Path, plug: str, since_s: float) -> Any:
    """The plug's stored readings of the last `since_s` seconds, as a plugwatch.traces.Trace."""
    import time

    import numpy as np

    from plugwatch.config import load_config
    from plugwatch.store import open_store
    from plugwatch.traces.reader import Trace

    config = load_config(config_path)
    config.plug(plug)  # an unknown name is a ConfigError listing the valid ones
    now = time.time()
    store = open_store(config.database)
    try:
        readings = store.readings(plug, now - since_s, now)
    finally:
        store.close()
    ts = np.array([r.ts for r in readings], dtype=np.float64)
    power = np.array([r.power_w for r in readings], dtype=np.float64)
    return Trace(path=Path(f"database:{plug}"), ts=ts, power_w=power)


def _plot_settings(args: argparse.Namespace, proposal: Any, trace: Any) -> tuple[Any, str]:
    """The detector settings to plot with, chosen as `replay` chooses them (so both show the
    same runs), or calibrate's proposal with --proposed; and a line saying which they are."""
    import textwrap

    from plugwatch.cli.replay import describe_settings, median_step, settings_from_args

    flags = argparse.Namespace(**vars(args))
    if args.plug is None:  # a CSV trace: no plug's settings to start from
        flags.config = flags.plug = None
    base = proposal.settings if args.proposed else None
    settings = settings_from_args(flags, median_step(trace.ts), base=base)
    source = ("proposed by calibrate" if args.proposed else
              f"plug {args.plug} of {args.config}" if args.plug else "defaults")
    tuned = [name for name in ("kind", "standby", "on", "hysteresis", "window", "dwell_on",
                               "dwell_standby", "dwell_off", "gap") if getattr(args, name)]
    if tuned:
        source += " with " + ", ".join("--" + name.replace("_", "-") for name in tuned)
    note = f"settings ({source}): {describe_settings(settings)}"
    return settings, "\n".join(textwrap.wrap(note, max(40, args.width // 7)))


def _zone(name: str | None) -> Any:
    from plugwatch.traces.timeparse import zone

    return zone(name)


def _events(name: str, trace: Any, settings: Any) -> list[Any]:
    """The detector's events for the trace (the same code the service runs)."""
    from plugwatch.detect import replay

    return list(replay(name, trace, settings))


def _replay(name: str, trace: Any, settings: Any) -> ReplayFigures:
    """Figures of replaying the trace with `settings` through plugwatch.detect.replay."""
    from plugwatch.detect.calibrate import replay_figures

    events = _events(name, trace, settings)
    return replay_figures(events, float(trace.ts[0]), float(trace.ts[-1]))
