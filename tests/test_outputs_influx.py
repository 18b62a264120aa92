"""The InfluxDB output against a real InfluxDB 1.x server (Debian's influxd, started by the test),
and the 2.x write API against a real HTTP receiver that checks each request as the 2.x docs
specify (no InfluxDB 2 server is packaged for this machine)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from plugwatch.config import config_from_dict
from plugwatch.config.outputs import InfluxSection
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import DetectorSettings, Reading, RunSummary, State, Transition
from plugwatch.outputs.influx import InfluxOutput
from plugwatch.outputs.lineproto import (
    reading_head,
    reading_line,
    run_line,
    string_field,
    tag,
    transition_line,
)
from plugwatch.store import open_store
from tests.helpers import wait_for
from tests.influx_server import free_port, influx_server
from tests.observe_helpers import Switchable, one_run, running_app

FAST = DetectorSettings(window_s=0.1, on_w=10.0, on_band_w=2.0, dwell_on_s=0.3,
                        dwell_standby_s=1.0, dwell_off_s=0.5, unreachable_after=3, gap_s=5.0)


def service_config(tmp_path: Path, ports: list[int], influx_url: str) -> Any:
    return config_from_dict({
        "database": f"sqlite:///{tmp_path}/pw.db",
        "defaults": {"interval": 0.05, "timeout": 0.5},
        "plugs": [{"name": f"p{i}", "host": f"127.0.0.1:{port}"} for i, port in enumerate(ports)],
        "influxdb": {"url": influx_url, "database": "plugwatch", "flush": "0.2s"},
        "http": {"listen": "127.0.0.1:0"},
    }, detector=FAST)


def stored_readings(db: str, plugs: list[str]) -> dict[str, set[int]]:
    """plug -> the millisecond times of its readings in plugwatch's own database."""
    store = open_store(db)
    try:
        return {p: {round(r.ts * 1000) for r in store.readings(p)} for p in plugs}
    finally:
        store.close()


async def test_points_arrive_and_an_influxdb_restart_loses_none(tmp_path: Path) -> None:
    """Every reading the service stored is in InfluxDB, with voltage, current and the energy
    counter, after InfluxDB was stopped for a while and started again; the state changes and the
    run are there too."""
    influx = influx_server(tmp_path)
    load = Switchable(2.0)
    emulator = Emulator()
    ports = await emulator.start([EmulatedPlug("HS110v2", alias="p0", power=load, speed=20),
                                  EmulatedPlug("KP115", alias="p1", power=40.0)])
    config = service_config(tmp_path, ports, influx.url)
    try:
        async with running_app(config) as (outputs, _):
            out = outputs.influx
            out.backoff_s = (0.2, 0.5)  # the real schedule (1 s ... 30 s) would slow the test
            await one_run(load, outputs.view.service.detectors, "p0", 900.0, hold_s=0.5)
            await wait_for(lambda: outputs.meters.plugs["p0"].runs == 1, 10.0)
            await wait_for(lambda: out.written > 20 and len(out.lines) < 20, 10.0)  # live
            await asyncio.to_thread(influx.stop)
            down_at = out.written
            await wait_for(lambda: out.failures >= 2 and len(out.lines) > 40, 10.0)
            assert out.written == down_at  # nothing "written" while it is down
            await asyncio.to_thread(influx.start)
            await wait_for(lambda: out.down_since is None and len(out.lines) < 20, 15.0)
            await asyncio.sleep(0.3)
    finally:
        await emulator.stop()
        influx_url_alive = influx.proc is not None
    assert influx_url_alive
    stored = await asyncio.to_thread(stored_readings, config.database, ["p0", "p1"])
    try:
        rows = influx.rows("SELECT * FROM plugwatch_reading GROUP BY plug")
        states = influx.rows("SELECT * FROM plugwatch_state GROUP BY plug")
        runs = influx.rows("SELECT * FROM plugwatch_run GROUP BY plug")
    finally:
        influx.stop()
    in_influx = {p: {r["time"] for r in rows if r["plug"] == p} for p in ("p0", "p1")}
    for plug in ("p0", "p1"):
        assert len(stored[plug]) > 40
        assert in_influx[plug] == stored[plug], (plug, len(stored[plug] - in_influx[plug]))
    p1 = next(r for r in rows if r["plug"] == "p1")
    assert p1["power_w"] == 40.0 and p1["voltage_v"] == 230.0 and p1["relay_on"] is True
    assert abs(p1["current_a"] - 40.0 / 230.0) < 0.01 and p1["energy_kwh"] is not None
    assert [(s["from_state"], s["state"], s["code"]) for s in states if s["plug"] == "p0"][-2:] \
        == [("standby", "on", 3), ("on", "standby", 2)]
    [run] = [r for r in runs if r["plug"] == "p0"]
    assert run["peak_w"] == 900.0 and run["duration_s"] > 0.5 and run["energy_wh"] > 0


async def test_the_buffer_is_bounded_and_sampling_never_waits(tmp_path: Path) -> None:
    """With InfluxDB away, the buffer keeps the newest `buffer` points, counts the rest as
    dropped, and handing a reading over costs microseconds."""
    section = InfluxSection(url=f"http://127.0.0.1:{free_port()}", database="plugwatch",
                            buffer=100, batch=50, flush=0.05, timeout=0.5)
    out = InfluxOutput(section)
    out.stop_flush_s = 0.3
    stop = asyncio.Event()
    task = asyncio.create_task(out.run(stop))
    started = time.perf_counter()
    for i in range(250):
        out.on_sample("p", Reading(1_700_000_000.0 + i, 10.0))
    per_reading = (time.perf_counter() - started) / 250
    await wait_for(lambda: out.failures >= 1, 5.0)
    stop.set()
    await task
    assert len(out.lines) == 100 and out.dropped == 150 and out.written == 0
    assert out.lines[0].endswith(f" {(1_700_000_000 + 150) * 1000}")  # the oldest were dropped
    assert per_reading < 0.001


async def test_v2_write_api_request_is_what_the_docs_specify(tmp_path: Path) -> None:
    """POST /api/v2/write?org=&bucket=&precision=ms with `Authorization: Token`, line protocol as
    text/plain UTF-8; a 503 is retried and nothing is lost; a 400 drops only that batch."""
    from aiohttp import web

    token = "s3cr3t-token"
    seen: list[dict[str, Any]] = []
    answers = [503, 204, 204]

    async def write(request: web.Request) -> web.Response:
        seen.append({"method": request.method, "path": request.path,
                     "query": dict(request.query), "headers": dict(request.headers),
                     "body": (await request.read()).decode()})
        status = answers.pop(0) if answers else 204
        if status == 503:
            return web.Response(status=503, headers={"Retry-After": "1"})
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/api/v2/write", write)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    section = InfluxSection(url=f"http://127.0.0.1:{port}/", org="home", bucket="plugwatch",
                            token=token, flush=0.05)
    out = InfluxOutput(section)
    stop = asyncio.Event()
    task = asyncio.create_task(out.run(stop))
    try:
        out.on_sample("washer", Reading(1_700_000_000.5, 812.25, True, 12.5, 231.0, 3.5))
        out.on_event(Transition("washer", 1_700_000_001.0, State.STANDBY, State.ON, "power", 800.0))
        out.on_event(RunSummary("washer", 1_700_000_001.0, 1_700_000_901.0, 200.0, 2100.0))
        await wait_for(lambda: out.written == 3, 10.0)
    finally:
        stop.set()
        await task
        await runner.cleanup()
    assert len(seen) == 2 and seen[0]["body"] == seen[1]["body"]  # the 503 was retried whole
    request = seen[1]
    assert request["method"] == "POST" and request["path"] == "/api/v2/write"
    assert request["query"] == {"org": "home", "bucket": "plugwatch", "precision": "ms"}
    assert request["headers"]["Authorization"] == f"Token {token}"
    assert request["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert request["body"].split("\n") == [
        "plugwatch_reading,plug=washer power_w=812.25,voltage_v=231.0,current_a=3.5,"
        "energy_kwh=12.5,relay_on=true 1700000000500",
        'plugwatch_state,plug=washer state="on",from_state="standby",reason="power",code=3i,'
        "power_w=800.0 1700000001000",
        "plugwatch_run,plug=washer duration_s=900.0,energy_wh=200.0,peak_w=2100.0,"
        "start=1700000001.0 1700000901000",
    ]
    assert token not in repr(section)


def test_line_protocol_escapes_and_skips_non_finite_values() -> None:
    assert tag("a b,c=d") == r"a\ b\,c\=d"
    assert string_field('say "hi" \\ bye') == r'"say \"hi\" \\ bye"'
    assert reading_head("pw", "a b") == r"pw_reading,plug=a\ b "
    assert reading_line("pw_reading,plug=x ", Reading(1.0, float("nan"))) is None
    assert reading_line("pw_reading,plug=x ", Reading(1.0, 5.0, None, float("inf"))) == \
        "pw_reading,plug=x power_w=5.0 1000"
    line = transition_line("pw", Transition("x", 2.0, State.ON, State.UNREACHABLE,
                                            "read_failures", None))
    assert line == 'pw_state,plug=x state="unreachable",from_state="on",' \
        'reason="read_failures",code=4i 2000'
    priced = run_line("pw", RunSummary("x", 10.0, 70.0, 50.0, 900.0, 0.0155, "EUR"))
    assert priced == 'pw_run,plug=x duration_s=60.0,energy_wh=50.0,peak_w=900.0,start=10.0,' \
        'cost=0.0155,currency="EUR" 70000'
