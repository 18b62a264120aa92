"""An emulated plug replaying a recorded trace (tracebase washing machine) in emulated time."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from plugwatch.emulator import EmulatedPlug
from plugwatch.emulator.trace import load_trace_power, trace_power
from plugwatch.errors import TraceError
from plugwatch.traces.reader import read_trace
from tests.helpers import Clock

TRACEBASE = Path(__file__).parent / "data" / "traces" / "tracebase"
WASHER = TRACEBASE / "Washingmachine__dev_7297E3_2012.01.08.csv"


def test_power_steps_hold_between_samples_and_loop() -> None:
    power = trace_power([100.0, 110.0, 120.0], [1.0, 2.0, 3.0])
    assert [power(t) for t in (0, 9.9, 10, 19, 20, 29.9)] == [1, 1, 2, 2, 3, 3]
    assert [power(t) for t in (30, 40, 55)] == [1, 2, 3]  # period = span + one step


def test_empty_trace_is_a_trace_error() -> None:
    with pytest.raises(TraceError):
        trace_power([], [])


def test_real_washer_trace_replays_its_peak_at_the_right_emulated_second() -> None:
    trace = read_trace(WASHER)
    rel = trace.ts - trace.ts[0]
    clock = Clock()
    plug = EmulatedPlug("HS110v2", power=load_trace_power(WASHER), speed=60, clock=clock)
    peak = int(trace.power_w.argmax())
    clock.now = rel[peak] / 60  # real seconds to reach the peak at speed 60
    assert plug.outlets[0].power_w() == trace.power_w[peak] == 2316.0
    # energy counter = the integral of the trace's step function up to now
    expected_wh = float((trace.power_w[:peak] * (rel[1:peak + 1] - rel[:peak])).sum()) / 3600
    assert plug.energy_wh == pytest.approx(expected_wh, rel=0.01)


def test_emulate_command_serves_a_trace() -> None:
    """`plugwatch emulate --trace FILE --speed X` serves powers taken from the trace."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugwatch", "emulate", "--port", str(port), "--trace",
         str(WASHER), "--speed", "600", "--no-discovery"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        read = subprocess.run(
            [sys.executable, "-m", "plugwatch", "read", f"127.0.0.1:{port}", "--json"],
            capture_output=True, text=True, timeout=30,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert read.returncode == 0, read.stderr
    power = json.loads(read.stdout)["power_w"]
    assert power in set(read_trace(WASHER).power_w.tolist())
    assert proc.returncode == 0 and err == ""


def test_emulate_with_a_missing_trace_is_one_line(tmp_path) -> None:
    missing = tmp_path / "nope.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "plugwatch", "emulate", "--port", "1", "--trace", str(missing),
         "--no-discovery"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith("plugwatch: error: ") and "nope.csv" in line
