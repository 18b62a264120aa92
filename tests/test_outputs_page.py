"""The status page in a real headless browser (Debian's chromium + chromedriver via selenium),
against the running service with emulated plugs: what a person sees."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugwatch.config import config_from_dict
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import DetectorSettings
from plugwatch.outputs.chart import column_maxima, nice_ceiling, state_bands
from tests.helpers import wait_for
from tests.observe_helpers import Switchable, fetch, one_run, running_app

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FAST = DetectorSettings(window_s=0.1, on_w=10.0, on_band_w=2.0, dwell_on_s=0.3,
                        dwell_standby_s=1.0, dwell_off_s=0.5, unreachable_after=3, gap_s=5.0)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium driven by selenium (skips, or fails under CI, when not installed)."""
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        reason = "chromium and chromium-driver are not installed (apt install chromium " \
                 "chromium-driver)"
        if os.environ.get("PLUGWATCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (PLUGWATCH_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="plugwatch-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1100,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def test_status_page_in_a_real_browser(browser: Any, tmp_path: Path) -> None:
    """A person sees every plug with its state and power, a chart with state bands per plug, the
    washer's finished run, no address or secret, and the page reloads by itself."""
    emulator = Emulator()
    load = Switchable(2.0)
    plugs = [EmulatedPlug("HS110v2", alias="washer", power=load),
             EmulatedPlug("KP115", alias="tv", power=85.0),
             EmulatedPlug("HS110v1", alias="fridge", power=60.0)]
    ports = await emulator.start(plugs)
    # hung rather than offline: a closed port could be taken by another process's listener
    plugs[2].hung = True
    config = config_from_dict({
        "database": f"sqlite:///{tmp_path}/pw.db",
        "defaults": {"interval": 0.1, "timeout": 0.3},
        "plugs": [{"name": p.alias, "host": f"127.0.0.1:{port}"}
                  for p, port in zip(plugs, ports, strict=True)],
        "targets": {"phone": "json://user:s3cr3t@127.0.0.1:9/"},
        "http": {"listen": "127.0.0.1:0"},
        "price": {"per_kwh": 0.31, "currency": "EUR"},
    }, detector=FAST)
    try:
        async with running_app(config) as (outputs, base):
            detectors = outputs.view.service.detectors
            await one_run(load, detectors, "washer", 1200.0, hold_s=1.0)
            try:
                await wait_for(lambda: outputs.meters.plugs["washer"].runs == 1
                               and str(detectors["fridge"].state) == "unreachable", 30.0)
            except AssertionError:
                raise AssertionError(
                    f"runs {outputs.meters.plugs['washer'].runs}, states "
                    f"{ {n: str(d.state) for n, d in detectors.items()} }") from None
            await asyncio.sleep(0.6)  # the writer has stored the run
            status, html, _ = await fetch(f"{base}/")
            seen = await asyncio.to_thread(_look_at_page, browser, f"{base}/",
                                           tmp_path / "page.png")
    finally:
        await emulator.stop()
    assert status == 200 and "s3cr3t" not in html and "127.0.0.1" not in html
    assert seen["states"] == {"washer": "standby", "tv": "on", "fridge": "unreachable"}
    assert seen["power"]["tv"] == "85.0 W"
    assert seen["charts"] == ["washer", "tv", "fridge"]
    assert all(width > 300 and height > 60 for width, height in seen["chart_sizes"])
    assert {"on", "standby"} <= seen["bands"]["washer"]
    assert seen["bands"]["fridge"] == {"unreachable"}
    [run] = seen["runs"]
    assert "ran 1 s" in run or "ran 2 s" in run
    assert "peak 1200 W" in run and run.endswith(" EUR")  # priced: `price:` in the config
    assert seen["reloaded"], "the page did not reload itself"
    assert seen["updated_after"] != seen["updated_before"]


def _look_at_page(driver: Any, url: str, shot: Path) -> dict[str, Any]:
    """What the browser shows: states, power, charts, bands, runs (read at the default 30 s
    reload: a loaded machine may take over 2 s to read them); then, at ?refresh=2, wait for a
    reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.plug")
    states = {r.find_element(By.CSS_SELECTOR, "td.name").text:
              r.find_element(By.CSS_SELECTOR, "span.state").text for r in rows}
    power = {r.find_element(By.CSS_SELECTOR, "td.name").text:
             r.find_element(By.CSS_SELECTOR, "td.power").text for r in rows}
    sections = driver.find_elements(By.CSS_SELECTOR, "section.plug-chart")
    charts = [s.find_element(By.TAG_NAME, "h2").text for s in sections]
    sizes = [(s.find_element(By.CSS_SELECTOR, "svg.chart").size["width"],
              s.find_element(By.CSS_SELECTOR, "svg.chart").size["height"]) for s in sections]
    bands = {s.find_element(By.TAG_NAME, "h2").text:
             {b.get_attribute("class").split()[-1]
              for b in s.find_elements(By.CSS_SELECTOR, "rect.band")} for s in sections}
    runs = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "li.run")]
    driver.save_screenshot(str(shot))
    driver.get(url + "?refresh=2")
    before = driver.find_element(By.ID, "generated").text
    page = driver.find_element(By.TAG_NAME, "html")
    time.sleep(1.1)  # `updated` shows whole seconds
    reloaded = True
    try:
        WebDriverWait(driver, 8).until(expected_conditions.staleness_of(page))
    except Exception:
        reloaded = False
    after = WebDriverWait(driver, 5).until(
        lambda d: d.find_element(By.ID, "generated")).text
    return {"states": states, "power": power, "charts": charts, "chart_sizes": sizes,
            "bands": bands, "runs": runs, "reloaded": reloaded, "updated_before": before,
            "updated_after": after}


def test_chart_keeps_a_short_spike_and_bands_follow_transitions() -> None:
    """The highest reading per column is drawn (a one-sample spike survives downsampling); bands
    start at the first reading and follow each transition."""
    import numpy as np

    ts = np.arange(0.0, 1000.0)
    watts = np.full(1000, 2.0)
    watts[500] = 2000.0
    peaks = column_maxima(ts, watts, 0.0, 1000.0, 10)
    assert peaks[5] == 2000.0 and peaks[4] == 2.0
    assert np.isnan(column_maxima(ts, watts, 2000.0, 3000.0, 4)).all()
    assert [nice_ceiling(v) for v in (0, 7, 2000, 2001, 0.3)] == [1, 10, 2000, 2500, 0.5]
    bands = state_bands([(100.0, "off", "on"), (300.0, "on", "standby")], "standby",
                        0.0, 1000.0, first_seen=50.0)
    assert bands == [(50.0, 100.0, "off"), (100.0, 300.0, "on"), (300.0, 1000.0, "standby")]
    assert state_bands([], "unreachable", 0.0, 10.0, None) == [(0.0, 10.0, "unreachable")]


async def test_many_plugs_get_a_page_each(tmp_path: Path) -> None:
    """With more plugs than fit, `/` lists them with links and draws no chart; `/plug/<name>`
    has that plug's chart; an unknown name is a 404 with one line."""
    from plugwatch.outputs.page import MAX_CHARTS

    emulator = Emulator()
    plugs = [EmulatedPlug("HS110v2", alias=f"p{i}", power=3.0) for i in range(MAX_CHARTS + 1)]
    ports = await emulator.start(plugs)
    config = config_from_dict({
        "database": f"sqlite:///{tmp_path}/pw.db",
        "defaults": {"interval": 0.2, "timeout": 0.5},
        "plugs": [{"name": p.alias, "host": f"127.0.0.1:{port}"}
                  for p, port in zip(plugs, ports, strict=True)],
        "http": {"listen": "127.0.0.1:0"},
    }, detector=FAST)
    try:
        async with running_app(config) as (outputs, base):
            await wait_for(lambda: all(str(d.state) == "standby"
                                       for d in outputs.view.service.detectors.values()), 10.0)
            overview = await fetch(f"{base}/")
            one = await fetch(f"{base}/plug/p3")
            missing = await fetch(f"{base}/plug/nope")
    finally:
        await emulator.stop()
    assert overview[0] == 200 and 'href="plug/p12"' in overview[1]
    assert overview[1].count('<tr class="plug"') == MAX_CHARTS + 1 and "<svg" not in overview[1]
    assert one[0] == 200 and one[1].count("<svg") == 1 and '<tr class="plug" data-plug="p3">' \
        in one[1] and "p4" not in one[1]
    assert missing[:2] == (404, "no plug named 'nope'\n")
