"""plugwatch.yaml: merged settings, and one exact line for every kind of mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from plugwatch.config import config_from_dict, load_config
from plugwatch.errors import ConfigError
from plugwatch.model import DetectorSettings

EXAMPLE = Path(__file__).resolve().parent.parent / "plugwatch" / "config" / "example.yaml"

SAMPLE = """\
database: sqlite:///plugwatch.db
retention: 30d
defaults: {interval: 5s, timeout: 2s, window: 5, unreachable_after: 3,
           thresholds: {standby: 0.5, on: 10, hysteresis: 0.2},
           dwell: {on: 30s, standby: 3m, off: 2m}}
plugs:
  - {name: washer, driver: kasa, host: 192.168.1.50, tags: [laundry], dwell: {standby: 5m}}
  - {name: tv, driver: kasa, host: 192.168.1.51:9999, outlet: 2}
  - name: freezer
    host: freezer.lan
    interval: 1h30m
    thresholds: {on: 40, hysteresis: {on: 5}}
targets:
  phone: ntfy://ntfy.sh/my-topic
  mail: mailtos://user:${SMTP_PASSWORD}@smtp.example.com?to=me@example.com
rules: rules/
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plugwatch.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).replace(str(path), "F")


@pytest.fixture(autouse=True)
def smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")


def test_sample_config_merges_plug_settings_over_defaults(tmp_path: Path) -> None:
    """Per-plug keys win; thresholds and dwell merge key by key; host:port is split."""
    config = load_config(write(tmp_path, SAMPLE))
    washer, tv, freezer = config.plugs
    assert washer.detector.dwell_standby_s == 300 and washer.detector.dwell_on_s == 30
    assert washer.tags == ("laundry",) and washer.options.port is None and washer.interval_s == 5
    assert (tv.options.host, tv.options.port, tv.options.outlet) == ("192.168.1.51", 9999, 2)
    assert tv.address == "192.168.1.51:9999/2"
    assert freezer.interval_s == 5400 and freezer.detector.on_w == 40
    assert freezer.detector.on_band_w == 5 and freezer.detector.standby_band_w == 0.2
    assert freezer.detector.standby_w == 0.5 and freezer.timeout_s == 2
    assert config.retention_s == 30 * 86400


@pytest.mark.parametrize(("defaults", "plug", "expected_s"), [
    ("window: 20s", "", 20.0),  # a duration is the window itself, at any interval
    ("window: 20s", "interval: 1m", 20.0),
    ("window: 0s", "", 0.0),  # no smoothing
    ("window: 5", "", 20.0),  # older configs: 5 readings at 5 s span 4 intervals
    ("window: 5", "interval: 1s", 4.0),  # ... counted at the plug's own interval
    ("window: 1", "", 0.0),  # one reading: no smoothing
    ("", "window: 1m30s", 90.0),
    ("", "", 20.0),  # the built-in default
])
def test_window_is_a_duration_or_a_count_of_readings(
    tmp_path: Path, defaults: str, plug: str, expected_s: float
) -> None:
    text = (f"defaults: {{interval: 5s{', ' + defaults if defaults else ''}}}\n"
            f"plugs:\n  - {{name: a, host: h{', ' + plug if plug else ''}}}\n")
    assert load_config(write(tmp_path, text)).plug("a").detector.window_s == expected_s


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """The SQLite file and the rules folder live next to the config, whatever the cwd."""
    config = load_config(write(tmp_path, SAMPLE))
    assert config.database == f"sqlite:///{tmp_path}/plugwatch.db"
    assert config.rules_path == tmp_path / "rules"


def test_secrets_are_expanded_but_never_shown(tmp_path: Path) -> None:
    """${SMTP_PASSWORD} reaches apprise; repr and str of the Config hide it."""
    config = load_config(write(tmp_path, SAMPLE))
    assert str(config.targets["mail"]).startswith("mailtos://user:hunter2@")
    assert "hunter2" not in repr(config) and "hunter2" not in str(config)
    assert "my-topic" not in repr(config)


def test_each_family_reads_its_own_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shelly and Tasmota take a channel and credentials; the password stays hidden."""
    monkeypatch.setenv("PLUG_PASSWORD", "s3cret-pw")
    config = load_config(write(tmp_path, """\
        plugs:
          - {name: dryer, driver: shelly, host: 10.0.0.7, channel: 1, password: "${PLUG_PASSWORD}"}
          - {name: kettle, driver: tasmota, host: "kettle.lan:8080"}
          - {name: desk, driver: tapo, host: 10.0.0.9, username: me@example.com,
             password: "${PLUG_PASSWORD}"}
        """))
    dryer, kettle, desk = config.plugs
    assert (dryer.driver, dryer.address, dryer.options.channel) == ("shelly", "10.0.0.7/1", 1)
    assert dryer.options.password.get_secret_value() == "s3cret-pw"
    assert dryer.options.username == "admin"
    assert (kettle.options.host, kettle.options.port, kettle.address) == (
        "kettle.lan", 8080, "kettle.lan:8080")
    assert kettle.options.password is None
    assert desk.options.username == "me@example.com"
    assert "s3cret-pw" not in repr(config) and "s3cret-pw" not in repr(desk.options)


def test_unset_variable_is_named_without_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_PASSWORD")
    assert error_of(tmp_path, SAMPLE) == (
        "F:15: targets.mail: environment variable SMTP_PASSWORD is not set "
        "(export SMTP_PASSWORD=... before starting plugwatch)"
    )


def test_commands_that_send_nothing_need_no_target_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` or `db upgrade` work without SMTP_PASSWORD; other variables are still required."""
    monkeypatch.delenv("SMTP_PASSWORD")
    config = load_config(write(tmp_path, SAMPLE), need_targets=False)
    assert "${SMTP_PASSWORD}" in str(config.targets["mail"])
    with pytest.raises(ConfigError, match="environment variable DB_URL is not set"):
        load_config(write(tmp_path, "database: ${DB_URL}\n"), need_targets=False)


@pytest.mark.parametrize(("text", "expected"), [
    # a bad duration names the plug's list index and the line of the key
    ("plugs:\n  - name: a\n    host: h\n  - name: b\n    host: h\n    interval: fast\n",
     "F:6: plugs[1].interval: invalid duration 'fast' (use e.g. 30s, 5m, 1h30m or 2d)"),
    # typos are errors, not silently ignored keys
    ("defaults:\n  intervall: 5s\n",
     "F:2: defaults.intervall: unknown key (check the spelling; see docs/configuration.md)"),
    ("plugs:\n  - name: a\n    host: h\n    dwell: {of: 2m}\n",
     "F:4: plugs[0].dwell.of: unknown key (check the spelling; see docs/configuration.md)"),
    ("plugs:\n  - name: a\n",
     "F:2: plugs[0].host: missing (this key is required; see docs/configuration.md)"),
    ("plugs:\n  - {name: a, host: h}\n  - {name: a, host: i}\n",
     "F:3: plugs[1].name: duplicate plug name 'a' (first used on line 2; "
     "plug names must be unique)"),
    ("plugs:\n  - {name: a, host: h, driver: shely}\n",
     "F:2: plugs[0].driver: unknown driver 'shely' (valid: kasa, kasa-klap, shelly, shelly-mqtt, "
     "tapo, tasmota, tasmota-mqtt, zigbee2mqtt)"),
    # each family takes its own keys: a Shelly has a channel, not a Kasa strip's outlet
    ("plugs:\n  - name: a\n    driver: shelly\n    host: h\n    outlet: 1\n",
     "F:5: plugs[0].outlet: unknown key (check the spelling; see docs/configuration.md)"),
    ("plugs:\n  - {name: a, driver: tapo, host: h, username: me@example.com}\n",
     "F:2: plugs[0].password: missing (this key is required; see docs/configuration.md)"),
    ("plugs:\n  - {name: a, driver: tasmota, host: h, channel: -1}\n",
     "F:2: plugs[0].channel: Input should be greater than or equal to 0"),
    ("plugs:\n  - washer\n",
     "F:2: plugs[0]: a plug must be a mapping (name:, driver:, host:, ...)"),
    ("plugs:\n  - {name: a, host: 'h:1', port: 2}\n",
     "F:2: plugs[0].port: port 2 contradicts the port in host 'h:1' (give it once)"),
    ("plugs:\n  - {name: a, host: h, outlet: -1}\n",
     "F:2: plugs[0].outlet: an outlet index starts at 0"),
    ("plugs:\n  - {name: a, host: h, thresholds: {standby: 20, on: 10}}\n",
     "F:2: plugs[0].thresholds: the standby band (20.0 +/- 0.2 W) must sit below the on band "
     "(10.0 +/- 2.0 W) (adjust thresholds/hysteresis)"),
    ("defaults:\n  thresholds: {hysteresis: wide}\n",
     "F:2: defaults.thresholds.hysteresis: use watts for both bands (e.g. 0.2) or "
     "{standby: 0.2, on: 2}"),
    ("defaults:\n  window: 0\n",
     "F:2: defaults.window: a count of readings must be 1 to 10000, got 0 (or give a duration, "
     "e.g. 20s)"),
    ("defaults:\n  window: 2.5\n",
     "F:2: defaults.window: a plain number is a count of readings: write 2.5s for seconds"),
    ("defaults:\n  timeout: 0s\n",
     "F:2: defaults.timeout: must be longer than zero, got '0s' (use e.g. 30s, 5m, 1h30m or 2d)"),
    ("retention: 0\n",
     "F:1: retention: must be longer than zero (write `forever` to keep every reading)"),
    ("database: 'my-secret-db'\n",
     "F:1: database: not a database URL (use e.g. sqlite:///plugwatch.db or "
     "postgresql+psycopg://user@host/db)"),
    ("targets:\n  phone: 'token-abc'\n",
     "F:2: targets.phone: not an apprise URL (use e.g. ntfy://ntfy.sh/my-topic)"),
    ("plugs:\n  - {name: 'a b', host: h}\n",
     "F:2: plugs[0].name: use letters, digits, '_', '-' or '.' (starting with a letter or "
     "digit)"),
    ("defaults: {interval: 5s, interval: 6s}\n",
     "F:1: defaults.interval: duplicate key (each key may appear once)"),
    ("plugs: [\n", "F:2: not valid YAML: expected the node content, but found '<stream end>'"),
    ("- 1\n", "F:1: the config must be a mapping (database:, defaults:, plugs:, ...)"),
])
def test_each_mistake_gives_one_line_naming_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert error_of(tmp_path, text) == expected


def test_several_mistakes_are_reported_together_in_file_order(tmp_path: Path) -> None:
    message = error_of(tmp_path, "defaults:\n  window: x\nplugs:\n  - {name: a, host: h, gap: y}\n")
    assert message.splitlines() == [
        "F:2: defaults.window: invalid window 'x' (use a duration, e.g. 20s, or a number of "
        "readings, e.g. 5)",
        "F:4: plugs[0].gap: invalid duration 'y' (use e.g. 30s, 5m, 1h30m or 2d)",
    ]


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: no such file \(create it or pass --"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_plug_lists_the_valid_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SAMPLE))
    with pytest.raises(ConfigError, match=r"no plug named 'dryer' .*\(valid: washer, tv, freez"):
        config.plug("dryer")


def test_empty_file_gives_builtin_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.plugs == [] and config.database == f"sqlite:///{tmp_path}/plugwatch.db"


def test_config_without_a_file_for_the_demo(tmp_path: Path) -> None:
    """config_from_dict: plain data, a detector override and no retention."""
    settings = DetectorSettings(window_s=2.0, dwell_on_s=1)
    config = config_from_dict(
        {"database": "sqlite:///demo.db", "defaults": {"interval": 0.5},
         "plugs": [{"name": "washer", "host": "127.0.0.1:4000"}]},
        base_dir=tmp_path, detector=settings, retention_s=None,
    )
    assert config.plug("washer").detector == settings and config.retention_s is None
    assert config.plug("washer").options.port == 4000 and config.plug("washer").interval_s == 0.5
    assert config.database == f"sqlite:///{tmp_path}/demo.db"


def test_retention_forever_and_gap_follows_slow_intervals(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "retention: forever\nplugs:\n"
                                         "  - {name: a, host: h, interval: 2m}\n"))
    assert config.retention_s is None
    assert config.plug("a").detector.gap_s == 360  # three missed samples, not the 60 s default


def test_example_config_loads() -> None:
    """The documented example file is valid."""
    config = load_config(EXAMPLE)
    assert [p.name for p in config.plugs] == ["washer", "tv", "dryer", "freezer", "desk"]


@pytest.mark.parametrize(("defaults", "plug", "expected"), [
    # (window, dwell on, standby, off) in seconds
    ("", "kind: washer", (30, 60, 600, 180)),  # the preset
    ("", "", (20, 30, 1800, 1800)),  # no kind: generic, the built-in defaults
    ("kind: tv", "", (20, 30, 180, 180)),  # a kind for every plug
    ("kind: tv", "kind: kettle", (5, 10, 60, 60)),  # the plug's own kind wins
    ("", "kind: washer, dwell: {off: 5m}", (30, 60, 600, 300)),  # explicit beats the preset
    ("kind: washer, window: 5s", "", (5, 60, 600, 180)),  # ... at the same level
    # a plug's kind beats what defaults: give every plug; its own keys beat both
    ("dwell: {standby: 30m}", "kind: tv", (20, 30, 180, 180)),
    ("dwell: {standby: 30m}", "", (20, 30, 1800, 1800)),
])
def test_kind_is_a_preset_that_explicit_settings_override(
    tmp_path: Path, defaults: str, plug: str, expected: tuple[float, ...]
) -> None:
    text = (f"defaults: {{interval: 5s{', ' + defaults if defaults else ''}}}\n"
            f"plugs:\n  - {{name: a, host: h{', ' + plug if plug else ''}}}\n")
    d = load_config(write(tmp_path, text)).plug("a").detector
    assert (d.window_s, d.dwell_on_s, d.dwell_standby_s, d.dwell_off_s) == expected


def test_an_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    message = error_of(tmp_path, "plugs:\n  - {name: a, host: h, kind: toaster}\n")
    assert message == (
        "F:2: plugs[0].kind: unknown kind 'toaster' (valid: generic, washer, dryer, dishwasher, "
        "tv, computer, fridge, freezer, kettle, always_on)")


def test_a_reload_retunes_changed_detectors_and_names_what_needs_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP: new default thresholds apply at once, and so do a plug's own; a new host needs
    a restart; writing out what was the default (`port: 9999`, `transport: tcp`) changes
    nothing."""
    from types import SimpleNamespace

    from plugwatch.service.reload import reload_plugs

    running = load_config(write(tmp_path, """
        plugs:
          - {name: washer, host: 10.0.0.1}
          - {name: dryer, host: 10.0.0.2}
          - {name: tv, host: "10.0.0.3:9999"}
          - {name: kettle, host: 10.0.0.4, thresholds: {on: 1500}, dwell: {off: 5s}}
    """))
    retuned: list[str] = []
    service = SimpleNamespace(plug_configs={p.name: p for p in running.plugs},
                              retune=lambda plug: retuned.append(plug.name))
    path = write(tmp_path, """
        defaults: {thresholds: {on: 25}}
        plugs:
          - {name: washer, host: 10.0.0.9}
          - {name: dryer, host: 10.0.0.2}
          - {name: tv, host: 10.0.0.3, port: 9999, transport: tcp}
          - {name: kettle, host: 10.0.0.4, thresholds: {on: 2000}, dwell: {off: 5s}}
    """)
    assert reload_plugs(service, path) == ["dryer", "tv", "kettle"] == retuned
    assert caplog.messages[-1] == ("plug changes that need a restart (systemctl restart "
                                   "plugwatch): washer (address, driver, interval or timeout)")
