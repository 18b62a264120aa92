"""Energy and peak of one On spell while it is being measured, and the energy of one interval.

While a plug is on and its level has dropped below on but the drop is not confirmed yet, what is
measured goes to a *tail*: it joins the run if the level comes back on, and is left out if the
drop is confirmed, because the run ends where the drop began.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plugwatch.detect.exactsum import ExactSum

MAX_PLUG_W = 4600.0  # no plug draws more (20 A at 230 V): a counter rising faster was replaced
# A rise beyond what MAX_PLUG_W could draw, plus this slack, is another plug's counter. The slack
# is generous: some counters report rarely and catch up in one step (a zigbee plug may send its
# energy once an hour), and the emulators run sped-up time.
COUNTER_SLACK_WH = 2000.0


def interval_wh(
    t0: float, p0: float, e0: float | None, t1: float, p1: float, e1: float | None, gap_s: float
) -> float | None:
    """Energy between two readings: from the plug's counter when both carry it, else trapezoids.

    A counter that went down was reset (a reboot, a `Total` reset, another plug), and one that
    rose more than the power allows was replaced: that interval uses the power instead, so a run
    never gets a negative or huge energy. An interval longer than `gap_s` is trusted to the
    counter alone (nobody saw the power then); without a usable counter it adds nothing.
    """
    dt = t1 - t0
    if e0 is not None and e1 is not None:
        delta = (e1 - e0) * 1000.0
        if 0.0 <= delta <= MAX_PLUG_W * max(dt, 0.0) / 3600.0 + COUNTER_SLACK_WH:
            return delta
    if dt > gap_s:
        return None
    return (p0 + p1) * 0.5 * dt / 3600.0


@dataclass(slots=True)
class RunMeter:
    """The measured part of an On spell that began at `start`."""

    start: float
    peak: float
    energy: ExactSum = field(default_factory=ExactSum)
    tail: ExactSum | None = None  # since an unconfirmed drop began, else None
    tail_peak: float | None = None
    unobserved: ExactSum = field(default_factory=ExactSum)  # seconds with no reading (gaps)
    tail_unobserved: ExactSum | None = None

    def add_unobserved(self, seconds: float) -> None:
        """Count a gap without readings (in the tail while a drop is pending)."""
        target = self.tail_unobserved if self.tail_unobserved is not None else self.unobserved
        target.add(seconds)

    def add_energy(self, wh: float | None) -> None:
        """Count the energy of one interval (in the tail while a drop is pending)."""
        if wh is not None:
            (self.tail if self.tail is not None else self.energy).add(wh)

    def add_power(self, watts: float, on_level: bool) -> None:
        """Count one raw reading towards the peak (the run's or, below on level, the tail's)."""
        if on_level:
            self.peak = max(self.peak, watts)
        else:
            self.tail_peak = watts if self.tail_peak is None else max(self.tail_peak, watts)

    def merge_tail(self) -> None:
        """The pending drop did not end the run: its energy and peak belong to the run."""
        if self.tail is not None:
            self.energy.merge(self.tail)
        if self.tail_peak is not None:
            self.peak = max(self.peak, self.tail_peak)
        if self.tail_unobserved is not None:
            self.unobserved.merge(self.tail_unobserved)
        self.tail = self.tail_peak = self.tail_unobserved = None

    def start_tail(self) -> None:
        """A drop below on began: measure it apart until it is confirmed or cancelled."""
        self.merge_tail()
        self.tail, self.tail_unobserved = ExactSum(), ExactSum()

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-able form for snapshots."""
        return {
            "start": self.start,
            "peak": self.peak,
            "energy": self.energy.to_list(),
            "tail": None if self.tail is None else self.tail.to_list(),
            "tail_peak": self.tail_peak,
            "unobserved": self.unobserved.to_list(),
            "tail_unobserved": None if self.tail_unobserved is None
            else self.tail_unobserved.to_list(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunMeter:
        """The inverse of to_dict()."""
        tail, tail_gaps = data.get("tail"), data.get("tail_unobserved")
        return cls(
            start=float(data["start"]),
            peak=float(data["peak"]),
            energy=ExactSum(data.get("energy", ())),
            tail=None if tail is None else ExactSum(tail),
            tail_peak=data.get("tail_peak"),
            unobserved=ExactSum(data.get("unobserved", ())),
            tail_unobserved=None if tail_gaps is None else ExactSum(tail_gaps),
        )
