"""plugwatch.config.yamlload: YAML with line numbers, for any pydantic model (rule files too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from plugwatch.config.yamlload import field_path, load_yaml, parse_yaml
from plugwatch.errors import ConfigError


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = 0


def test_field_path_reads_like_the_file() -> None:
    assert field_path(("plugs", 1, "dwell", "on")) == "plugs[1].dwell.on"
    assert field_path((0, "when")) == "[0].when"


def test_problems_point_at_the_line_of_the_bad_value() -> None:
    """A validation error inside a list names the line a user must edit, with a prefix."""
    doc = parse_yaml("items:\n  - name: a\n  - name: b\n    size: big\n    colour: red\n", "r.yaml")
    with pytest.raises(ValidationError) as info:
        Item.model_validate(doc.data["items"][1])
    assert doc.problems(info.value, prefix=("items", 1)) == [
        "r.yaml:4: items[1].size: Input should be a valid integer, unable to parse string as an "
        "integer",
        "r.yaml:5: items[1].colour: unknown key (check the spelling)",
    ]


def test_on_and_off_keys_stay_names() -> None:
    """YAML 1.1 reads a bare `on:` key as True; dwell: {on: 30s, off: 2m} must keep its names."""
    assert parse_yaml("dwell: {on: 30s, off: 2m}\n").data == {"dwell": {"on": "30s", "off": "2m"}}


def test_merge_keys_may_be_overridden_but_keys_not_repeated() -> None:
    doc = parse_yaml("base: &b {size: 1, name: x}\nitem:\n  <<: *b\n  size: 2\n")
    assert doc.data["item"] == {"size": 2, "name": "x"}
    with pytest.raises(ConfigError, match=r"^<config>:3: item.size: duplicate key"):
        parse_yaml("item:\n  size: 1\n  size: 2\n")


def test_environment_variables_expand_in_nested_strings() -> None:
    doc = parse_yaml("a:\n  - url: x://${USER_A}:${PASS_B}@h\n", "c.yaml")
    doc.expand_env({"USER_A": "me", "PASS_B": "pw"})
    assert doc.data == {"a": [{"url": "x://me:pw@h"}]}
    doc = parse_yaml("a:\n  - url: x://${USER_A}:${PASS_B}@h\n", "c.yaml")
    with pytest.raises(ConfigError) as info:
        doc.expand_env({"USER_A": "me"})
    assert str(info.value) == ("c.yaml:2: a[0].url: environment variable PASS_B is not set "
                               "(export PASS_B=... before starting plugwatch)")


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"bad.yaml: cannot read: .*utf-8"):
        load_yaml(tmp_path / "bad.yaml")
