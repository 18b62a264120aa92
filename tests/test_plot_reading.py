"""Plots a person reads without help, checked on the figures of real traces (tests/data/traces).

Each test renders a real recording the way `plugwatch plot` does and looks at what the figure
holds: the shaded state spans, every text box's extent on the canvas (matplotlib's renderer),
the average line inside a gap, the tick labels, the bytes of the file written.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.lines import Line2D
from matplotlib.text import Text

from plugwatch.detect import replay
from plugwatch.formatting import format_duration
from plugwatch.model import DetectorSettings, RunSummary, State
from plugwatch.traces.plot import DAY_S, Drawn, plot_power
from plugwatch.traces.reader import read_trace
from tests.conftest import TRACES

WASHER = TRACES / "tracebase/Washingmachine__dev_7297E3_2012.01.08.csv"
HOUSE_7 = TRACES / "refit_day/house_7_day.csv"
SETTINGS = DetectorSettings()  # what `replay` uses without flags, and so `plot`


def trace_of(path: Path, column: str | None = None) -> object:
    from plugwatch.traces.options import CsvOptions

    return read_trace(path, CsvOptions(power_col=column) if column else CsvOptions())


def draw(tmp_path: Path, trace: object, name: str = "plot.png", width: int = 1200,
         height: int = 600) -> Drawn:
    events = replay("plug", trace, SETTINGS)
    return plot_power(tmp_path / name, trace.ts, trace.power_w, SETTINGS, events,  # type: ignore[attr-defined]
                      title="plug", width=width, height=height)


def texts_on_canvas(drawn: Drawn) -> list[tuple[str, object]]:
    """Every text the figure draws (titles, labels, ticks, legend, run labels, table cells)
    with its box on the canvas, as matplotlib's renderer measures it."""
    fig = drawn.figure
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    hidden: set[Text] = set()
    for ax in fig.axes:
        if not ax.axison:  # an axes used for the table: its ticks are not drawn
            for axis in (ax.xaxis, ax.yaxis):
                hidden |= {*axis.get_ticklabels(which="both"), axis.label, axis.offsetText}
    texts = [t for t in fig.findobj(Text) if t not in hidden]
    for ax in fig.axes:
        for table in ax.tables:
            texts += [cell.get_text() for cell in table.get_celld().values()]
    frame = fig.bbox
    found = []
    for text in texts:
        if not (text.get_visible() and text.get_text().strip()):
            continue
        box = text.get_window_extent(renderer)
        if box.x1 > frame.x0 and box.x0 < frame.x1 and box.y1 > frame.y0 and box.y0 < frame.y1:
            found.append((text.get_text(), box))
    return found


def overlapping(drawn: Drawn) -> list[tuple[str, str]]:
    boxes = texts_on_canvas(drawn)
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
            if box_a.overlaps(box_b)]  # type: ignore[attr-defined]


def test_the_washer_day_is_shaded_from_its_first_sample(tmp_path: Path) -> None:
    """The tracebase washer is off from 00:00 to 13:19: that spell is shaded from the very first
    reading, and the shaded spells cover the day to the last reading without a hole."""
    trace = trace_of(WASHER)
    drawn = draw(tmp_path, trace)
    ts = trace.ts  # type: ignore[attr-defined]
    first_state, start, _ = drawn.spans[0]
    assert first_state is State.OFF and start == ts[0]
    covered = sum(b - a for _, a, b in drawn.spans) + sum(b - a for a, b in drawn.gaps)
    assert covered == pytest.approx(ts[-1] - ts[0])
    off_patches = [p for p in drawn.axes.patches if p.get_label() == "state off"
                   or p.get_facecolor()[:3] == drawn.axes.patches[0].get_facecolor()[:3]]
    leftmost = min(p.get_extents().x0 for p in off_patches)
    assert leftmost == pytest.approx(drawn.axes.transData.transform((ts[0] / DAY_S, 0))[0],
                                     abs=1.0)


def test_the_run_label_says_what_replay_says(tmp_path: Path) -> None:
    """The washer's run label has replay's duration and the energy in kWh with 2 decimals."""
    trace = trace_of(WASHER)
    drawn = draw(tmp_path, trace)
    (run,) = [e for e in replay("plug", trace, SETTINGS) if isinstance(e, RunSummary)]
    (label,) = [t.get_text() for t in drawn.run_labels]
    assert label == f"{format_duration(run.duration_s)}\n1.14 kWh"
    assert label.startswith("2 h 17 min")


@pytest.mark.parametrize("width", [1200, 640])
def test_a_fridge_day_has_no_overlapping_text(tmp_path: Path, width: int) -> None:
    """REFIT house 7's fridge gives 22 runs: no two text boxes of the figure overlap (run
    labels, legend, title, ticks, table), the runs are numbered on the chart and listed in a
    table under it, and no energy reads "0.00 kWh"."""
    drawn = draw(tmp_path, trace_of(HOUSE_7, "Appliance1"), width=width)
    shown = [text for text, _ in texts_on_canvas(drawn)]
    assert "all 22 runs together" in shown and "08 Jan" in shown and "#1" in shown
    assert overlapping(drawn) == []
    assert drawn.table and drawn.table[-1][1] == "all 22 runs together"
    numbered = [row[0] for row in drawn.table if row[0]]
    assert numbered and {t.get_text() for t in drawn.run_labels} <= set(numbered)
    assert len(drawn.run_labels) >= 1
    every = " ".join(" ".join(row) for row in drawn.table)
    assert "0.00 kWh" not in every and " Wh" in every  # small runs in Wh


def test_few_runs_are_labelled_on_the_chart_without_a_table(tmp_path: Path) -> None:
    """The REFIT 7 washer's two runs: both labelled on the chart, nothing overlapping, no
    table needed."""
    drawn = draw(tmp_path, trace_of(HOUSE_7, "Appliance5"))
    assert drawn.table == []
    assert len(drawn.run_labels) == 2 and overlapping(drawn) == []


def test_a_gap_in_the_readings_is_drawn_as_a_gap(tmp_path: Path) -> None:
    """40 minutes cut out of the washer's run (the service was down): no state is shaded over
    them, the average line breaks there, and the run label says how much was unobserved."""
    lines = WASHER.read_text().splitlines()
    kept = [line for line in lines if not "08/01/2012 14:00" <= line[:16] < "08/01/2012 14:40"]
    cut = tmp_path / "washer_gap.csv"
    cut.write_text("\n".join(kept) + "\n")
    drawn = draw(tmp_path, trace_of(cut))
    (hole,) = [(a, b) for a, b in drawn.gaps if b - a > 30 * 60]
    assert all(b <= hole[0] or a >= hole[1] for _, a, b in drawn.spans)
    (average,) = [line for line in drawn.axes.lines if isinstance(line, Line2D)
                  and str(line.get_label()).startswith("average")]
    x, y = (np.asarray(v, dtype=float) for v in average.get_data())
    inside = (x > hole[0] / DAY_S) & (x < hole[1] / DAY_S)
    assert inside.any() and np.isnan(y[inside]).all()
    assert "no readings (gap over 1 min)" in drawn.legend
    (label,) = [t.get_text() for t in drawn.run_labels]
    assert label.endswith("40 min unobserved")


def test_the_time_axis_says_the_date(tmp_path: Path) -> None:
    """Ticks read "08 Jan" at midnight and "03:00" in between (never "01-08 00"); the axis
    label names the day."""
    drawn = draw(tmp_path, trace_of(WASHER))
    drawn.figure.draw_without_rendering()
    ticks = [t.get_text() for t in drawn.axes.get_xticklabels() if t.get_text()]
    assert "08 Jan" in ticks and "09 Jan" in ticks and "03:00" in ticks
    assert not any("-" in tick for tick in ticks)
    assert drawn.axes.get_xlabel() == "time (UTC), Sun 08 Jan 2012"


def test_the_power_axis_reads_in_plain_watts(tmp_path: Path) -> None:
    """The washer day's power ticks read 0, 1, 10, 100, 1 000 (thin-space thousands), never
    "10^2"; the axis label says where the scale turns logarithmic."""
    drawn = draw(tmp_path, trace_of(WASHER))
    drawn.figure.draw_without_rendering()
    ticks = [t.get_text() for t in drawn.axes.get_yticklabels() if t.get_text()]
    assert {"0", "1", "10", "100", "1\u2009000"} <= set(ticks)
    assert not any("^" in tick or "$" in tick for tick in ticks)
    assert drawn.axes.get_ylabel() == "power (W; log scale above 1 W)"


def test_a_column_of_a_many_appliance_file_is_named_in_the_title(tmp_path: Path) -> None:
    """`plot house_7_day.csv --power-col Appliance1` says which appliance it drew; --hist too."""
    for extra in ([], ["--hist"]):
        out = tmp_path / f"fridge{len(extra)}.svg"
        proc = subprocess.run([sys.executable, "-m", "plugwatch", "plot", str(HOUSE_7),
                               "--power-col", "Appliance1", "-o", str(out), *extra],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "house_7_day, column Appliance1" in out.read_text()


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"),
                                               (".pdf", b"%PDF")])
def test_the_file_type_follows_the_extension(tmp_path: Path, suffix: str, magic: bytes) -> None:
    """-o x.png writes PNG bytes, x.svg SVG, x.pdf PDF."""
    drawn = draw(tmp_path, trace_of(HOUSE_7, "Appliance5"), name=f"day{suffix}", width=600,
                 height=300)
    assert drawn.format == suffix[1:]
    assert (tmp_path / f"day{suffix}").read_bytes().startswith(magic)


@pytest.mark.parametrize("extra", [[], ["--hist"]])
def test_another_extension_is_refused_in_one_line(tmp_path: Path, extra: list[str]) -> None:
    """-o day.jpg: one line naming the formats, exit 1, no file."""
    out = tmp_path / "day.jpg"
    proc = subprocess.run([sys.executable, "-m", "plugwatch", "plot", str(WASHER), "-o",
                           str(out), *extra], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"plugwatch: error: {out}: cannot write a .jpg file; plots "
                                   "are .png, .svg or .pdf (the extension picks the format)")
    assert not out.exists()
