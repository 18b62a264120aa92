"""The per-plug part of /metrics, written straight as Prometheus text (exposition format 0.0.4).

At 10,000 plugs the per-plug families are ~280,000 sample lines; building them through
prometheus_client's metric families cost 1.7 s of CPU per scrape (docs/benchmarks.md), writing the
lines directly about a tenth of that. The service-wide families and the process metrics still go
through prometheus_client (plugwatch.outputs.metrics). Same names, types and help texts either
way; the tests parse the result with prometheus_client's own parser.
"""

from __future__ import annotations

from typing import Any

from plugwatch.model import State

STATE_CODES = {State.UNKNOWN: 0, State.OFF: 1, State.STANDBY: 2, State.ON: 3,
               State.UNREACHABLE: 4}


def escape(value: str) -> str:
    """A label value escaped as the text format wants (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value))


def plug_metrics(view: Any) -> str:
    """Every per-plug metric family of `view` (a LiveView) as exposition text."""
    detectors = list(view.service.detectors.items())
    meters = view.meters.plugs
    label = {name: f'plug="{escape(name)}"' for name, _ in detectors}
    out: list[str] = []
    add = out.append

    def head(name: str, kind: str, text: str) -> None:
        add(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")

    head("plugwatch_state", "gauge", "1 for the plug's current state, else 0")
    for name, d in detectors:
        current, lbl = d.state, label[name]
        for s in STATE_CODES:
            add(f'plugwatch_state{{{lbl},state="{s}"}} {"1.0" if s is current else "0.0"}\n')
    head("plugwatch_state_code", "gauge",
         "the plug's state as a number: 0 unknown, 1 off, 2 standby, 3 on, 4 unreachable")
    out.extend(f"plugwatch_state_code{{{label[n]}}} {STATE_CODES[d.state]}.0\n"
               for n, d in detectors)
    head("plugwatch_state_since_timestamp_seconds", "gauge",
         "when the current state began (Unix time)")
    out.extend(f"plugwatch_state_since_timestamp_seconds{{{label[n]}}} {_num(d.since)}\n"
               for n, d in detectors if d.since is not None)
    head("plugwatch_power_watts", "gauge", "smoothed power (moving average)")
    out.extend(f"plugwatch_power_watts{{{label[n]}}} {_num(d.last_power_w)}\n"
               for n, d in detectors if d.last_power_w is not None)
    lasts = [(n, d.last) for n, d in detectors if d.last is not None]
    head("plugwatch_power_raw_watts", "gauge", "power of the last reading")
    out.extend(f"plugwatch_power_raw_watts{{{label[n]}}} {_num(last[1])}\n" for n, last in lasts)
    head("plugwatch_energy_kwh_total", "counter", "the plug's own energy counter")
    out.extend(f"plugwatch_energy_kwh_total{{{label[n]}}} {_num(last[2])}\n"
               for n, last in lasts if last[2] is not None)
    head("plugwatch_last_contact_timestamp_seconds", "gauge",
         "time of the last good reading (Unix time)")
    out.extend(f"plugwatch_last_contact_timestamp_seconds{{{label[n]}}} {_num(last[0])}\n"
               for n, last in lasts)
    metered = [(n, meters[n]) for n, _ in detectors if n in meters]
    head("plugwatch_reads_total", "counter", "reads handled (good or failed)")
    out.extend(f"plugwatch_reads_total{{{label[n]}}} {m.reads}.0\n" for n, m in metered)
    head("plugwatch_read_failures_total", "counter", "failed reads by kind")
    for n, m in metered:
        for reason, count in list(m.failures.items()):
            add(f'plugwatch_read_failures_total{{{label[n]},reason="{escape(reason)}"}} '
                f"{count}.0\n")
    head("plugwatch_read_latency_seconds", "histogram",
         "from a read's start to its answer or failure")
    for n, m in metered:
        lbl, running = label[n], 0
        hist = m.latency
        for bound, count in zip(hist.bounds, hist.counts, strict=False):
            running += count
            add(f'plugwatch_read_latency_seconds_bucket{{le="{bound!r}",{lbl}}} {running}.0\n')
        running += hist.counts[-1]
        add(f'plugwatch_read_latency_seconds_bucket{{le="+Inf",{lbl}}} {running}.0\n'
            f"plugwatch_read_latency_seconds_count{{{lbl}}} {running}.0\n"
            f"plugwatch_read_latency_seconds_sum{{{lbl}}} {_num(hist.sum)}\n")
    head("plugwatch_transitions_total", "counter", "state changes since start")
    for n, m in metered:
        for to_state, count in list(m.transitions.items()):
            add(f'plugwatch_transitions_total{{{label[n]},to_state="{escape(to_state)}"}} '
                f"{count}.0\n")
    head("plugwatch_runs_total", "counter", "finished runs since start")
    out.extend(f"plugwatch_runs_total{{{label[n]}}} {m.runs}.0\n" for n, m in metered)
    return "".join(out)
