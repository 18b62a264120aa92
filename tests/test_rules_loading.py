"""Rule files: the shipped examples load; every mistake is one line with file:line, rule and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugwatch.cli import main
from plugwatch.model import State
from plugwatch.rules import RuleFileError, check_rules, load_checked, load_rules, rule_warnings

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(RuleFileError) as err:
        load_rules(path)
    return err.value.problems


def test_shipped_examples_load_and_pass_the_check() -> None:
    loaded = load_rules(REPO / "rules")
    names = {item.rule.name for item in loaded}
    assert {"washer-done", "critical-unreachable", "iron-left-on"} <= names
    tags = {"washer": [], "freezer": ["critical"], "iron": [], "tv": []}
    assert check_rules(loaded, tags, ["phone", "mail"]) == []


def test_unquoted_yaml_on_off_and_times_mean_what_users_wrote(tmp_path: Path) -> None:
    """YAML 1.1 reads on/off as booleans and 22:00 as a number; rules read them as written."""
    path = write(tmp_path, "- name: a\n  when: {from: on, to: [standby, off]}\n  notify: p\n"
                 "  quiet_hours: {from: 22:00, to: 07:30}\n")
    (item,) = load_rules(path)
    assert item.rule.when.from_ == [State.ON]
    assert item.rule.when.to == [State.STANDBY, State.OFF]
    assert item.rule.quiet_hours is not None
    assert (item.rule.quiet_hours.start, item.rule.quiet_hours.end) == ("22:00", "07:30")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a misspelt state, on the line where it was written
        ("- name: a\n  notify: p\n  when:\n    to: unreachabel\n",
         "rules.yaml:4: rule 'a': when.to[0]: unknown state 'unreachabel' (use off, standby, on"),
        # a bad duration names the field and shows a valid form
        ("- name: a\n  notify: p\n  when: {to: on}\n  for: soon\n",
         "rules.yaml:4: rule 'a': for: invalid duration 'soon' (use e.g. 30s, 5m"),
        # a typo in a key is not ignored
        ("- name: a\n  notify: p\n  when: {to: on}\n  cooldwn: 5m\n",
         "rules.yaml:4: rule 'a': cooldwn: unknown key (check the spelling"),
        # a required key is missing
        ("- name: a\n  when: {to: on}\n", "rules.yaml:1: rule 'a': notify: missing"),
        # max_repeats without repeat
        ("- name: a\n  notify: p\n  when: {to: on}\n  max_repeats: 3\n",
         "rules.yaml:1: rule 'a': rule: max_repeats needs repeat"),
        # quiet hours need HH:MM
        ("- name: a\n  notify: p\n  when: {to: on}\n  quiet_hours: {from: late, to: '07:00'}\n",
         "rules.yaml:4: rule 'a': quiet_hours.from: invalid time 'late' (use HH:MM"),
        # broken YAML itself
        ("- name: a\n  when: {to: on\n", "rules.yaml:3: not valid YAML"),
        # YAML reads an unquoted `on` as a boolean
        ("- name: on\n  notify: p\n  when: {to: on}\n",
         "rules.yaml:1: rule #1: name: must be text, got True (put it in quotes)"),
        # not a list
        ("name: a\n", "rules.yaml:1: a rule file is a YAML list of rules"),
        # names must be unique
        ("- {name: a, notify: p, when: {to: on}}\n- {name: a, notify: p, when: {to: off}}\n",
         "rules.yaml:2: rule 'a': name: already used at"),
        # a key written twice is a mistake, not "the last one wins"
        ("- name: a\n  notify: p\n  when: {to: on}\n  notify: q\n",
         "rules.yaml:4: [0].notify: duplicate key"),
        # under a top-level `rules:` key, lines are still the file's own
        ("rules:\n  - name: a\n    notify: p\n    when: {to: of}\n",
         "rules.yaml:4: rule 'a': when.to[0]: unknown state 'of'"),
    ],
)
def test_each_mistake_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    (line,) = problems(write(tmp_path, text))
    assert expected in line and str(tmp_path) in line and "\n" not in line


def test_check_against_the_config_names_valid_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "- name: a\n  plugs: [wahser]\n  when: {to: on}\n  notify: [fone]\n"
                 "- name: b\n  plugs: {tags: [critcal]}\n  when: {to: on}\n  notify: phone\n"
                 "  title: '{{ plug }} {{ wat }}'\n  body: '{{ run.duration }}'\n")
    with pytest.raises(RuleFileError) as err:
        load_checked(path, {"washer": ["laundry"], "freezer": ["critical"]}, ["phone"])
    lines = err.value.problems
    assert any("rule 'a': notify: unknown target 'fone' (targets: phone)" in x for x in lines)
    assert any("rule 'a': plugs: unknown plug 'wahser' (plugs: freezer, washer)" in x
               for x in lines)
    assert any("rule 'b': title: unknown name 'wat'" in x for x in lines)
    assert any("rule 'b': body: `run` is only set for rules with `when: {from: on}`" in x
               for x in lines)


def test_globs_and_tags_selecting_nothing_are_warnings_not_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "- name: b\n  plugs: {tags: [critcal]}\n  when: {to: on}\n  notify: p\n"
                 "- name: c\n  plugs: ['iron*']\n  when: {to: on}\n  notify: p\n")
    loaded = load_checked(path, {"washer": ["laundry"], "freezer": ["critical"]}, ["p"])
    warnings = rule_warnings(loaded, {"washer": ["laundry"], "freezer": ["critical"]})
    assert warnings == [
        f"{path}:1: rule 'b': plugs.tags: no plug has tag 'critcal' yet (tags: critical, laundry)",
        f"{path}:5: rule 'c': plugs: 'iron*' matches no plug yet (plugs: freezer, washer)",
    ]


def test_rules_check_command_exits_1_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = write(tmp_path, "- name: a\n  notify: p\n  when: {to: of}\n  for: 5x\n")
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:3: rule 'a': when.to[0]: unknown state 'of'")
    assert err[1].startswith(f"{bad}:4: rule 'a': for: invalid duration '5x'")
    assert "Traceback" not in "".join(err)
    assert main(["rules", "check", str(REPO / "rules")]) == 0
    assert "8 rules in 6 files OK" in capsys.readouterr().out
    assert main(["rules", "check", str(tmp_path / "nope")]) == 1
    assert "no such rule file or folder" in capsys.readouterr().err
