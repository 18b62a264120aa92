"""One rule for readings: finite and physical, live (every source, via the service) and replay.

Live: the real service against misbehaving plugs over real TCP next to normal ones. Replay: the
same values as CSV rows. Both must reject the same rows and clamp the same noise.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from plugwatch.cli import main
from plugwatch.emulator.faults import FaultyPlug
from plugwatch.model import ReadFailure, Reading, State
from plugwatch.sources.validate import BadReading, Limits, check_power, check_reading, checked
from plugwatch.store import open_store
from plugwatch.testing import emulated_config, running_service
from tests.helpers import wait_for
from tests.test_service import FAST, unique

T0 = 1_767_225_600.0


@pytest.mark.parametrize(("value", "reason"), [
    (math.nan, "power nan is not a finite number"),
    (math.inf, "power inf is not a finite number"),
    (-250.0, "power -250 W is outside 0 .. 4000 W"),
    (9000.0, "power 9000 W is outside 0 .. 4000 W (raise the plug's max_power"),
])
def test_impossible_power_is_a_bad_reading_with_one_line(value: float, reason: str) -> None:
    with pytest.raises(BadReading) as err:
        check_reading(Reading(T0, value), "10.0.0.4:9999")
    assert str(err.value).startswith(f"bad reading from 10.0.0.4:9999: {reason}")
    assert "\n" not in str(err.value)


def test_noise_clamps_to_zero_and_a_configured_limit_is_kept() -> None:
    assert check_reading(Reading(T0, -0.4, True, 1.0, 230.0, -0.001), "p").power_w == 0.0
    assert check_reading(Reading(T0, -0.4, True, 1.0, 230.0, -0.001), "p").current_a == 0.0
    assert check_power(6000.0, Limits(max_power_w=7000.0)) == 6000.0
    reading = Reading(T0, 60.0, True, 12.5, 231.0, 0.26)
    assert check_reading(reading, "p") is reading  # the common case: the very same object


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("voltage_v", math.nan, "voltage nan is not a finite number"),
    ("voltage_v", 12000.0, "voltage 12000 V is outside 0 .. 300 V"),
    ("current_a", 90.0, "current 90 A is outside 0 .. 40 A"),
    ("energy_kwh", -3.0, "energy counter -3 kWh is outside"),
    ("energy_kwh", math.inf, "energy counter inf is not a finite number"),
])
def test_other_values_must_be_physical_too(field: str, value: float, reason: str) -> None:
    values = {"voltage_v": 230.0, "current_a": 0.2, "energy_kwh": 1.0, field: value}
    sample = checked(Reading(T0, 40.0, True, **values), "plug tv")
    assert isinstance(sample, ReadFailure) and sample.ts == T0
    assert sample.reason.startswith(f"bad reading from plug tv: {reason}")


@pytest.mark.parametrize("fault", ["nan", "inf", "negative", "huge", "too_much"])
async def test_a_plug_reporting_impossible_power_is_unreachable_not_on(
    fault: str, db_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Live, on SQLite and PostgreSQL: the faulty plug's reads are failures (so it turns
    unreachable, never on, and stores no reading); the normal plug next to it keeps every
    reading (a NaN used to stop every write for good). No traceback is logged."""
    bad_name, good_name = unique(fault), unique("tv")
    faulty, normal = FaultyPlug(power_w=40.0, fault=fault), FaultyPlug(power_w=60.0)
    bad_port, good_port = await faulty.start(), await normal.start()
    db = db_url
    config = emulated_config({bad_name: bad_port, good_name: good_port}, db, interval_s=0.1,
                             timeout_s=0.5, detector=FAST)
    caplog.set_level(logging.INFO)
    sampled: list[Reading] = []  # the good plug's readings as the service got them

    def listen(plug: str, sample: object) -> None:
        if plug == good_name and isinstance(sample, Reading):
            sampled.append(sample)

    try:
        async with running_service(config, sample_listeners=[listen]) as service:
            await wait_for(lambda: service.detectors[bad_name].state == State.UNREACHABLE, 10.0)
            await wait_for(lambda: len(sampled) >= 20, 10.0)
            assert service.detectors[good_name].state == State.ON
    finally:
        await faulty.stop()
        await normal.stop()
    store = open_store(db)
    try:
        assert store.readings(bad_name) == []
        good = store.readings(good_name)
        # every reading (not the plug's answers: a stranger's poller may reuse its port)
        assert [r.ts for r in good] == [r.ts for r in sampled] and len(good) >= 20
        assert all(r.power_w == 60.0 for r in good)
    finally:
        store.close()
    assert "Traceback" not in caplog.text and "OverflowError" not in caplog.text


def write_csv(tmp_path: Path, powers: list[str]) -> Path:
    path = tmp_path / "odd.csv"
    rows = [f"{T0 + 5 * i:.0f},{p}" for i, p in enumerate(powers)]
    path.write_text("time,power\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_replay_skips_the_rows_live_rejects_and_clamps_the_same_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """inf, -250 and 9000 W rows are skipped with the live rule's reason; -0.4 W is read as 0."""
    path = write_csv(tmp_path, ["0", "-0.4", "inf", "-250", "9000", "5", "5"])
    assert main(["replay", str(path), "--json"]) == 0
    err = capsys.readouterr().err
    assert f"{path}:4: power inf is not a finite number" in err
    assert f"{path}:5: power -250 W is outside 0 .. 4000 W" in err
    assert f"{path}:6: power 9000 W is outside 0 .. 4000 W" in err
    assert len(err.splitlines()) == 3
    from plugwatch.traces.reader import read_trace

    trace = read_trace(path)
    assert trace.power_w.tolist() == [0.0, 0.0, 5.0, 5.0]
    assert main(["replay", str(path), "--json", "--max-power", "10000"]) == 0
    assert len(capsys.readouterr().err.splitlines()) == 2  # 9000 W is now possible


def test_max_power_is_configured_per_plug_or_in_defaults() -> None:
    from plugwatch.config import config_from_dict

    config = config_from_dict({"defaults": {"max_power": 7000}, "plugs": [
        {"name": "oven", "host": "10.0.0.5"},
        {"name": "lamp", "host": "10.0.0.6", "max_power": 100}]})
    assert config.plug("oven").limits.max_power_w == 7000.0
    assert isinstance(checked(Reading(T0, 150.0), "lamp", config.plug("lamp").limits), ReadFailure)
