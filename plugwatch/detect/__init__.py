"""The detection core (PURE): smoothed power -> levels -> dwell-confirmed states and runs.

`Detector` follows one plug sample by sample (the live service); `replay` runs a whole recorded
trace at numpy speed with exactly the same events. docs/detector.md describes the rules.
"""

from plugwatch.detect.batch import replay
from plugwatch.detect.fsm import REASONS, Detector

__all__ = ["REASONS", "Detector", "replay"]
