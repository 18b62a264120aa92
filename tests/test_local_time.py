"""Times as people read them: the configured zone in status, history, alerts and templates."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plugwatch.cli import main
from plugwatch.formatting import clock, format_energy, format_money, when, zone_named
from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules.model import DEFAULT_BODY
from plugwatch.rules.templates import context, render
from plugwatch.store import Batch, open_store

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-12-01 20:56:41 in Berlin (CET, UTC+1) = 19:56:41 UTC
END = datetime(2026, 12, 1, 20, 56, 41, tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("ts", "now", "text"),
    [
        (END, END + 60, "20:56"),  # today
        (END, END + 86400, "yesterday 20:56"),
        (END + 86400, END, "tomorrow 20:56"),  # a deferred alert's release
        (END, END + 5 * 86400, "1 Dec 20:56"),  # this year
        (END, END + 40 * 86400, "1 Dec 2026 20:56"),  # seen from 2027
        (END - 21 * 3600, END, "yesterday 23:56"),  # day boundaries are Berlin's, not UTC's
    ],
)
def test_when_says_today_yesterday_or_the_date(ts: float, now: float, text: str) -> None:
    assert when(ts, BERLIN, now) == text


def test_clock_is_local_wall_time_and_dst_aware() -> None:
    assert clock(END, BERLIN) == "2026-12-01 20:56:41"
    july = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
    assert clock(july, BERLIN) == "2026-07-01 14:00:00"  # CEST, UTC+2
    assert clock(END, UTC) == "2026-12-01 19:56:41"


@pytest.mark.parametrize(
    ("wh", "text"),
    [(0.42, "0.4 Wh"), (4.2, "4.2 Wh"), (45.4, "45 Wh"), (550.0, "0.55 kWh"),
     (12_430.0, "12.4 kWh"), (250_000.0, "250 kWh"), (None, "-")],
)
def test_energy_in_wh_or_kwh_by_size(wh: float | None, text: str) -> None:
    assert format_energy(wh) == text


def test_money_two_decimals_and_never_a_misleading_zero() -> None:
    assert format_money(0.1705, "EUR") == "0.17 EUR"
    assert format_money(0.001, "EUR") == "< 0.01 EUR"
    assert format_money(0.0, "EUR") == "0.00 EUR"
    assert format_money(None, "EUR") == "-"


def test_an_unknown_zone_is_one_line_naming_the_flag() -> None:
    with pytest.raises(Exception, match=r"^--tz: unknown time zone 'Mars/Base' \(use an IANA"):
        zone_named("Mars/Base", "--tz")


def test_templates_show_local_times_energy_and_money() -> None:
    """The issue's washer text: clock times, kWh and cost instead of ISO stamps."""
    t = Transition("washer", END, State.ON, State.STANDBY, "power", 2.0)
    run = RunSummary("washer", END - 94, END, 550.0, 2305.0, cost=0.1705, currency="EUR")
    ctx = context("washer-done", t, run, run.duration_s, END + 120, 0, BERLIN)
    body = render("Ran {{ run.duration }}, used {{ run.energy_wh | energy }}, "
                  "{{ run.cost | money }} (peak {{ run.peak_w | round | int }} W). "
                  "Finished at {{ end | time }}.", ctx, DEFAULT_BODY)
    assert body == "Ran 1 min 34 s, used 0.55 kWh, 0.17 EUR (peak 2305 W). Finished at 20:56."
    assert render(DEFAULT_BODY, ctx, DEFAULT_BODY) == (
        "washer is standby since 20:56 (was on for 1 min 34 s). Ran 1 min 34 s, used 0.55 kWh, "
        "0.17 EUR, peak 2305 W.")
    later = context("washer-done", t, run, run.duration_s, END + 86400, 1, BERLIN)
    assert render("{{ at | time }} / {{ run.start | time }}", later, DEFAULT_BODY) == (
        "yesterday 20:56 / yesterday 20:55")


CONFIG = """\
database: sqlite:///plugwatch.db
timezone: {zone}
plugs:
  - {{name: washer, host: 10.0.0.4}}
"""


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A config in Berlin time whose database holds one washer run ending at END."""
    (tmp_path / "plugwatch.yaml").write_text(CONFIG.format(zone="Europe/Berlin"))
    store = open_store(f"sqlite:///{tmp_path}/plugwatch.db")
    try:
        store.write_batch(Batch(
            transitions=[Transition("washer", END - 94, State.STANDBY, State.ON, "power", 2050.0),
                         Transition("washer", END, State.ON, State.STANDBY, "power", 1.6)],
            runs=[RunSummary("washer", END - 94, END, 550.0, 2305.0)],
        ))
    finally:
        store.close()
    return tmp_path / "plugwatch.yaml"


def test_history_prints_the_configured_zone_and_tz_overrides_it(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Lines in Berlin time by `timezone:`; --tz UTC prints UTC; JSON stays ISO UTC."""
    args = ["history", "--config", str(recorded), "--since", "100000d", "--runs"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("2026-12-01 20:56:41  washer") and "on -> standby" in lines[1]
    assert lines[2].startswith("2026-12-01 20:56:41  washer           run of 1 min 34 s, "
                               "0.55 kWh, peak 2305 W (started 2026-12-01 20:55:07)")
    assert main([*args, "--tz", "UTC"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("2026-12-01 19:56:41  washer")
    assert main([*args, "--json"]) == 0
    assert '"ts": "2026-12-01T19:56:41+00:00"' in capsys.readouterr().out.splitlines()[1]


def test_the_machine_zone_is_the_default(
    recorded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = CONFIG.format(zone="Europe/Berlin")
    recorded.write_text(text.replace("timezone: Europe/Berlin\n", ""))
    monkeypatch.setenv("TZ", "America/New_York")
    assert main(["history", "--config", str(recorded), "--since", "100000d"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("2026-12-01 14:56:41  washer")


def test_status_says_since_in_local_time(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The state's start in Tokyo time (04:56 on 2 Dec), said relative to today."""
    assert main(["status", "--config", str(recorded), "--tz", "Asia/Tokyo"]) == 0
    out = capsys.readouterr().out
    shown = when(END, ZoneInfo("Asia/Tokyo"), time.time())
    assert shown.endswith("04:56") and f"since {shown} (" in out and "19:56" not in out


def test_a_bad_zone_in_the_config_or_flag_is_one_line(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["history", "--config", str(recorded), "--tz", "Berlin"]) == 1
    assert capsys.readouterr().err.strip() == (
        "plugwatch: error: --tz: unknown time zone 'Berlin' (use an IANA name such as "
        "Europe/Berlin, or UTC)")
    recorded.write_text(CONFIG.format(zone="Europe/Berlinn"))
    assert main(["status", "--config", str(recorded)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("plugwatch.yaml:2: timezone: unknown time zone 'Europe/Berlinn' "
                        "(use an IANA name such as Europe/Berlin, or UTC)")
