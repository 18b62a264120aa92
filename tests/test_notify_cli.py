"""`plugwatch notify test` and `plugwatch rules check --config` with a real plugwatch.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notify_receivers import HttpReceiver, http_receiver

from plugwatch.cli import main

__all__ = ["http_receiver"]  # fixture
REPO = Path(__file__).resolve().parent.parent


def config(tmp_path: Path, targets: str, rules: str = "rules") -> Path:
    path = tmp_path / "plugwatch.yaml"
    path.write_text(
        "database: sqlite:///pw.db\n"
        "plugs:\n"
        "  - {name: washer, driver: kasa, host: 127.0.0.1, tags: [laundry]}\n"
        "  - {name: freezer, driver: kasa, host: 127.0.0.2, tags: [critical]}\n"
        "  - {name: tv, driver: kasa, host: 127.0.0.3}\n"
        f"targets:\n{targets}"
        f"rules: {rules}\n",
        encoding="utf-8",
    )
    return path


def test_notify_test_sends_one_message_and_shows_no_secret(
    tmp_path: Path, http_receiver: HttpReceiver, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUSH_TOKEN", "t0psecret")
    url = f"json://user:${{PUSH_TOKEN}}@127.0.0.1:{http_receiver.port}/"
    cfg = config(tmp_path, f"  phone: {url}\n")
    assert main(["notify", "test", "phone", "--config", str(cfg)]) == 0
    assert [m["title"] for m in http_receiver.received] == ["plugwatch test"]
    out = capsys.readouterr().out
    assert out.startswith("sent a test message to 'phone'") and "t0psecret" not in out


def test_notify_test_failure_is_one_line_without_the_secret(
    tmp_path: Path, http_receiver: HttpReceiver, capsys: pytest.CaptureFixture[str],
) -> None:
    http_receiver.down()
    cfg = config(tmp_path, f"  phone: json://u:pa55word@127.0.0.1:{http_receiver.port}/\n")
    assert main(["notify", "test", "phone", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("plugwatch: error: target 'phone'") and err.count("\n") == 1
    assert "pa55word" not in err
    assert main(["notify", "test", "pager", "--config", str(cfg)]) == 1
    assert "unknown target 'pager' (targets in the config: phone)" in capsys.readouterr().err


def test_rules_check_uses_the_config_rules_folder_and_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, "  phone: json://127.0.0.1:9/\n  mail: mailto://127.0.0.1:9?to=a@b.c\n",
                 rules=str(REPO / "rules"))
    assert main(["rules", "check", "--config", str(cfg)]) == 0
    captured = capsys.readouterr()
    assert "8 rules in 6 files OK" in captured.out
    assert "'iron*' matches no plug yet" in captured.err  # a warning, not an error
    (tmp_path / "both.yaml").write_text(
        "- name: both\n  when: {to: unreachable}\n  notify: [phone, mail]\n", encoding="utf-8")
    only_phone = config(tmp_path, "  phone: json://127.0.0.1:9/\n",
                        rules=str(tmp_path / "both.yaml"))
    assert main(["rules", "check", "--config", str(only_phone)]) == 1
    err = capsys.readouterr().err
    assert "rule 'both': notify: unknown target 'mail' (targets: phone)" in err
