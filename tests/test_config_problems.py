"""Config and rule mistakes are reported all together, in one pass, each at the line of its field.

A user fixing a config should see every problem at once: field errors, duplicate plug names,
overlapping bands, unset ${NAME}s, bad hosts, typos; and `rules check` checks the rules even when
the config has an unset ${NAME} in `targets:`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugwatch.cli import main
from plugwatch.config import load_config
from plugwatch.errors import ConfigError

BROKEN = """\
database: sqlite:///pw.db
defaults:
  interval: 5s
plugs:
  - name: washer
    host: 10.0.0.4
    interval: soon
  - name: tv
    host: 10.0.0.5
  - name: tv
    host: 10.0.0.6
    thresholds: {standby: 5, on: 4}
  - name: desk
    driver: shelly
    host: 10.0.0.7
    password: ${PW_TEST_UNSET_DESK}
  - name: lamp
    host: "10.0.0.8:99999"
targets:
  phone: ntfy://ntfy.sh/${PW_TEST_UNSET_TOPIC}
retentoin: 7d
"""

EXPECTED = [  # (line, field, what the message says)
    (7, "plugs[0].interval", "invalid duration 'soon'"),
    (10, "plugs[2].name", "duplicate plug name 'tv' (first used on line 8"),
    (12, "plugs[2].thresholds", "the standby band (5.0 +/- 0.2 W) must sit below the on band"),
    (16, "plugs[3].password", "environment variable PW_TEST_UNSET_DESK is not set"),
    (18, "plugs[4].host", "port 99999 is out of range"),
    (20, "targets.phone", "environment variable PW_TEST_UNSET_TOPIC is not set"),
    (21, "retentoin", "unknown key"),
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_problem_of_a_config_is_reported_in_one_pass_at_its_line(tmp_path: Path) -> None:
    """Seven kinds of mistakes, one ConfigError: one line each, in file order, at the field's
    line (duplicate names and bad bands are not hidden behind the field errors)."""
    path = write(tmp_path, "plugwatch.yaml", BROKEN)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(EXPECTED), lines
    for line, (number, field, text) in zip(lines, EXPECTED, strict=True):
        assert line.startswith(f"{path}:{number}: {field}: "), line
        assert text in line


def test_commands_print_every_config_problem_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`status` on the broken config: exit 1, every problem on stderr (targets' ${NAME}s are
    not needed by status, so that one is not among them)."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "plugwatch.yaml", BROKEN)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("plugwatch: error: plugwatch.yaml:7: plugs[0].interval: ")
    assert len(err.strip().splitlines()) == len(EXPECTED) - 1
    assert "PW_TEST_UNSET_TOPIC" not in err and "PW_TEST_UNSET_DESK" in err


def test_every_unset_variable_is_named_not_only_the_first(tmp_path: Path) -> None:
    """Two unset ${NAME}s in one file: both reported, each at its own line."""
    path = write(tmp_path, "plugwatch.yaml", (
        "database: postgresql+psycopg://app:${PW_TEST_UNSET_DB}@db/plugwatch\n"
        "plugs:\n  - {name: washer, host: 10.0.0.4}\n"
        "targets:\n  phone: ntfy://ntfy.sh/${PW_TEST_UNSET_TOPIC}\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:1", f"{path}:5"]


RULES = """\
- name: washer-done
  plugs: [washer]
  when: {from: "on", to: standby}
  notify: [pager]
  title: "{{ plug }} done"
"""

TWO_RULES = """\
- name: washer-done
  plugs: [washer, dryer]
  when: {from: "on", to: standby}
  notify: [phone, pager]
  title: "{{ plug }} done"
- name: tv-on
  plugs: [tv]
  when: {to: "on"}
  for: soon
  notify: [phone]
"""


def test_rules_check_puts_each_problem_at_its_fields_line_in_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Every problem of every rule, each at the line of the key that is wrong, in file order
    (not at the rule's first line); a rule that does not validate does not keep the others
    from being checked against the config's plugs and targets."""
    rules = write(tmp_path, "rules.yaml", TWO_RULES)
    config = write(tmp_path, "plugwatch.yaml", (
        "plugs:\n  - {name: washer, host: 10.0.0.4}\n  - {name: tv, host: 10.0.0.5}\n"
        f"targets:\n  phone: ntfy://ntfy.sh/topic\nrules: {rules}\n"))
    assert main(["rules", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0:3] for line in err[:-1]] == [
        [f"{rules}:2", "rule 'washer-done'", "plugs"],
        [f"{rules}:4", "rule 'washer-done'", "notify"],
        [f"{rules}:9", "rule 'tv-on'", "for"],
    ]
    assert err[-1] == f"3 problems in {rules}"


def test_rules_check_checks_the_rules_despite_an_unset_variable_in_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """An unset ${NAME} in `targets:` is one problem; the rules are still checked against the
    plug and target names (the target's name is known without its URL)."""
    rules = write(tmp_path, "rules.yaml", RULES)
    config = write(tmp_path, "plugwatch.yaml", (
        "plugs:\n  - {name: washer, host: 10.0.0.4}\n"
        f"targets:\n  phone: ntfy://ntfy.sh/${{PW_TEST_UNSET_TOPIC}}\nrules: {rules}\n"))
    assert main(["rules", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{config}:4: targets.phone: environment variable "
                             "PW_TEST_UNSET_TOPIC is not set")
    assert any("rule 'washer-done': notify: unknown target 'pager' (targets: phone)" in line
               for line in err)
    assert err[-1] == f"2 problems in {rules}"


def test_rules_check_with_an_invalid_config_still_checks_the_rule_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A config with field errors: its problems and the rule files' own are listed together;
    the summary says the names could not be checked."""
    rules = write(tmp_path, "rules.yaml", RULES.replace("title:", "titel:"))
    config = write(tmp_path, "plugwatch.yaml", BROKEN)
    assert main(["rules", "check", str(rules), "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if line.startswith(str(config))]) == len(EXPECTED)
    assert any(line.startswith(f"{rules}:5: rule 'washer-done': titel: unknown key")
               for line in err)
    assert err[-1].endswith("(plug and target names not checked: "
                            f"{config} is invalid)")
    assert err[-1].startswith(f"{len(EXPECTED) + 1} problems in ")
