"""The detection core (PURE): smoothed power -> levels -> dwell-confirmed states and runs.

`Detector` runs one plug sample by sample (the live service); `replay` runs a whole recorded trace
at numpy speed with exactly the same events. `calibrate` proposes settings from a recording.
"""

from plugwatch.detect.batch import replay
from plugwatch.detect.fsm import Detector

__all__ = ["Detector", "replay"]
