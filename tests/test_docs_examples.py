"""The docs show what the commands print: every `$ plugwatch ...` example in docs/ is run again,
every command and option of `plugwatch --help` is documented, and every command line shown exists.

A fenced block whose first line is `$ plugwatch ARGS` is an example transcript: the rest of the
block must be exactly what `plugwatch ARGS` prints on stdout, run from the repository's root.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from plugwatch.cli import build_parser, main
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


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(('db', 'copy'), its parser) for every command that runs (sub-commands' leaves)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))
            return
    yield path, parser


COMMANDS = dict(_commands(build_parser()))
EVERYWHERE = {"--help", "--verbose", "--quiet"}  # README: "-v/-q anywhere on the line"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


def test_every_command_and_option_is_in_readme_or_docs() -> None:
    """Each command `plugwatch --help` lists (`plugwatch db copy`, ...) is named in README or
    docs, and so is each of its long options."""
    text = "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS)
    missing = []
    for path, parser in COMMANDS.items():
        command = "plugwatch " + " ".join(path)
        if not re.search(re.escape(command) + r"\b", text):
            missing.append(command)
        missing += [f"{command} {option}" for option in sorted(_options(parser) - EVERYWHERE)
                    if option.startswith("--") and option not in text]
    assert missing == []


def test_every_command_line_in_the_docs_is_one_plugwatch_accepts() -> None:
    """The `plugwatch ...` lines of README's and docs' code blocks name real commands, with
    options those commands have (a renamed flag or command fails here)."""
    top = _options(build_parser())
    wrong = []
    for doc in DOCS:
        for block in re.findall(r"^```[^\n]*\n(.*?)^```", doc.read_text(encoding="utf-8"),
                                re.M | re.S):
            for line in block.splitlines():
                found = re.match(r"^(?:\$ )?(?:sudo \S+ )?(?:\S*/)?plugwatch (?!\w+:)(.*)$", line)
                if not found:  # not a command line (or output such as "plugwatch run: ...")
                    continue
                words = found.group(1).split("  #")[0].split()
                while words and words[0].startswith("-"):  # options before the command
                    words = words[2:] if words[0] == "--log-format" else words[1:]
                path: tuple[str, ...] = ()
                while words and any(c[:len(path) + 1] == (*path, words[0]) for c in COMMANDS):
                    path, words = (*path, words[0]), words[1:]
                if path not in COMMANDS:
                    wrong.append(f"{doc.name}: {line}")
                    continue
                known = _options(COMMANDS[path]) | top
                for word in words:
                    flag = re.sub(r"[\[\]()|,;`'\"]", " ", word).split()
                    if (flag and flag[0].startswith("-") and not re.match(r"-\d", flag[0])
                            and flag[0].split("=")[0] not in known):
                        wrong.append(f"{doc.name}: {' '.join(path)} has no {flag[0]}: {line}")
    assert wrong == []


def test_readmes_layout_names_every_folder_and_nothing_that_is_gone() -> None:
    """README's "Layout" block lists each module and sub-package at plugwatch/'s top, and each
    path it names exists."""
    block = re.search(r"^## Layout\n.*?^```\n(.*?)^```", (REPO / "README.md").read_text(),
                      re.M | re.S)
    assert block, "README has no layout block"
    named = set()
    for line in block.group(1).splitlines():
        words = line.split()
        if line.startswith(" ") or not words:
            continue
        first = words[0].rstrip(",")  # "plugwatch/logs.py, redact.py  log setup; ..."
        named.add(first)
        for before, word in itertools.pairwise(words):
            if not before.endswith(","):
                break
            named.add(first[:first.rfind("/") + 1] + word.rstrip(","))
    assert {name for name in named if not (REPO / name).exists()} == set()
    top = {f"plugwatch/{p.name}" + ("/" if p.is_dir() else "")
           for p in (REPO / "plugwatch").iterdir()
           if p.name not in ("__init__.py", "__main__.py", "__pycache__", "migrations")
           and (p.is_dir() or p.suffix == ".py")}
    assert top - named == set()


def _models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (`Section | None`, `list[Plug]`, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _keys(model: type[BaseModel], prefix: str = "", seen: set[type] | None = None,
          ) -> Iterator[str]:
    """Every key the config file accepts under `model`, dotted (`mqtt.tls.ca_file`)."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        key = field.alias or name
        yield prefix + key
        for inner in _models(field.annotation):
            yield from _keys(inner, f"{prefix}{key}.", seen)


def test_every_configuration_key_is_documented() -> None:
    """Each key plugwatch.yaml accepts (top level, sections, every plug family's) is named in
    docs/configuration.md (or the MQTT/rules docs it points to for mqtt: and targets:)."""
    from plugwatch.config import plugs
    from plugwatch.config.models import ConfigFile

    text = "\n".join((REPO / "docs" / name).read_text(encoding="utf-8")
                     for name in ("configuration.md", "mqtt.md", "rules.md"))
    families = [m for m in vars(plugs).values()
                if isinstance(m, type) and issubclass(m, BaseModel)]
    keys = {*_keys(ConfigFile), *(k for m in families for k in _keys(m, "plugs[]."))}
    internal = {"defaults.window.count", "defaults.window.seconds",  # `window: 20s` or `5`
                "plugs[].window.count", "plugs[].window.seconds"}

    def named(key: str) -> bool:
        last = re.escape(key.rsplit(".", 1)[-1])
        return bool(re.search(rf"^\s*-?\s*{last}:|`{last}`|[{{,] ?{last}\b[^`\n]*`|\b{last}:",
                              text, re.M))

    assert sorted(k for k in keys - internal if not named(k)) == []
