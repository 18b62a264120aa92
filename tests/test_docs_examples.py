"""The docs show what the commands print: every `$ plugwatch ...` example in docs/ is run again.

A fenced block whose first line is `$ plugwatch ARGS` is an example transcript: the rest of the
block must be exactly what `plugwatch ARGS` prints on stdout, run from the repository's root.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from plugwatch.cli import main
from tests.conftest import REPO

FENCE = re.compile(r"^```[^\n]*\n\$ plugwatch (?P<args>(?:[^\n]*\\\n)*[^\n]+)\n(?P<out>.*?)^```",
                   re.M | re.S)


def transcripts() -> list[tuple[str, str, str]]:
    """(doc file, arguments, expected output) of every transcript in docs/*.md."""
    found = []
    for doc in sorted((REPO / "docs").glob("*.md")):
        for match in FENCE.finditer(doc.read_text(encoding="utf-8")):
            args = match.group("args").replace("\\\n", " ")  # shell line continuations
            found.append((doc.name, args, match.group("out")))
    return found


@pytest.mark.parametrize(("doc", "args", "expected"), transcripts())
def test_doc_transcript_is_what_the_command_prints(
    doc: str, args: str, expected: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example in the doc is the command's real output, line for line."""
    monkeypatch.chdir(REPO)
    assert main(shlex.split(args)) == 0
    assert capsys.readouterr().out == expected, f"docs/{doc}: `plugwatch {args}` prints otherwise"


def test_the_docs_have_transcripts() -> None:
    """At least the calibrate example is checked (a regex that finds nothing checks nothing)."""
    assert any(args.startswith("calibrate ") for _, args, _ in transcripts())


def test_transcript_paths_exist() -> None:
    """Files named in transcripts are in the repository (the example can be run as shown)."""
    for _, args, _ in transcripts():
        for word in shlex.split(args):
            if "/" in word and not word.startswith("-"):
                assert (Path(REPO) / word).exists(), word


def image_commands() -> list[str]:
    """The `plugwatch plot ... -o docs/img/X` lines of the docs (how their pictures were made)."""
    found = []
    for doc in sorted((REPO / "docs").glob("*.md")):
        found += re.findall(r"^plugwatch (plot .* -o docs/img/\S+)$", doc.read_text(), re.M)
    return found


@pytest.mark.parametrize("args", image_commands())
def test_doc_pictures_come_from_their_commands(
    args: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each picture's command runs and draws an image of the committed picture's size (the
    committed one was made by it and looked at; matplotlib versions differ in the bytes)."""
    from tests.test_plot import png_size

    monkeypatch.chdir(REPO)
    words = shlex.split(args)
    committed = REPO / words[words.index("-o") + 1]
    words[words.index("-o") + 1] = str(tmp_path / committed.name)
    assert main(words) == 0
    assert png_size(tmp_path / committed.name) == png_size(committed)


def test_every_doc_picture_has_its_command() -> None:
    """No picture in docs/img without the command that makes it."""
    made = {shlex.split(a)[shlex.split(a).index("-o") + 1] for a in image_commands()}
    assert {f"docs/img/{p.name}" for p in (REPO / "docs/img").glob("*.png")} <= made
