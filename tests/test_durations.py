"""One duration grammar for config keys, rule files and command-line flags."""

from __future__ import annotations

import pytest

from plugwatch.cli.service import parse_since
from plugwatch.config import config_from_dict
from plugwatch.config.durations import parse_duration
from plugwatch.errors import ConfigError
from plugwatch.rules.model import Rule


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0),
    ("5m", 300.0),
    ("5min", 300.0),  # `--since 5min` was accepted while `interval: 5min` was refused
    ("1h30m", 5400.0),  # `history --since 1h30m` was refused while the config took it
    ("1 h 30 min", 5400.0),
    ("500ms", 0.5),
    ("2D", 172800.0),
    ("1w", 604800.0),
    ("90", 90.0),
    (90, 90.0),
    (1.5, 1.5),
])
def test_the_same_text_means_the_same_seconds_everywhere(text: object, seconds: float) -> None:
    """Config, rule files and --since read a duration identically."""
    assert parse_duration(text) == seconds
    assert config_from_dict({"defaults": {"interval": text}, "plugs": [
        {"name": "p", "host": "h"}]}).plugs[0].interval_s == seconds
    rule = {"name": "r", "when": {"to": "on"}, "for": text, "notify": "t"}
    assert Rule.model_validate(rule).for_ == seconds
    if isinstance(text, str):
        assert parse_since(text, 1e6) == 1e6 - seconds


@pytest.mark.parametrize("text", ["fast", "", "5 parsecs", "-5s", "1h-30m", "nan", True, None])
def test_anything_else_is_refused_with_the_same_hint(text: object) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*\(use e\.g\. 30s, 5m, 1h30m or 2d\)"):
        parse_duration(text)


def test_since_refuses_with_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^--since: invalid duration 'soon' \(use e\.g\."):
        parse_since("soon", 0.0)
