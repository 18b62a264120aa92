"""`plugwatch replay`: table and JSON output, settings from flags and config, bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from plugwatch.cli import main

detect = pytest.importorskip("plugwatch.detect")
if not hasattr(detect, "replay"):
    pytest.skip("plugwatch.detect has no replay yet", allow_module_level=True)

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
TB_WASHER = (Path(__file__).parent / "data" / "traces" / "tracebase"
             / "Washingmachine__dev_7297E3_2012.01.08.csv")


def step_csv(tmp_path: Path, rows: list[str] | None = None) -> Path:
    """Every 5 s: 10 min at 0 W, 20 min at 500 W, 35 min at 0 W (unix times, with a header).

    35 min: the default off dwell (30 min) must pass for the end to be confirmed.
    """
    lines = ["time,power"]
    for i in range(780):
        watts = 500 if 120 <= i < 360 else 0
        lines.append(f"{T0 + 5 * i},{watts}")
    for line_no, text in (rows or []):  # type: ignore[misc]
        lines.insert(line_no - 1, text)
    path = tmp_path / "step.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lines_have_the_documented_fields(tmp_path: Path, capsys) -> None:
    """A clean step: off->on at the step, on->off as the average drains, one run of ~166 Wh."""
    code, out, err = run(["replay", str(step_csv(tmp_path)), "--json", "--plug", "heater"], capsys)
    assert (code, err) == (0, "")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in records] == ["state", "transition", "transition", "run"]
    first, up, down, run_ = records
    assert first == {"type": "state", "plug": "heater", "state": "off",
                     "since": "2026-01-01T00:00:00+00:00", "reason": "no_load", "power_w": 0.0}
    assert set(up) == {"type", "ts", "plug", "from", "to", "reason", "power_w"}
    assert (up["plug"], up["from"], up["to"], up["reason"]) == ("heater", "off", "on", "power")
    assert up["ts"] == "2026-01-01T00:10:00+00:00"  # stamped when the level began, not confirmed
    assert (down["from"], down["to"], down["reason"]) == ("on", "off", "no_load")
    assert set(run_) == {"type", "plug", "start", "end", "duration_s", "energy_wh", "peak_w",
                         "cost", "currency", "open", "unobserved_s"}
    assert (run_["cost"], run_["currency"]) == (None, None)  # no `price:` without a config
    assert (run_["open"], run_["unobserved_s"]) == (False, 0.0)
    assert run_["start"] == "2026-01-01T00:10:00+00:00"
    assert 1200 <= run_["duration_s"] <= 1230  # the 5-sample average takes <= 20 s to drain
    assert run_["energy_wh"] == pytest.approx(500 * 1200 / 3600, rel=0.01)
    assert run_["peak_w"] == 500


def test_table_names_changes_runs_and_settings(capsys) -> None:
    """The readable table of a real washer day, with the settings used in its header."""
    code, out, _ = run(["replay", str(TB_WASHER), "--plug", "washer",
                        "--dwell-standby", "50m", "--dwell-off", "50m"], capsys)
    assert code == 0
    assert out.startswith("washer: 58890 samples, 2012-01-08 00:00:01 .. ")
    assert "dwell on 30 s / standby 50 min / off 50 min" in out
    assert "off -> on" in out
    assert out.count(" run ") == 1
    # the run ends (and off begins) where the load first fell below on, not where 0 W began
    assert "2 transitions, 1 run; at the end off since 2012-01-08 15:37:09" in out


def test_bad_rows_are_reported_by_line_and_skipped(tmp_path: Path, capsys) -> None:
    """A row with no number and a row going back in time: named on stderr, the rest replayed."""
    path = step_csv(tmp_path, [(3, f"{T0 + 6},lots"), (6, f"{T0 - 100},0")])
    code, out, err = run(["replay", str(path), "--json"], capsys)
    assert code == 0
    assert f"{path}:3: power 'lots' is not a number" in err
    assert f"{path}:6: " in err and "goes backwards" in err
    assert len(err.splitlines()) == 2
    assert len(out.splitlines()) == 4


def test_a_plug_on_all_the_time_gives_its_state_and_an_open_run(tmp_path: Path, capsys) -> None:
    """A router on all day: the state at the start, and the run still open at the end."""
    path = tmp_path / "router.csv"
    path.write_text("time,power\n" + "".join(f"{T0 + 60 * i},{9 + i % 2}\n" for i in range(600)))
    code, out, _ = run(["replay", str(path), "--json", "--kind", "always_on", "--on", "3"], capsys)
    first, run_ = (json.loads(line) for line in out.splitlines())
    assert code == 0 and (first["type"], first["state"]) == ("state", "on")
    assert (run_["type"], run_["open"], run_["duration_s"]) == ("run", True, 599 * 60)
    assert run_["energy_wh"] == pytest.approx(9.5 * 599 / 60, rel=0.01)
    code, out, _ = run(["replay", str(path), "--kind", "always_on", "--on", "3"], capsys)
    assert "state on" in out and "open run 9 h 59 min" in out
    assert "0 transitions, 0 runs; at the end on since" in out


def test_strict_stops_at_the_first_bad_row(tmp_path: Path, capsys) -> None:
    """--strict: one error line naming file:line, no traceback, exit status 1."""
    path = step_csv(tmp_path, [(3, f"{T0 + 6},lots")])
    code, out, err = run(["replay", str(path), "--strict"], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"plugwatch: error: {path}:3: ")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(("flags", "expected"), [
    (["--dwell-on", "5x"], "--dwell-on: invalid duration '5x' (use e.g."),  # unit unknown
    (["--hysteresis", "a,b"], "--hysteresis 'a,b'"),  # not numbers
    (["--hysteresis", "0.1,0.2,0.3"], "--hysteresis"),  # three widths
    (["--standby", "20"], "standby band"),  # standby above on: the settings say why
    (["--config", "x.yaml"], "--config needs --plug"),  # whose settings?
    (["--window", "fast"], "--window: invalid duration 'fast'"),
    (["--window", "0"], "--window '0': a count of samples starts at 1"),
])
def test_bad_settings_give_one_line(tmp_path: Path, capsys, flags, expected) -> None:
    """Each bad flag: exit 1 and a single line saying what to change."""
    code, out, err = run(["replay", str(step_csv(tmp_path)), *flags], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("plugwatch: error: ") and expected in err
    assert len(err.splitlines()) == 1


def test_missing_trace_is_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run(["replay", str(tmp_path / "nope.csv")], capsys)
    assert code == 1
    assert err.startswith("plugwatch: error: cannot read trace") and len(err.splitlines()) == 1


def test_flags_override_thresholds_and_durations(tmp_path: Path, capsys) -> None:
    """Above a 600 W on threshold the 500 W load is only standby; a 30 min on dwell: no run."""
    path = str(step_csv(tmp_path))
    for flags in (["--on", "600", "--hysteresis", "0.2,50"], ["--dwell-on", "30m"]):
        code, out, _ = run(["replay", path, "--json", *flags], capsys)
        assert code == 0
        assert not any(json.loads(line)["type"] == "run" for line in out.splitlines())


@pytest.mark.parametrize(("flag", "shown"), [
    ("1m", "window 1 min"), ("0s", "window 0 s"),
    ("13", "window 1 min"),  # a count: 13 samples 5 s apart span 12 intervals
])
def test_window_is_a_duration_or_a_count_of_samples(tmp_path: Path, capsys, flag, shown) -> None:
    code, out, _ = run(["replay", str(step_csv(tmp_path)), "--window", flag], capsys)
    assert code == 0 and shown in out.splitlines()[1]


def test_settings_come_from_the_config_plug(tmp_path: Path, capsys) -> None:
    """--config/--plug: that plug's thresholds; an unknown plug lists the valid names."""
    config = tmp_path / "plugwatch.yaml"
    config.write_text(textwrap.dedent("""\
        database: sqlite:///plugwatch.db
        plugs:
          - {name: heater, driver: kasa, host: 127.0.0.1, thresholds: {on: 600},
             dwell: {standby: 2m, off: 2m}}
          - {name: lamp, driver: kasa, host: 127.0.0.1}
    """), encoding="utf-8")
    trace = str(step_csv(tmp_path))
    code, out, _ = run(["replay", trace, "--config", str(config), "--plug", "heater", "--json"],
                       capsys)
    assert code == 0  # 500 W stays below the plug's 600 W threshold: standby, never on
    assert [json.loads(line).get("to", "first: " + json.loads(line).get("state", ""))
            for line in out.splitlines()] == ["first: off", "standby", "off"]
    code, out, _ = run(["replay", trace, "--config", str(config), "--plug", "lamp", "--json"],
                       capsys)
    assert code == 0 and len(out.splitlines()) == 4
    code, _, err = run(["replay", trace, "--config", str(config), "--plug", "oven"], capsys)
    assert code == 1 and "heater" in err and "lamp" in err and len(err.splitlines()) == 1


def test_table_in_a_time_zone_and_an_open_run(tmp_path: Path, capsys) -> None:
    """--tz shows local times; a trace ending mid-load says its run is still open."""
    path = tmp_path / "cut.csv"
    rows = [f"{T0 + 5 * i},{500 if i >= 120 else 0}" for i in range(240)]
    path.write_text("time,power\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, _ = run(["replay", str(path), "--tz", "Europe/Berlin", "--plug", "oven"], capsys)
    assert code == 0
    assert "2026-01-01 01:10:00   off -> on" in out  # 00:10 UTC is 01:10 in Berlin in winter
    assert "time (Europe/Berlin)" in out
    assert out.rstrip().endswith(
        "at the end on since 2026-01-01 01:10:00 (a run still open at the end)")
