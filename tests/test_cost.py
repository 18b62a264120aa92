"""Energy cost: `price:` flat or by time of day, each run's cost stored and shown."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plugwatch.cli import main
from plugwatch.config import config_from_dict, load_config
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.errors import ConfigError
from plugwatch.model import RunSummary
from plugwatch.rules.cost import Price, run_cost
from plugwatch.store import open_store
from plugwatch.testing import running_service
from tests.helpers import Cued, wait_for

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = Price.model_validate({"per_kwh": 0.30, "currency": "EUR",
                              "tariff": [{"from": "22:00", "to": "06:00", "per_kwh": 0.20}]})


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def test_a_flat_price_is_energy_times_rate() -> None:
    run = RunSummary("washer", at(1, 19), at(1, 20, 34), 550.0, 2305.0)
    assert run_cost(run, Price(per_kwh=0.31), BERLIN) == pytest.approx(0.1705)


def test_a_run_inside_one_window_pays_that_window_rate() -> None:
    night = RunSummary("washer", at(1, 23), at(2, 1), 1000.0, 2000.0)  # across midnight
    day = RunSummary("washer", at(2, 9), at(2, 11), 1000.0, 2000.0)
    assert run_cost(night, NIGHT, BERLIN) == pytest.approx(0.20)
    assert run_cost(day, NIGHT, BERLIN) == pytest.approx(0.30)


def test_a_run_across_a_switch_over_is_split_by_time() -> None:
    """21:30-22:30: half the time at the day rate, half at the night rate."""
    run = RunSummary("dishwasher", at(1, 21, 30), at(1, 22, 30), 1200.0, 2000.0)
    assert run_cost(run, NIGHT, BERLIN) == pytest.approx(0.6 * 0.30 + 0.6 * 0.20)
    # 05:00-07:00 on the day summer time ends (25 October): one hour each side of 06:00
    autumn = RunSummary("dryer", at(25, 5, month=10), at(25, 7, month=10), 2000.0, 2000.0)
    assert run_cost(autumn, NIGHT, BERLIN) == pytest.approx(1.0 * 0.20 + 1.0 * 0.30)


@pytest.mark.parametrize(
    ("price", "problem"),
    [
        ("cheap", "price: use a price per kWh (e.g. 0.31) or {per_kwh: 0.31, currency: EUR}"),
        ({"per_kwh": -0.3}, "price.per_kwh: Input should be greater than or equal to 0"),
        ({"per_kwh": 0.3, "tariff": [{"from": "22:00", "to": "06:00", "per_kwh": 0.2},
                                     {"from": "05:00", "to": "07:00", "per_kwh": 0.1}]},
         "price: tariff windows 22:00-06:00 and 05:00-07:00 overlap"),
        ({"per_kwh": 0.3, "tariff": [{"from": "22:60", "to": "06:00", "per_kwh": 0.2}]},
         "price.tariff[0].from: invalid time '22:60' (use HH:MM, e.g. 22:00)"),
    ],
)
def test_a_bad_price_is_one_line(price: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"price": price})
    assert str(caught.value) == f"<config>:1: {problem}"


def washer(seconds: float) -> float:
    """Standby, a 1.5 s run at 1000 W, standby again."""
    return 1000.0 if 1.0 <= seconds < 2.5 else 2.0


async def test_the_service_stores_each_run_with_its_cost_and_history_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A real washer cycle over TCP: the run row carries cost and currency; history prints
    "…, 0.xx EUR, …" and --json has the same figures."""
    power = Cued(washer)
    plug = EmulatedPlug("HS110v2", alias="washer", power=power)
    emulator = Emulator()
    [port] = await emulator.start([plug])
    (tmp_path / "plugwatch.yaml").write_text(
        "database: sqlite:///pw.db\ntimezone: Europe/Berlin\n"
        "price: {per_kwh: 1000, currency: EUR}\n"  # a price that makes a 0.4 Wh run visible
        "defaults: {interval: 0.1, timeout: 0.5, window: 1,\n"
        "           dwell: {on: 0.3s, standby: 0.5s, off: 0.5s}}\n"
        f"plugs:\n  - {{name: washer, driver: kasa, host: '127.0.0.1:{port}'}}\n")
    config = load_config(tmp_path / "plugwatch.yaml")
    store = open_store(config.database)
    try:
        async with running_service(config, store):
            await wait_for(lambda: [r["state"] for r in store.status()] == ["standby"], 30.0)
            power.start(plug)
            await wait_for(lambda: bool(store.runs("washer")), 30.0)
            await asyncio.sleep(0.1)
    finally:
        await emulator.stop()
    (run,) = store.runs("washer")
    store.close()
    assert run.currency == "EUR" and run.cost == pytest.approx(run.energy_wh, rel=1e-6)
    assert main(["history", "--config", str(tmp_path / "plugwatch.yaml"), "--runs"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert f", {run.cost:.2f} EUR, peak " in line and "run of 1 s" in line
    assert main(["history", "--config", str(tmp_path / "plugwatch.yaml"), "--runs",
                 "--json"]) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["currency"] == "EUR" and last["cost"] == pytest.approx(run.cost, abs=1e-4)


def test_replay_with_a_config_prices_the_runs_and_the_rule_text_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`replay --config --plug --rules`: the run line and the alert's body carry the cost."""
    trace = Path(__file__).parent / "data" / "traces" / "tracebase" / \
        "Washingmachine__dev_7297E3_2012.01.08.csv"
    (tmp_path / "plugwatch.yaml").write_text(
        "timezone: UTC\nprice: {per_kwh: 0.30, currency: EUR}\n"
        "plugs:\n  - {name: washer, host: 10.0.0.4}\ntargets: {phone: 'json://localhost/'}\n")
    (tmp_path / "rules.yaml").write_text(
        '- {name: done, plugs: washer, when: {from: "on", to: "off"}, notify: phone,\n'
        '   body: "{{ run.energy_wh | energy }}, {{ run.cost | money }}"}\n')
    assert main(["replay", str(trace), "--config", str(tmp_path / "plugwatch.yaml"),
                 "--plug", "washer", "--rules", str(tmp_path / "rules.yaml"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    run = next(line for line in lines if line["type"] == "run")
    alert = next(line for line in lines if line["type"] == "alert")
    assert run["cost"] == pytest.approx(run["energy_wh"] / 1000 * 0.30, abs=1e-4)
    assert alert["body"] == "1.14 kWh, 0.34 EUR"
