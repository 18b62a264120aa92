"""The entries of `plugs:`: keys every plug has, and one model per family with its own keys.

`driver:` picks the family (default `kasa`); each family's model says which keys it takes, so a
Shelly plug cannot be given a Kasa `outlet` and an MQTT plug needs no `host`. To add a family:
write its model below (a subclass of PlugEntry, `driver: Literal["name"]`, an `address`
property) and add it, tagged with its name, to `AnyPlug`.

A validation error inside a family's keys carries the family's tag in its location
(`plugs.0.shelly.host`); `error_loc` removes it again, so messages read `plugs[0].host`.
A validated entry is kept as a `PackedEntry` (its values in a tuple) for as long as the config.
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, SecretStr, Tag

from plugwatch.config.tuning import PositiveDuration, Tuning

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


def _topic_part(value: str) -> str:
    if "+" in value or "#" in value or not value.strip("/"):
        raise ValueError("an MQTT topic part cannot contain + or # or be only slashes")
    return value


Topic = Annotated[str, Field(min_length=1), AfterValidator(_topic_part)]


class MqttPlugEntry(PlugEntry):
    """A plug that reports over MQTT (needs the `mqtt:` section). `stale_after`: silence longer
    than this is unreachable (default: three of the family's report periods)."""

    stale_after: PositiveDuration | None = None
    report_period_s: ClassVar[float] = 60.0  # how often the family reports when nothing changes

    def stale_after_s(self, interval_s: float) -> float:
        """`stale_after`, or three report periods (at least three intervals)."""
        if self.stale_after is not None:
            return self.stale_after
        return 3 * max(self.report_period_s, interval_s)


class TasmotaMqttPlug(MqttPlugEntry):
    """`driver: tasmota-mqtt`: a Tasmota plug's MQTT topics (`tele/<topic>/SENSOR`, ...); with
    `poll` the service asks for `Status 8` at the plug's interval."""

    driver: Literal["tasmota-mqtt"]
    topic: Topic
    full_topic: Topic = "%prefix%/%topic%/"
    channel: Channel = 0
    poll: bool = True
    report_period_s: ClassVar[float] = 300.0  # TelePeriod's default, when not polled

    def stale_after_s(self, interval_s: float) -> float:
        if self.poll and self.stale_after is None:
            return 3 * interval_s  # each poll is answered within an interval
        return super().stale_after_s(interval_s)

    @property
    def address(self) -> str:
        return f"mqtt:{self.topic}" + (f"/{self.channel}" if self.channel else "")


class ShellyMqttPlug(MqttPlugEntry):
    """`driver: shelly-mqtt`: a Shelly Gen2+ device's MQTT topic prefix and switch (or pm1)."""

    driver: Literal["shelly-mqtt"]
    prefix: Topic
    channel: Channel = 0
    component: Literal["switch", "pm1"] = "switch"

    @property
    def address(self) -> str:
        return f"mqtt:{self.prefix}/{self.component}:{self.channel}"


class Zigbee2MqttPlug(MqttPlugEntry):
    """`driver: zigbee2mqtt`: a zigbee plug behind zigbee2mqtt, by its friendly name."""

    driver: Literal["zigbee2mqtt"]
    device: Topic
    base_topic: Topic = "zigbee2mqtt"
    report_period_s: ClassVar[float] = 600.0  # zigbee2mqtt's own availability timeout

    @property
    def address(self) -> str:
        return f"mqtt:{self.base_topic}/{self.device}"


class PackedEntry:
    """A validated plug entry kept small while the config lives: its model class, the names of
    the keys the file gave (one tuple for all entries that gave the same keys) and their values;
    every other field has its default. A pydantic model costs about 0.8 KB a plug, mostly its
    `__dict__` and fields-set; this about 0.1 KB. `entry()` builds an equal model again (the
    defaults filled in), without validating it again."""

    __slots__ = ("_given", "_model", "_values")
    _shared: ClassVar[dict[tuple[str, ...], tuple[str, ...]]] = {}

    def __init__(self, entry: PlugEntry) -> None:
        self._model = type(entry)
        given = tuple(name for name in self._model.model_fields if name in entry.model_fields_set)
        self._given = self._shared.setdefault(given, given)
        self._values = tuple(getattr(entry, name) for name in given)

    def entry(self) -> PlugEntry:
        """The entry as its family's model (a new object each time, equal to the packed one)."""
        defaults, mutable = _defaults(self._model)
        values = dict(defaults)
        for name in mutable:  # a list default: each entry its own
            values[name] = copy.copy(values[name])
        values.update(zip(self._given, self._values, strict=True))
        # every field given: model_construct asks no default (for a default factory it reads
        # the factory's signature, 0.3 ms, which made 25,000 plugs start 7 s later)
        return self._model.model_construct(set(self._given), **values)

    def __eq__(self, other: object) -> bool:  # as pydantic compares models: class and values
        if not isinstance(other, PackedEntry):
            return NotImplemented
        return self._model is other._model and self.entry() == other.entry()

    def __hash__(self) -> int:
        return hash(self._model)


@functools.cache
def _defaults(model: type[PlugEntry]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Every default field value of a plug family, and the names of those that are mutable."""
    defaults = {name: field.get_default(call_default_factory=True, validated_data={})
                for name, field in model.model_fields.items() if not field.is_required()}
    mutable = tuple(name for name, value in defaults.items()
                    if isinstance(value, list | dict | set))
    return defaults, mutable


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
    | Annotated[KasaKlapPlug, Tag("kasa-klap")]
    | Annotated[TasmotaMqttPlug, Tag("tasmota-mqtt")]
    | Annotated[ShellyMqttPlug, Tag("shelly-mqtt")]
    | Annotated[Zigbee2MqttPlug, Tag("zigbee2mqtt")],
    Discriminator(_family),
]
FAMILIES: tuple[str, ...] = (  # the tags of AnyPlug
    "kasa", "shelly", "tasmota", "tapo", "kasa-klap", "tasmota-mqtt", "shelly-mqtt", "zigbee2mqtt")


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
