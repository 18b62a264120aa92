"""The shape of plugwatch.yaml as pydantic models (validation only; plugwatch.config builds on it).

Every tuning key is optional at both levels (`defaults:` and each plug) so that a plug's value can
be told apart from "not given" and merged over the defaults key by key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from plugwatch.config.durations import HINT, parse_duration
from plugwatch.sources import DRIVERS

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {value!r} ({HINT})")
    return seconds


def _retention(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("forever", "never")):
        return None
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be longer than zero (write `forever` to keep every reading)")
    return seconds


def _bands(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"standby": value, "on": value}
    if isinstance(value, dict):
        return value
    raise ValueError("use watts for both bands (e.g. 0.2) or {standby: 0.2, on: 2}")


def _outlet(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("use the outlet's 0-based index (e.g. 2) or its child id")
    if isinstance(value, int) and value < 0:
        raise ValueError("an outlet index starts at 0")
    return value


def _apprise_url(value: str) -> str:
    if not _URL.match(value):  # never echo the URL: it may hold a token
        raise ValueError("not an apprise URL (use e.g. ntfy://ntfy.sh/my-topic)")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
Watts = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bands(_Strict):
    """Hysteresis bands in W around the standby and on thresholds."""

    standby: Watts | None = None
    on: Watts | None = None


class Thresholds(_Strict):
    """Power thresholds in W; `hysteresis` is one width for both bands or one per band."""

    standby: Watts | None = None
    on: Watts | None = None
    hysteresis: Annotated[Bands, BeforeValidator(_bands)] | None = None


class Dwell(_Strict):
    """How long a new level must hold before it becomes the state."""

    on: Duration | None = None
    standby: Duration | None = None
    off: Duration | None = None


class Tuning(_Strict):
    """Sampling and detector settings, given under `defaults:` or on one plug."""

    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    window: Annotated[int, Field(ge=1, le=10_000)] | None = None
    unreachable_after: Annotated[int, Field(ge=1, le=10_000)] | None = None
    gap: PositiveDuration | None = None
    thresholds: Thresholds | None = None
    dwell: Dwell | None = None


class PlugEntry(Tuning):
    """One entry of `plugs:`."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.\-]*$")]
    driver: str = "kasa"
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    outlet: Annotated[int | str, BeforeValidator(_outlet)] | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value not in DRIVERS:
            raise ValueError(f"unknown driver {value!r} (valid: {', '.join(sorted(DRIVERS))})")
        return value


class ConfigFile(_Strict):
    """The whole of plugwatch.yaml."""

    database: str = "sqlite:///plugwatch.db"
    retention: Annotated[float | None, BeforeValidator(_retention)] = 30 * 86400.0
    defaults: Tuning = Field(default_factory=Tuning)
    plugs: list[PlugEntry] = Field(default_factory=list)
    targets: dict[str, Annotated[str, AfterValidator(_apprise_url)]] = Field(default_factory=dict)
    rules: str | None = None

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not _URL.match(value):  # never echo the value: it may hold a password
            raise ValueError(
                "not a database URL (use e.g. sqlite:///plugwatch.db or "
                "postgresql+psycopg://user@host/db)"
            )
        return value

def describe(err: dict[str, Any]) -> str:
    """A config validation error as one short sentence, never echoing a secret input."""
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/configuration.md)"
    if kind == "missing":
        return "missing (this key is required; see docs/configuration.md)"
    if kind == "string_pattern_mismatch":
        return "use letters, digits, '_', '-' or '.' (starting with a letter or digit)"
    return msg
