"""`plugwatch ack` and `plugwatch silence` on a real config and database, no service running:
listings, and every mistake as one line that says what would be right."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugwatch.cli import main

RULES = """\
- name: washer-done
  plugs: [washer]
  when: {from: "on", to: standby}
  repeat: 15m
  notify: phone
- name: tv
  plugs: [tv]
  when: {to: "on"}
  notify: phone
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    path = tmp_path / "plugwatch.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path}/pw.db\ntimezone: Europe/Berlin\n"
        "plugs:\n  - {name: washer, driver: kasa, host: 127.0.0.1, tags: [laundry]}\n"
        "  - {name: tv, driver: kasa, host: 127.0.0.2}\n"
        "targets:\n  phone: json://127.0.0.1:9/\nrules: rules.yaml\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(cfg)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("args", "error"), [
    (["ack", "dryer"], "'dryer' is neither a plug nor a rule (plugs: tv, washer; rules: tv, "
                       "washer-done)"),
    (["ack", "washer"], "nothing to acknowledge for 'washer': no unacknowledged active alert "
                        "(active: none)"),
    (["ack", "dryer-done/washer"], "no rule named 'dryer-done' (rules: tv, washer-done)"),
    (["ack", "tv"], "'tv' is both a plug and a rule: say RULE/PLUG, e.g. tv/tv"),
    (["silence", "washer"], "silence needs --for DURATION (e.g. --for 2h)"),
    (["silence", "washer", "--for", "0s"], "--for must be longer than 0s (e.g. --for 2h)"),
    (["silence", "tag:kitchen", "--for", "1h"], "no tag named 'kitchen' (tags: laundry)"),
    (["silence", "washer-done/washer", "--for", "1h"],
     "a silence covers a plug, a rule or a tag: say plug:NAME, rule:NAME or tag:NAME"),
    (["silence", "--expire", "7"], "no silence 7 in force (see `plugwatch silence --list`)"),
])
def test_a_mistake_is_one_line(
    cfg: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str,
) -> None:
    code, out, err = run(capsys, cfg, *args)
    assert (code, out, err) == (1, "", f"plugwatch: error: {error}\n")


def test_a_bad_duration_is_one_line_naming_the_flag(
    cfg: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, cfg, "silence", "washer", "--for", "2 hours") == (1, "", (
        "plugwatch: error: --for: invalid duration '2 hours' (use e.g. 30s, 5m, 1h30m or "
        "2d)\n"))


def test_silences_are_listed_and_expired(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, cfg, "ack")[:2] == (0, "no active alerts\n")
    assert run(capsys, cfg, "silence")[:2] == (0, "no silences in force\n")
    code, out, _ = run(capsys, cfg, "silence", "tag:laundry", "--for", "3d", "--comment",
                       "on holiday")
    assert code == 0 and out.startswith("silenced tag laundry until ")
    assert out.endswith("(id 1; `plugwatch silence --expire 1` ends it)\n")
    assert run(capsys, cfg, "silence", "rule:washer-*", "--for", "1h")[0] == 0  # a glob
    code, out, _ = run(capsys, cfg, "silence", "--list")
    first, second = out.splitlines()
    assert first.startswith("   1  tag laundry") and first.endswith("  (on holiday)")
    assert second.startswith("   2  rule washer-*")
    assert run(capsys, cfg, "silence", "--expire", "1")[:2] == (0, "silence 1 ended\n")
    code, out, _ = run(capsys, cfg, "silence")
    assert [line.split()[0] for line in out.splitlines()] == ["2"]
