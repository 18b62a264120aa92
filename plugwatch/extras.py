"""Optional parts of plugwatch: import one, or say in one line which pip extra provides it.

    matplotlib = require("matplotlib", "plot", "plotting")   # MissingExtra when not installed
"""

from __future__ import annotations

import importlib
from types import ModuleType

from plugwatch.errors import MissingExtra


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import `module`; MissingExtra naming `pip install 'plugwatch[extra]'` when it is absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is None or module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module is there but broken: show the real error
        raise MissingExtra(
            f"{needed_for} needs the optional '{extra}' part of plugwatch, which is not installed: "
            f"pip install 'plugwatch[{extra}]' (or pipx inject plugwatch {_pipx_name(extra)})"
        ) from None


def _pipx_name(extra: str) -> str:
    return {"plot": "matplotlib", "postgres": "'psycopg[binary]'", "kasa-new": "python-kasa",
            "mdns": "zeroconf"}.get(
        extra, f"'plugwatch[{extra}]'")
