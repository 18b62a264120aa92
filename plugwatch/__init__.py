"""plugwatch: watches power-metering smart plugs and reports appliance state changes."""

from plugwatch.model import (
    DetectorSettings,
    ReadFailure,
    Reading,
    RunSummary,
    State,
    Transition,
)

__all__ = [
    "DetectorSettings",
    "ReadFailure",
    "Reading",
    "RunSummary",
    "State",
    "Transition",
]
__version__ = "0.1.0"
