"""`replay --rules`: the alerts rules would have fired over recorded events, at their own times."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules import Rule
from plugwatch.rules.replay import alert_json, alert_line, replay_alerts

T0 = 1_767_614_400.0  # 2026-01-05T12:00:00+00:00


def tr(ts: float, a: str, b: str, plug: str = "washer") -> Transition:
    return Transition(plug, ts, State(a), State(b), "power", 5.0)


def test_washer_runs_give_one_alert_per_long_run_with_its_figures() -> None:
    done = Rule.model_validate({
        "name": "washer-done", "plugs": ["washer"], "notify": ["phone"],
        "when": {"from": "on", "to": ["standby", "off"], "min_duration": "10m"},
        "title": "{{ plug }} finished", "body": "{{ run.duration }}, {{ run.energy_wh }} Wh",
    })
    events = [
        tr(T0, "off", "on"), tr(T0 + 3600, "on", "standby"),
        RunSummary("washer", T0, T0 + 3600, 900.0, 2000.0),
        tr(T0 + 4000, "standby", "on"), tr(T0 + 4200, "on", "standby"),  # a 200 s blip: silent
        RunSummary("washer", T0 + 4000, T0 + 4200, 5.0, 300.0),
    ]
    alerts = replay_alerts([done], events)
    assert [(a.title, a.body) for a in alerts] == [("washer finished", "1 h, 900.0 Wh")]
    assert alert_json(alerts[0])["ts"] == "2026-01-05T13:00:00+00:00"
    assert "ALERT washer-done -> phone: washer finished" in alert_line(alerts[0])


def test_for_and_repeat_timers_fire_at_their_own_times_between_events() -> None:
    rule = Rule.model_validate({"name": "gone", "notify": ["phone"], "when": {"to": "unreachable"},
                                "for": "5m", "repeat": "1h", "max_repeats": 2})
    events = [tr(T0, "on", "unreachable", "freezer"), tr(T0 + 3 * 3600, "unreachable", "on",
                                                         "freezer")]
    alerts = replay_alerts([rule], events)
    assert [a.created_at - T0 for a in alerts] == [300, 300 + 3600, 300 + 7200]


def test_real_washer_recording_fires_washer_done_once_per_cycle() -> None:
    """Tracebase washing machine, 2012-01-08: two cycles, two alerts with their run figures."""
    from plugwatch.detect import replay
    from plugwatch.model import DetectorSettings
    from plugwatch.rules import load_rules
    from plugwatch.traces.reader import read_trace

    repo = Path(__file__).resolve().parent.parent
    washer = "tests/data/traces/tracebase/Washingmachine__dev_7297E3_2012.01.08.csv"
    trace = read_trace(repo / washer)
    events = replay("washer", trace, DetectorSettings(on_w=10, dwell_standby_s=300))
    rules = [item.rule for item in load_rules(repo / "rules")]
    alerts = [a for a in replay_alerts(rules, events) if a.rule == "washer-done"]
    assert [a.body.split(",")[0] for a in alerts] == ["Ran 1 h 4 min", "Ran 1 h"]
    assert "(peak 2269 W)" in alerts[0].body


def test_replay_command_prints_the_alerts_and_refuses_a_broken_rule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plugwatch replay TRACE --rules rules/` lists the alerts (none sent); bad rules: exit 1."""
    from plugwatch.cli import main

    repo = Path(__file__).resolve().parent.parent
    trace = str(repo / "tests/data/traces/tracebase/Washingmachine__dev_7297E3_2012.01.08.csv")
    rules = str(repo / "rules")
    args = ["replay", trace, "--plug", "washer", "--dwell-standby", "5m", "--rules", rules]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"2 alerts from the rules in {rules} for plug 'washer' (from --plug; none sent)" in out
    assert out.count("ALERT washer-done -> phone: washer finished") == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  when: {to: onn}\n  notify: p\n")
    assert main(["replay", trace, "--rules", str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:2: rule 'x': when.to[0]: unknown state 'onn'" in captured.err
    assert captured.out == ""


def test_replay_says_the_plug_name_shows_bodies_and_warns_when_no_rule_applies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's `replay trace.csv --rules rules/`: the trace is named after its file, so
    no shipped rule applies: one warning says so and how to fix it; with --plug the ALERT
    lines carry title and body, and the reminders that the trace's last hours would have
    brought (up to its last sample, not its last state change) are listed too."""
    from plugwatch.cli import main

    repo = Path(__file__).resolve().parent.parent
    trace = str(repo / "tests/data/traces/tracebase/Washingmachine__dev_7297E3_2012.01.08.csv")
    rules = str(repo / "rules")
    assert main(["replay", trace, "--rules", rules]) == 0
    out, err = capsys.readouterr()
    assert ("0 alerts from the rules in " + rules + " for plug "
            "'Washingmachine__dev_7297E3_2012.01.08' (from the file name; --plug NAME to "
            "change it; none sent)") in out
    assert err.strip() == (
        f"plugwatch: warning: no rule in {rules} is for plug "
        "'Washingmachine__dev_7297E3_2012.01.08'; only power-cut (every plug) does (they "
        "select tv, iron*, washer and plugs tagged freezer, router, pump, critical): "
        "give the plug's name with --plug NAME")
    assert main(["replay", trace, "--rules", rules, "--plug", "washer",
                 "--dwell-standby", "5m"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if "  ALERT washer-done -> phone: " in line)
    assert lines[i].startswith("2012-01-08 14:24:") and lines[i].endswith(": washer finished")
    assert lines[i + 1].startswith("    Ran 1 h ") and lines[i + 1].endswith(
        ", used 0.61 kWh (peak 2269 W). Finished at 14:24.")
    # the second run ends in standby, and the washer going off 9 minutes later (ack_when:
    # "off") stops its reminders: said, so no one wonders where the reminders went
    assert lines[-1] == ("2012-01-08 15:46:02  ACK washer-done/washer: the plug went off "
                         "(ack_when), no more reminders")
    assert "2 alerts from the rules in " in out
    # With the default dwell the run ends straight in off: ack_when: off never comes, so
    # reminders go every 15 minutes until max_repeats (8), hours before the trace ends.
    assert main(["replay", trace, "--rules", rules, "--plug", "washer"]) == 0
    alerts = [line for line in capsys.readouterr().out.splitlines() if "  ALERT " in line]
    assert len(alerts) == 9 and alerts[0].startswith("2012-01-08 15:37:09  ALERT washer-done")
    assert alerts[-1] == ("2012-01-08 17:37:09  ALERT washer-done -> phone: washer finished "
                          "(reminder 8)")
