"""The output sections of plugwatch.yaml: `http:` (metrics, health, status page) and `influxdb:`.

    http: {listen: 127.0.0.1:9464}
    influxdb: {url: http://127.0.0.1:8086, database: plugwatch}                  # InfluxDB 1.x
    influxdb: {url: http://h:8086, org: home, bucket: plugwatch, token: ${INFLUX_TOKEN}}   # 2.x

Both are off unless the section is present. Secrets (token, password) never appear in a repr.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plugwatch.config.durations import parse_duration

DEFAULT_LISTEN = "127.0.0.1:9464"
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s\[\]]*)):(?P<port>\d{1,5})$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def split_listen(value: str) -> tuple[str, int]:
    """"127.0.0.1:9464" -> ("127.0.0.1", 9464); "[::1]:9464" -> ("::1", 9464); ":9464" -> all."""
    match = _LISTEN.match(value.strip())
    if not match or not 0 <= int(match.group("port")) <= 65535:
        raise ValueError(f"invalid listen address {value!r} (use host:port, e.g. {DEFAULT_LISTEN})")
    host = match.group("v6") or match.group("host") or "0.0.0.0"
    return host, int(match.group("port"))


class HttpSection(_Section):
    """`http:`: where the endpoint listens (port 0: any free port, for tests)."""

    listen: str = DEFAULT_LISTEN

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value.strip()

    @property
    def host(self) -> str:
        """The address to bind."""
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port to bind."""
        return split_listen(self.listen)[1]


def _seconds(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {value!r}")
    return seconds


class InfluxSection(_Section):
    """`influxdb:`: where readings, state changes and runs go, in line protocol over HTTP.

    `database` selects the 1.x API (`/write`), `bucket` with `org` the 2.x API (`/api/v2/write`).
    """

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    database: str | None = None
    retention_policy: str | None = None
    org: str | None = None
    bucket: str | None = None
    token: str | None = Field(default=None, repr=False)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    measurement_prefix: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")] = "plugwatch"
    batch: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush: Annotated[float, Field(gt=0)] = 1.0
    timeout: Annotated[float, Field(gt=0)] = 10.0
    buffer: Annotated[int, Field(ge=100, le=10_000_000)] = 1_000_000

    @field_validator("flush", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return _seconds(value)

    @model_validator(mode="after")
    def _one_api(self) -> InfluxSection:
        if (self.database is None) == (self.bucket is None):
            raise ValueError("give either database: (InfluxDB 1.x) or bucket: and org: (2.x)")
        if self.bucket is not None and not self.org:
            raise ValueError("bucket: needs org: (InfluxDB 2.x writes name both)")
        if (self.username is None) != (self.password is None):
            raise ValueError("username: and password: go together")
        return self

    @property
    def v2(self) -> bool:
        """True for the InfluxDB 2.x API."""
        return self.bucket is not None
