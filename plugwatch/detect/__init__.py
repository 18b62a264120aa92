"""The detection core (PURE): smoothed power -> levels -> dwell-confirmed states and runs.

`Detector` follows one plug sample by sample (the live service); `replay` runs a whole recorded
trace at numpy speed with exactly the same events. docs/detector.md describes the rules. The
names are loaded on first use, so `plugwatch.detect.kinds` (the config needs it) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugwatch.detect.batch import replay
    from plugwatch.detect.fsm import REASONS, Detector

__all__ = ["REASONS", "Detector", "replay"]


def __getattr__(name: str) -> Any:
    if name == "replay":
        from plugwatch.detect.batch import replay

        return replay
    if name in ("Detector", "REASONS"):
        from plugwatch.detect import fsm

        return getattr(fsm, name)
    raise AttributeError(f"module 'plugwatch.detect' has no attribute {name!r}")
