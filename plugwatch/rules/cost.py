"""What a run's energy cost (PURE): `price:` from plugwatch.yaml, flat or a time-of-day tariff.

    price = Price.model_validate({"per_kwh": 0.32, "currency": "EUR",
                                  "tariff": [{"from": "22:00", "to": "06:00", "per_kwh": 0.21}]})
    run_cost(run, price, tz)      # the run's energy spread over its time, each part at its rate

The detector gives a run's total energy, not its profile, so a run that crosses a tariff boundary
is charged in proportion to the time it spent on each side (a washer's heating phase is not
weighted apart). Within one rate the cost is exact.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from plugwatch.model import Event, RunSummary

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
Rate = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def hhmm(value: Any) -> Any:
    """YAML 1.1 reads an unquoted 22:00 as the base-60 integer 1320: turn it back into HH:MM."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


class TariffPeriod(BaseModel):
    """A daily window with its own price, e.g. the night rate from 22:00 to 06:00."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: Annotated[str, BeforeValidator(hhmm)] = Field(alias="from")
    end: Annotated[str, BeforeValidator(hhmm)] = Field(alias="to")
    per_kwh: Rate

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"invalid time {value!r} (use HH:MM, e.g. 22:00)")
        return value

    def minutes(self) -> tuple[int, int]:
        """(start, end) as minutes after midnight; end <= start means the window crosses it."""
        return _minutes(self.start), _minutes(self.end)


def _minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


def _flat(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"per_kwh": value}
    if not isinstance(value, dict):
        raise ValueError("use a price per kWh (e.g. 0.31) or {per_kwh: 0.31, currency: EUR}")
    return value


class Price(BaseModel):
    """`price:` in plugwatch.yaml: a price per kWh, with cheaper or dearer daily windows."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    per_kwh: Rate
    currency: Annotated[str, Field(max_length=8)] = ""
    tariff: list[TariffPeriod] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_overlap(self) -> Price:
        taken: dict[int, str] = {}
        for period in self.tariff:
            start, end = period.minutes()
            if start == end:
                raise ValueError(f"tariff window {period.start}-{period.end} is empty")
            minute = start
            while minute != end:
                if minute in taken:
                    raise ValueError(f"tariff windows {taken[minute]} and "
                                     f"{period.start}-{period.end} overlap")
                taken[minute] = f"{period.start}-{period.end}"
                minute = (minute + 1) % 1440
        return self

    def rate_at(self, minute_of_day: int) -> float:
        """The price per kWh at a local minute of the day."""
        for period in self.tariff:
            start, end = period.minutes()
            inside = start <= minute_of_day < end if start < end else (
                minute_of_day >= start or minute_of_day < end)
            if inside:
                return period.per_kwh
        return self.per_kwh


PriceField = Annotated[Price, BeforeValidator(_flat)]


def _boundaries(price: Price, start: float, end: float, tz: tzinfo) -> list[float]:
    """The tariff's switch-over moments strictly inside (start, end), in order."""
    marks = sorted({m for p in price.tariff for m in p.minutes()})
    if not marks:
        return []
    day = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, tz).date() + timedelta(days=1)
    found: list[float] = []
    while day <= last:
        for minute in marks:
            moment = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
            ts = moment.timestamp()
            if start < ts < end:
                found.append(ts)
        day += timedelta(days=1)
    return sorted(set(found))


def run_cost(run: RunSummary, price: Price, tz: tzinfo) -> float:
    """The cost of `run`'s energy: each part of its time at the rate in force then."""
    kwh = run.energy_wh / 1000.0
    duration = run.end - run.start
    if not price.tariff or duration <= 0:
        minute = datetime.fromtimestamp(run.start, tz)
        return kwh * price.rate_at(minute.hour * 60 + minute.minute)
    edges = [run.start, *_boundaries(price, run.start, run.end, tz), run.end]
    cost = 0.0
    for a, b in itertools.pairwise(edges):
        middle = datetime.fromtimestamp((a + b) / 2, tz)
        cost += kwh * (b - a) / duration * price.rate_at(middle.hour * 60 + middle.minute)
    return cost


def run_pricer(
    price: Price | None, tz: tzinfo,
) -> Callable[[Sequence[Event]], list[Event]] | None:
    """A function giving each RunSummary of a batch its cost (None without a price)."""
    if price is None:
        return None

    def priced(events: Sequence[Event]) -> list[Event]:
        return [dataclasses.replace(e, cost=round(run_cost(e, price, tz), 6),
                                    currency=price.currency)
                if isinstance(e, RunSummary) else e for e in events]

    return priced
