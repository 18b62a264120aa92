"""Which file formats `plugwatch plot` writes: the one its extension names (.png, .svg, .pdf).

Kept apart from plugwatch.traces.plot (which imports matplotlib) so that a wrong extension is
refused at once, before any reading or drawing.
"""

from __future__ import annotations

from pathlib import Path

from plugwatch.errors import ConfigError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def output_format(path: Path) -> str:
    """The format for `path`'s extension; a one-line ConfigError for any other."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        what = f"a {path.suffix} file" if path.suffix else "a file without an extension"
        raise ConfigError(f"{path}: cannot write {what}; plots are .png, .svg or .pdf "
                          "(the extension picks the format)")
    return fmt
