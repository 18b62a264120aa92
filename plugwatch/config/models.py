"""The shape of plugwatch.yaml as pydantic models (validation only; plugwatch.config builds on it).

The sampling and detector keys are in config/tuning.py, the plug entries (one model per family)
in config/plugs.py; this module puts them together into the whole file.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from plugwatch.config.durations import parse_duration
from plugwatch.config.mqtt import MqttSection
from plugwatch.config.outputs import HttpSection, InfluxSection
from plugwatch.config.plugs import AnyPlug, describe_tag_error
from plugwatch.config.tuning import PositiveDuration, Strict, Tuning
from plugwatch.notify.targets import TargetEntry, target_entry
from plugwatch.rules.cost import PriceField

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _retention(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("forever", "never")):
        return None
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be longer than zero (write `forever` to keep every reading)")
    return seconds


class ClusterSection(Strict):
    """`cluster:`: several instances on one PostgreSQL database share the plugs by leases."""

    lease: PositiveDuration = 15.0  # an instance silent this long loses its plugs to the others


class ConfigFile(Strict):
    """The whole of plugwatch.yaml."""

    database: str = "sqlite:///plugwatch.db"
    retention: Annotated[float | None, BeforeValidator(_retention)] = 30 * 86400.0
    defaults: Tuning = Field(default_factory=Tuning)
    plugs: list[AnyPlug] = Field(default_factory=list)
    targets: dict[str, Annotated[TargetEntry, BeforeValidator(target_entry)]] = Field(
        default_factory=dict)  # an apprise URL, or {url, format, replace}
    rules: str | None = None
    http: HttpSection | None = None
    influxdb: InfluxSection | None = None
    mqtt: MqttSection | None = None
    timezone: str | None = None  # IANA name for display; None: the machine's zone
    price: PriceField | None = None  # per kWh, flat or a time-of-day tariff: each run's cost
    cluster: ClusterSection | None = None
    # readings the writer may hold while the database is away; None: 5 minutes' worth
    max_queued_readings: Annotated[int, Field(ge=1000)] | None = None

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self) -> ConfigFile:
        if self.cluster is not None and not self.database.startswith(("postgres", "postgresql")):
            raise ValueError("cluster: needs a PostgreSQL database (the instances share the plugs "
                             "through leases in it); on SQLite use `plugwatch run --workers K`")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value is None or value.upper() == "UTC":
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             "Europe/Berlin, or UTC)") from None
        return value

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
    return describe_tag_error(err) or msg
