"""YAML files with line numbers, and pydantic errors mapped back to "file:line: field: message".

    doc = load_yaml("plugwatch.yaml")          # ConfigError on unreadable file or bad YAML
    try:
        Model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError("\\n".join(doc.problems(exc))) from None

Every value's location (a tuple of keys and list indexes) maps to the line where it was written,
so an error deep inside a list still names the line a user must edit. Duplicate keys are errors.
`Problems` gathers every problem of a document, so that one pass reports them all, in file order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plugwatch.errors import ConfigError

Loc = tuple[int | str, ...]
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def field_path(loc: Loc) -> str:
    """A location as users read it: ("plugs", 1, "interval") -> "plugs[1].interval"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class YamlDoc:
    """A parsed YAML document: plain Python `data` plus the line of every location in it."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """The line of `loc`, or of its longest known prefix (1 when nothing is known)."""
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in self.lines:
                return self.lines[loc[:cut]]
        return 1

    def where(self, loc: Loc) -> str:
        """ "file:line: field" for `loc` (just "file:line" for the document itself)."""
        name = field_path(loc)
        return f"{self.file}:{self.line_of(loc)}" + (f": {name}" if name else "")

    def error(self, loc: Loc, message: str) -> ConfigError:
        """A one-line ConfigError "file:line: field: message"."""
        return ConfigError(f"{self.where(loc)}: {message}")

    def problems(
        self, exc: ValidationError, prefix: Loc = (),
        describe: Callable[[dict[str, Any]], str] | None = None,
        relocate: Callable[[Loc, dict[str, Any]], Loc] | None = None,
    ) -> list[str]:
        """One line per error of `exc` (raised validating the data at `prefix`), in file order.

        `relocate(loc, err)` may turn pydantic's location into the user's (e.g. drop a union tag).
        """
        found = Problems(self)
        found.validation(exc, prefix, describe, relocate)
        return found.lines()

    def expand_env(
        self, environ: os._Environ[str] | dict[str, str] | None = None,
        optional: Callable[[Loc], bool] | None = None, problems: Problems | None = None,
    ) -> None:
        """Replace ${NAME} in every string value by the environment variable NAME.

        An unset variable is a problem naming the variable and where it is used (added to
        `problems`, else raised, all of them in one ConfigError), except at locations where
        `optional(loc)` is true. An unset variable's text is left as written.
        """
        env = os.environ if environ is None else environ
        found = problems if problems is not None else Problems(self)
        self.data = self._expand(self.data, (), env, optional or (lambda loc: False), found)
        if problems is None:
            found.raise_any()

    def _expand(
        self, value: Any, loc: Loc, env: Any, optional: Callable[[Loc], bool], found: Problems,
    ) -> Any:
        if isinstance(value, dict):
            return {k: self._expand(v, (*loc, k), env, optional, found) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand(v, (*loc, i), env, optional, found) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env and not optional(loc):
                found.add(loc, f"environment variable {name} is not set (export {name}=... "
                          "before starting plugwatch)")
            return str(env[name]) if name in env else match.group(0)

        return _ENV.sub(lookup, value)


class Problems:
    """Every problem found in one document, reported together in file order.

        problems = Problems(doc)
        problems.add(("plugs", 1, "name"), "duplicate plug name ...")
        problems.raise_any()        # one ConfigError, a "file:line: field: message" line each
    """

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self._found: list[tuple[int, str]] = []

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, loc: Loc, message: str) -> None:
        """A problem at `loc`."""
        self._found.append((self.doc.line_of(loc), f"{self.doc.where(loc)}: {message}"))

    def add_error(self, exc: ConfigError) -> None:
        """A ConfigError raised by `doc.error` (its text already says file:line: field)."""
        text = str(exc)
        head = text.removeprefix(f"{self.doc.file}:").split(":", 1)[0]
        self._found.append((int(head) if head.isdigit() else 0, text))

    def validation(
        self, exc: ValidationError, prefix: Loc = (),
        describe: Callable[[dict[str, Any]], str] | None = None,
        relocate: Callable[[Loc, dict[str, Any]], Loc] | None = None,
    ) -> None:
        """One problem per error of `exc` (see YamlDoc.problems)."""
        for err in exc.errors():
            loc: Loc = (*prefix, *(p for p in err["loc"] if isinstance(p, int | str)))
            if relocate is not None:
                loc = relocate(loc, dict(err))
            self.add(loc, describe(dict(err)) if describe else describe_error(dict(err)))

    def lines(self) -> list[str]:
        """The problems as lines, in file order (a stable sort: same line, order found)."""
        seen: set[str] = set()
        out = []
        for _, text in sorted(self._found, key=lambda pair: pair[0]):
            if text not in seen:
                seen.add(text)
                out.append(text)
        return out

    def raise_any(self) -> None:
        """Raise one ConfigError listing every problem, when there is any."""
        if self._found:
            raise ConfigError("\n".join(self.lines()))


def describe_error(err: dict[str, Any]) -> str:
    """A pydantic error as a short sentence with a hint, without echoing the input value."""
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "missing (this key is required)"
    return msg


def parse_yaml(text: str, file: str = "<config>") -> YamlDoc:
    """Parse YAML `text` (named `file` in messages) into a YamlDoc; ConfigError when invalid."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else file
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    doc = YamlDoc(file, None)
    if node is not None:
        doc.data = _to_python(doc, node, ())
    return doc


def load_yaml(path: str | os.PathLike[str]) -> YamlDoc:
    """Read and parse the YAML file at `path`; ConfigError when missing, unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (create it or pass --config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{path}: cannot read: {reason}") from None
    return parse_yaml(text, str(path))


def _to_python(doc: YamlDoc, node: yaml.Node, loc: Loc) -> Any:
    """Plain data from a composed node, recording each location's line in `doc.lines`."""
    doc.lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        _CONSTRUCTOR.flatten_mapping(node)  # resolve `<<: *anchor`: merged pairs come first
        merged = len(node.value) - own
        explicit: set[str] = set()
        for i, (key_node, value_node) in enumerate(node.value):
            # keys are names: keep their text, so YAML 1.1's `on:`/`off:` stay "on"/"off"
            if not isinstance(key_node, yaml.ScalarNode):
                raise doc.error(loc, "mapping keys must be plain names")
            key = key_node.value
            if i >= merged and key in explicit:
                doc.lines[(*loc, key)] = key_node.start_mark.line + 1
                raise doc.error((*loc, key), "duplicate key (each key may appear once)")
            if i >= merged:
                explicit.add(key)
            key_line = key_node.start_mark.line + 1
            out[key] = _to_python(doc, value_node, (*loc, key))
            doc.lines[(*loc, key)] = key_line  # the key's line, even for a nested block value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(doc, item, (*loc, i)) for i, item in enumerate(node.value)]
    return _CONSTRUCTOR.construct_object(node)
