"""`plugwatch calibrate` and `plugwatch plot` as a user runs them, on real traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import TRACES
from tests.test_plot import png_size

HOUSE_7 = str(TRACES / "refit_day/house_7_day.csv")


def plugwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plugwatch", *args], capture_output=True, text=True, timeout=60
    )


def test_calibrate_prints_reasoning_and_a_yaml_snippet() -> None:
    """The user sees the levels found, the comparison with 0.5 W, and YAML to paste."""
    proc = plugwatch("calibrate", HOUSE_7, "--power-col", "Appliance5")
    assert proc.returncode == 0, proc.stderr
    assert "standby levels: 0.977 W" in proc.stdout
    assert "a plain 0.5 W threshold on raw readings: 1,510 runs" in proc.stdout
    assert (
        "\nthresholds: {standby: 0.3, on: 3.5, hysteresis: {standby: 0.12, on: 0.49}}\n"
        in proc.stdout
    )
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_calibrate_json_is_one_object_for_machines() -> None:
    """--json prints settings, levels and figures as one JSON document."""
    proc = plugwatch("calibrate", HOUSE_7, "--power-col", "Appliance5", "--json")
    data = json.loads(proc.stdout)
    assert data["settings"]["on_w"] == 3.5
    assert data["plain_0_5_w"]["flaps"] == 1509
    assert any(m["power_w"] > 1500 for m in data["active_modes"])


def test_plot_writes_png_of_the_asked_size(tmp_path: Path) -> None:
    """`plot -o` writes a PNG with the asked pixels; --hist too."""
    out = tmp_path / "w.png"
    proc = plugwatch(
        "plot",
        HOUSE_7,
        "--power-col",
        "Appliance5",
        "-o",
        str(out),
        "--width",
        "640",
        "--height",
        "320",
    )
    assert proc.returncode == 0, proc.stderr
    assert png_size(out) == (640, 320)
    hist = tmp_path / "h.png"
    assert (
        plugwatch(
            "plot", HOUSE_7, "--power-col", "Appliance5", "--hist", "-o", str(hist)
        ).returncode
        == 0
    )
    assert png_size(hist) == (1200, 600)


def test_bad_inputs_give_one_clear_line(tmp_path: Path) -> None:
    """Missing source, bad --since and an unwritable output each give one line, no traceback."""
    for args, expected in [
        (["calibrate"], "give either a CSV trace file or --plug NAME"),
        (
            ["calibrate", "--plug", "washer", "--since", "a week"],
            "--since: invalid duration 'a week' (use e.g.",
        ),
        (
            ["plot", HOUSE_7, "--power-col", "Appliance5", "-o", str(tmp_path / "no/dir/x.png")],
            "cannot write",
        ),
    ]:
        proc = plugwatch(*args)
        assert proc.returncode == 1
        assert expected in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_calibrate_and_plot_from_the_database(tmp_path: Path) -> None:
    """`--plug NAME --since` reads the stored readings and proposes what the CSV gives."""
    import time

    import numpy as np

    from plugwatch.config import load_config
    from plugwatch.model import Reading
    from plugwatch.store import Batch, open_store

    config = tmp_path / "plugwatch.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'pw.db'}\nplugs:\n  - {{name: washer, host: 127.0.0.1}}\n"
    )
    data = np.loadtxt(HOUSE_7, delimiter=",", skiprows=1, usecols=(1, 7))
    shift = time.time() - 60 - data[-1, 0]  # the recorded day ends a minute ago
    store = open_store(load_config(config).database)
    try:
        store.ensure_plugs(load_config(config).plugs)
        rows = [("washer", Reading(ts=float(t + shift), power_w=float(w))) for t, w in data]
        store.write_batch(Batch(readings=rows))
    finally:
        store.close()
    from_db = plugwatch("calibrate", "--plug", "washer", "--since", "2d", "--config", str(config))
    assert from_db.returncode == 0, from_db.stderr
    from_csv = plugwatch("calibrate", HOUSE_7, "--power-col", "Appliance5")
    assert from_db.stdout.split("# paste")[1] == from_csv.stdout.split("# paste")[1]
    assert "replay with these settings: 2 runs" in from_db.stdout
    out = tmp_path / "db.png"
    args = ("plot", "--plug", "washer", "--since", "24h", "--config", str(config), "-o", str(out))
    assert plugwatch(*args).returncode == 0
    assert png_size(out) == (1200, 600)
    unknown = plugwatch("calibrate", "--plug", "dryer", "--config", str(config))
    assert unknown.returncode == 1 and "washer" in unknown.stderr  # names the valid plugs
