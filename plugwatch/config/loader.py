"""plugwatch.yaml: load, validate and merge it into a Config (plugs with their DetectorSettings).

    config = load_config("plugwatch.yaml")   # ConfigError: one line per problem, file:line: field
    config.plug("washer").detector          # DetectorSettings, defaults merged under the plug's own
    config.plug("washer").options           # the family's own keys (config/plugs.py), e.g. .host

`config_from_dict` builds the same Config from plain data (the demo and tests, no file at all).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plugwatch.config.models import ConfigFile, describe
from plugwatch.config.mqtt import MqttSection
from plugwatch.config.outputs import HttpSection, InfluxSection
from plugwatch.config.plugs import MqttPlugEntry, NetworkPlug, PackedEntry, PlugEntry, error_loc
from plugwatch.config.tuning import Tuning
from plugwatch.config.yamlload import Loc, Problems, YamlDoc, load_yaml
from plugwatch.detect.kinds import kind_named
from plugwatch.errors import ConfigError
from plugwatch.formatting import machine_zone, zone_named
from plugwatch.model import DetectorSettings
from plugwatch.mqtt.settings import MqttSettings
from plugwatch.notify.targets import TargetOptions
from plugwatch.redact import redact
from plugwatch.rules.cost import Price
from plugwatch.sources.validate import DEFAULT_LIMITS, Limits

_BUILTIN = DetectorSettings()
_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?$")


class Target(str):
    """An apprise URL that shows itself redacted in repr (str() is the real URL for apprise)."""

    __slots__ = ()

    @property
    def redacted(self) -> str:
        """The URL with passwords and tokens hidden."""
        return redact(str(self))

    def __repr__(self) -> str:
        return f"Target({self.redacted!r})"


@dataclass(frozen=True, slots=True)
class PlugConfig:
    """One watched plug: its family's own keys, how often to read it, how to judge its power.

    `options` is the family's validated entry (config/plugs.py: KasaPlug, ShellyPlug, ...): the
    driver takes host, port, channel and credentials from there. A `host: name:port` is already
    split into `options.host` and `options.port`. The entry is kept packed (`packed`, a few
    hundred bytes less a plug) and each `options` builds it again: read it once, not per sample.
    Plugs with equal detector settings share one DetectorSettings.
    """

    name: str
    driver: str
    packed: PackedEntry = field(repr=False)  # may hold a password (a SecretStr, but still)
    tags: tuple[str, ...]
    interval_s: float
    timeout_s: float
    detector: DetectorSettings
    max_power_w: float = DEFAULT_LIMITS.max_power_w  # a larger reading is a read failure

    @property
    def options(self) -> PlugEntry:
        """The family's validated entry (a new model each time, see above)."""
        return self.packed.entry()

    @property
    def limits(self) -> Limits:
        """What this plug may report (plugwatch.sources.validate); one object per max_power."""
        return _limits(self.max_power_w)

    @property
    def address(self) -> str:
        """Where the plug is (host[:port][/outlet], an MQTT topic ...), as shown to users."""
        return self.options.address


@functools.lru_cache(maxsize=1024)
def _one_of(settings: DetectorSettings) -> DetectorSettings:
    """Equal settings as one object (most plugs have the defaults' settings: one for them all)."""
    return settings


@functools.lru_cache(maxsize=256)
def _limits(max_power_w: float) -> Limits:
    return Limits(max_power_w=max_power_w)


@dataclass(frozen=True)
class Config:
    """A validated plugwatch configuration."""

    database: str = field(repr=False)  # may hold a password: repr shows it redacted
    plugs: list[PlugConfig]
    targets: dict[str, Target] = field(default_factory=dict)
    target_options: dict[str, TargetOptions] = field(default_factory=dict)  # format, replace
    rules_path: Path | None = None
    retention_s: float | None = 30 * 86400.0
    path: Path | None = None
    http: HttpSection | None = None  # the /metrics, /healthz and status page endpoint; None: off
    influxdb: InfluxSection | None = None  # None: no InfluxDB output
    mqtt: MqttSettings | None = None  # the broker of the MQTT plugs and output; None: no MQTT
    timezone: str = field(default_factory=machine_zone)  # IANA name: times as people read them
    price: Price | None = None  # `price:`: what a kWh costs (None: runs carry no cost)
    cluster_lease_s: float | None = None  # `cluster:`: share the plugs with other instances
    max_queued_readings: int | None = None  # None: 5 minutes of readings at the plugs' rate

    @property
    def tz(self) -> tzinfo:
        """The zone times are shown in (notifications, run, status, history)."""
        return zone_named(self.timezone)

    def plug(self, name: str) -> PlugConfig:
        """The plug called `name`; ConfigError listing the valid names when there is none."""
        for plug in self.plugs:
            if plug.name == name:
                return plug
        valid = ", ".join(p.name for p in self.plugs) or "none configured"
        where = f" in {self.path}" if self.path else ""
        raise ConfigError(f"no plug named {name!r}{where} (valid: {valid})")

    def __repr__(self) -> str:
        return (f"Config(database={redact(self.database)!r}, plugs={self.plugs!r}, "
                f"targets={self.targets!r}, rules_path={self.rules_path!r}, "
                f"retention_s={self.retention_s!r}, path={self.path!r}, "
                f"timezone={self.timezone!r})")


def load_config(
    path: str | os.PathLike[str], *, need_targets: bool = True, check_targets: bool = False,
) -> Config:
    """Read, validate and merge the config file at `path`; ConfigError names file:line: field.

    With need_targets=False (commands that send nothing: status, history, db), an unset ${NAME}
    inside `targets:` is not an error; such a target keeps its ${NAME} text and must not be used.
    With check_targets=True (`run`), apprise's own parser checks every target URL (importing
    apprise takes a moment, so commands that send nothing skip it).
    """
    doc = load_yaml(path)
    config = _build(doc, Path(path).resolve().parent, Path(path), need_targets)
    if check_targets:
        _check_targets(doc, config.targets)
    return config


def _check_targets(doc: YamlDoc, targets: dict[str, Target]) -> None:
    """ConfigError with a line per target URL apprise refuses (never showing the URL)."""
    from plugwatch.notify.apprise_notifier import url_problem

    problems = [f"{doc.where(('targets', name))}: apprise refuses this URL: {problem}"
                for name, url in targets.items() if (problem := url_problem(str(url)))]
    if problems:
        raise ConfigError("\n".join(problems))


def config_from_dict(
    data: dict[str, Any], *, base_dir: str | os.PathLike[str] | None = None,
    detector: DetectorSettings | None = None, **overrides: Any,
) -> Config:
    """A Config from plain data (no file). `detector` replaces every plug's DetectorSettings;
    `retention_s=` (and any other Config field) given as keyword replaces the data's value."""
    doc = YamlDoc("<config>", data)
    config = _build(doc, Path(base_dir) if base_dir else Path.cwd(), None)
    if detector is not None:
        plugs = [_replace(p, detector=detector) for p in config.plugs]
        overrides["plugs"] = plugs
    return _replace(config, **overrides) if overrides else config


def _replace(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)


def _build(doc: YamlDoc, base: Path, path: Path | None, need_targets: bool = True) -> Config:
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise doc.error((), "the config must be a mapping (database:, defaults:, plugs:, ...)")
    # One pass finds every problem: unset ${NAME}s, field errors, duplicate names, bad bands.
    problems = Problems(doc)
    doc.expand_env(optional=None if need_targets else lambda loc: loc[:1] == ("targets",),
                   problems=problems)
    raw: ConfigFile | None = None
    try:
        raw = ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        problems.validation(exc, describe=describe, relocate=error_loc)
    _duplicate_names(doc, problems)
    defaults, entries = (raw.defaults, list(enumerate(raw.plugs))) if raw else _valid_parts(doc)
    plugs: list[PlugConfig] = []
    for i, entry in entries:
        try:
            plugs.append(_plug(doc, ("plugs", i), defaults, entry))
        except ConfigError as exc:
            problems.add_error(exc)
    problems.raise_any()
    assert raw is not None  # a model that did not validate left problems
    rules = None if raw.rules is None else _resolve(base, raw.rules)
    return Config(
        database=resolve_database(raw.database, base), plugs=plugs,
        targets={name: Target(t.url) for name, t in raw.targets.items()},
        target_options={name: TargetOptions(format=t.format, replace=t.replace)
                        for name, t in raw.targets.items()},
        rules_path=rules, retention_s=raw.retention, path=path, http=raw.http,
        influxdb=raw.influxdb, timezone=raw.timezone or machine_zone(), price=raw.price,
        cluster_lease_s=raw.cluster.lease if raw.cluster is not None else None,
        max_queued_readings=raw.max_queued_readings,
        mqtt=_mqtt(doc, raw.mqtt, plugs),
    )


def _duplicate_names(doc: YamlDoc, problems: Problems) -> None:
    """A problem at each plug name used before (read from the data: other errors do not hide
    it)."""
    entries = doc.data.get("plugs") if isinstance(doc.data, dict) else None
    first_line: dict[str, int] = {}
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        loc: Loc = ("plugs", i, "name")
        if name in first_line:
            problems.add(loc, f"duplicate plug name {name!r} (first used on line "
                         f"{first_line[name]}; plug names must be unique)")
        else:
            first_line[name] = doc.line_of(loc)


def _valid_parts(doc: YamlDoc) -> tuple[Tuning, list[tuple[int, PlugEntry]]]:
    """When the whole file did not validate: `defaults:` and the plugs that do on their own, so
    their further problems (bands, hosts) are reported in the same pass. No plugs when
    `defaults:` itself is invalid (each plug's settings depend on it)."""
    from pydantic import TypeAdapter

    from plugwatch.config.plugs import AnyPlug

    data = doc.data if isinstance(doc.data, dict) else {}
    try:
        defaults = Tuning.model_validate(data.get("defaults") or {})
    except ValidationError:
        return Tuning(), []
    adapter: TypeAdapter[PlugEntry] = TypeAdapter(AnyPlug)
    entries = data.get("plugs")
    valid = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        try:
            valid.append((i, adapter.validate_python(entry)))
        except ValidationError:
            continue  # its errors are already among the problems
    return defaults, valid


def _plug(doc: YamlDoc, loc: Loc, defaults: Tuning, entry: PlugEntry) -> PlugConfig:
    if isinstance(entry, NetworkPlug):
        host, port = _split_host(doc, loc, entry)
        entry = entry.model_copy(update={"host": host, "port": port})

    def pick(name: str, builtin: Any) -> Any:
        own = getattr(entry, name)
        return own if own is not None else (getattr(defaults, name) if getattr(
            defaults, name) is not None else builtin)

    # A plug's own keys win, then its kind's preset, then `defaults:`, then the defaults' kind
    # (so `kind: tv` on a plug is a TV whatever dwell `defaults:` gives every plug).
    presets = {id(level): kind_named(level.kind).settings() if level.kind else None
               for level in (entry, defaults)}

    def preset(level: Tuning, name: str) -> float | None:
        kind = presets[id(level)]
        return None if kind is None else float(getattr(kind, name))

    def deep(section: str, key: str, builtin: float, preset_name: str | None = None) -> float:
        for level in (entry, defaults):
            part = getattr(level, section)
            if part is not None and getattr(part, key) is not None:
                return float(getattr(part, key))
            if preset_name is not None and (value := preset(level, preset_name)) is not None:
                return value
        return builtin

    def band(key: str, builtin: float) -> float:
        for level in (entry, defaults):
            bands = level.thresholds.hysteresis if level.thresholds else None
            if bands is not None and getattr(bands, key) is not None:
                return float(getattr(bands, key))
        return builtin

    def window_s() -> float:
        for level in (entry, defaults):
            if level.window is not None:
                return level.window.seconds_at(interval)
            if (value := preset(level, "window_s")) is not None:
                return value
        return _BUILTIN.window_s

    interval = float(pick("interval", 5.0))
    unreachable_after = pick("unreachable_after", _BUILTIN.unreachable_after)
    gap = pick("gap", max(_BUILTIN.gap_s, 3 * interval))
    if isinstance(entry, MqttPlugEntry):  # it reports by itself: its failures are definite
        unreachable_after = entry.unreachable_after or 1
        gap = entry.gap or entry.stale_after_s(interval)  # silence up to then is "unchanged"
    try:
        detector = DetectorSettings(
            kind=entry.kind or defaults.kind or _BUILTIN.kind,
            window_s=window_s(),
            standby_w=deep("thresholds", "standby", _BUILTIN.standby_w),
            standby_band_w=band("standby", _BUILTIN.standby_band_w),
            on_w=deep("thresholds", "on", _BUILTIN.on_w),
            on_band_w=band("on", _BUILTIN.on_band_w),
            dwell_on_s=deep("dwell", "on", _BUILTIN.dwell_on_s, "dwell_on_s"),
            dwell_standby_s=deep("dwell", "standby", _BUILTIN.dwell_standby_s,
                                 "dwell_standby_s"),
            dwell_off_s=deep("dwell", "off", _BUILTIN.dwell_off_s, "dwell_off_s"),
            unreachable_after=unreachable_after, gap_s=float(gap),
            ignore_pulses=next((k.ignore_pulses for k in (presets[id(entry)],
                                                          presets[id(defaults)]) if k), False),
        )
    except ValueError as exc:
        at = (*loc, "thresholds") if entry.thresholds else loc
        raise doc.error(at, f"{exc} (adjust thresholds/hysteresis)") from None
    return PlugConfig(
        name=entry.name, driver=entry.driver, packed=PackedEntry(entry), tags=tuple(entry.tags),
        interval_s=interval, timeout_s=float(pick("timeout", 2.0)), detector=_one_of(detector),
        max_power_w=float(pick("max_power", DEFAULT_LIMITS.max_power_w)),
    )


def _mqtt(
    doc: YamlDoc, section: MqttSection | None, plugs: list[PlugConfig],
) -> MqttSettings | None:
    """The broker settings; an MQTT plug without an `mqtt:` section is an error at its driver."""
    if section is not None:
        return section.settings()
    for i, plug in enumerate(plugs):
        if isinstance(plug.options, MqttPlugEntry):
            raise doc.error(("plugs", i, "driver"), f"plug {plug.name!r} reports over MQTT: add "
                            "an `mqtt:` section with the broker's url (see docs/mqtt.md)")
    return None


def _split_host(doc: YamlDoc, loc: Loc, entry: NetworkPlug) -> tuple[str, int | None]:
    """"10.0.0.4:9999" -> ("10.0.0.4", 9999); a port in both host and port: is an error."""
    host, port = entry.host.strip(), entry.port
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<h>[^:\s]+)(?::(?P<p>\d+))?",
                         host)
    if not match:
        if host.count(":") > 1:  # a bare IPv6 address
            return host, port
        raise doc.error((*loc, "host"), "invalid host (use e.g. 192.168.1.50 or plug.lan:9999)")
    name = match.group("v6") or match.group("h")
    given = match.group("p6") or match.group("p")
    if given is not None:
        if port is not None and int(given) != port:
            raise doc.error((*loc, "port"), f"port {port} contradicts the port in host "
                            f"{entry.host!r} (give it once)")
        port = int(given)
        if not 1 <= port <= 65535:
            raise doc.error((*loc, "host"), f"port {port} is out of range (1-65535)")
    return name, port


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def resolve_database(url: str, base: Path) -> str:
    """A relative SQLite file in `url` made absolute against `base` (other URLs unchanged)."""
    match = _SQLITE.match(url)
    if not match:
        return url
    file = match.group("path")
    if not file or file == ":memory:" or file.startswith("file:") or Path(file).is_absolute():
        return url
    absolute = _resolve(base, file)
    return f"{match.group(1)}:///{absolute}{match.group('query') or ''}"
