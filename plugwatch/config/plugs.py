"""The entries of `plugs:`: keys every plug has, and one model per family with its own keys.

`driver:` picks the family (default `kasa`); each family's model says which keys it takes, so a
Shelly plug cannot be given a Kasa `outlet` and an MQTT plug needs no `host`. To add a family:
write its model below (a subclass of PlugEntry, `driver: Literal["name"]`, an `address`
property) and add it, tagged with its name, to `AnyPlug`.

A validation error inside a family's keys carries the family's tag in its location
(`plugs.0.shelly.host`); `error_loc` removes it again, so messages read `plugs[0].host`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, SecretStr, Tag

from plugwatch.config.tuning import Tuning

DEFAULT_DRIVER = "kasa"


def _outlet(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("use the outlet's 0-based index (e.g. 2) or its child id")
    if isinstance(value, int) and value < 0:
        raise ValueError("an outlet index starts at 0")
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
Channel = Annotated[int, Field(ge=0, le=255)]
Name = Annotated[str, Field(min_length=1)]


class PlugEntry(Tuning):
    """The keys of every entry of `plugs:`, whatever its family."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.\-]*$")]
    driver: str
    tags: list[str] = Field(default_factory=list)

    @property
    def address(self) -> str:
        """Where the plug is, as shown to users and stored in the plugs table."""
        raise NotImplementedError


class NetworkPlug(PlugEntry):
    """A plug reached at `host` (optionally `host:port`; the loader splits it into both)."""

    host: Name
    port: Port | None = None

    def where(self, default_port: int) -> str:
        """host:port with the family's default port filled in."""
        return f"{self.host}:{self.port or default_port}"

    @property
    def address(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


class KasaPlug(NetworkPlug):
    """`driver: kasa`: a TP-Link Kasa plug on the legacy XOR protocol (TCP 9999; `transport:
    udp` polls it with datagrams on UDP 9999 instead)."""

    driver: Literal["kasa"] = "kasa"
    outlet: Annotated[int | str, BeforeValidator(_outlet)] | None = None
    transport: Literal["tcp", "udp"] = "tcp"

    @property
    def address(self) -> str:
        where = super().address
        return where if self.outlet is None else f"{where}/{self.outlet}"


class _Credentials(NetworkPlug):
    """HTTP credentials: `password` (write `${NAME}` to take it from the environment)."""

    username: Name = "admin"
    password: SecretStr | None = None


class ShellyPlug(_Credentials):
    """`driver: shelly`: a Shelly Gen1, Gen2 or Gen3 device over HTTP; `channel` is its switch."""

    driver: Literal["shelly"]
    channel: Channel = 0

    @property
    def address(self) -> str:
        return f"{super().address}/{self.channel}" if self.channel else super().address


class TasmotaPlug(_Credentials):
    """`driver: tasmota`: a Tasmota plug over HTTP; `channel` is its relay (0 = POWER1/POWER)."""

    driver: Literal["tasmota"]
    channel: Channel = 0

    @property
    def address(self) -> str:
        return f"{super().address}/{self.channel}" if self.channel else super().address


class _PyKasaPlug(NetworkPlug):
    """A plug read through python-kasa (the `[kasa-new]` extra): TP-Link account credentials."""

    username: Name | None = None  # the TP-Link (Kasa/Tapo app) account e-mail
    password: SecretStr | None = None
    outlet: Annotated[int | str, BeforeValidator(_outlet)] | None = None

    @property
    def address(self) -> str:
        where = super().address
        return where if self.outlet is None else f"{where}/{self.outlet}"


class TapoPlug(_PyKasaPlug):
    """`driver: tapo`: Tapo P110/P115, Kasa KP125M/EP25 (the SMART protocol) through python-kasa;
    `username` is the TP-Link cloud e-mail."""

    driver: Literal["tapo"]
    username: Name
    password: SecretStr


class KasaKlapPlug(_PyKasaPlug):
    """`driver: kasa-klap`: a Kasa plug whose newer firmware speaks KLAP (HS110 v4, KP115 v2...)
    through python-kasa; a plug never bound to a cloud account needs no credentials."""

    driver: Literal["kasa-klap"]


def _family(entry: Any) -> Any:
    """The tag of a plug entry: its `driver:` (default kasa); None when it is not a mapping."""
    if not isinstance(entry, dict):
        return entry.driver if isinstance(entry, PlugEntry) else None
    driver = entry.get("driver", DEFAULT_DRIVER)
    return driver if isinstance(driver, str) else repr(driver)


AnyPlug = Annotated[
    Annotated[KasaPlug, Tag("kasa")]
    | Annotated[ShellyPlug, Tag("shelly")]
    | Annotated[TasmotaPlug, Tag("tasmota")]
    | Annotated[TapoPlug, Tag("tapo")]
    | Annotated[KasaKlapPlug, Tag("kasa-klap")],
    Discriminator(_family),
]
FAMILIES: tuple[str, ...] = ("kasa", "shelly", "tasmota", "tapo", "kasa-klap")  # AnyPlug tags


def error_loc(loc: tuple[int | str, ...], err: dict[str, Any]) -> tuple[int | str, ...]:
    """The user's location of a validation error: the family tag dropped, `driver` named when
    the tag itself is wrong."""
    if len(loc) >= 2 and loc[0] == "plugs" and isinstance(loc[1], int):
        if err.get("type") == "union_tag_invalid":
            return (*loc[:2], "driver")
        if len(loc) >= 3 and loc[2] in FAMILIES:
            return (*loc[:2], *loc[3:])
    return loc


def describe_tag_error(err: dict[str, Any]) -> str | None:
    """The sentence for a wrong or missing `driver:`, or None for other errors."""
    if err.get("type") == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        return f"unknown driver {tag!r} (valid: {', '.join(sorted(FAMILIES))})"
    if err.get("type") == "union_tag_not_found":
        return "a plug must be a mapping (name:, driver:, host:, ...)"
    return None
