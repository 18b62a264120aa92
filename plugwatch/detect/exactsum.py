"""An exactly rounded running sum (Shewchuk's partials), so streaming and batch energies agree.

`ExactSum` keeps a few non-overlapping partials whose exact total is the sum of everything added;
`value()` rounds that total once (math.fsum). math.fsum over the same terms in any order gives the
same float, which is how the numpy batch path reproduces the streaming detector bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class ExactSum:
    """A running sum of floats that is exact until `value()` rounds it once."""

    __slots__ = ("partials",)

    def __init__(self, partials: Iterable[float] = ()) -> None:
        self.partials: list[float] = []
        for x in partials:
            self.add(x)

    def add(self, x: float) -> None:
        """Add one finite float exactly."""
        kept = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                self.partials[kept] = low
                kept += 1
            x = high
        del self.partials[kept:]
        self.partials.append(x)

    def merge(self, other: ExactSum) -> None:
        """Add everything `other` holds."""
        for x in other.partials:
            self.add(x)

    def total_with(self, other: ExactSum) -> float:
        """The exact sum of both, correctly rounded (neither is changed)."""
        return math.fsum(self.partials + other.partials)

    def value(self) -> float:
        """The exact sum, correctly rounded to a float."""
        return math.fsum(self.partials)

    def to_list(self) -> list[float]:
        """The partials, for a snapshot (a handful of floats)."""
        return list(self.partials)

    def __repr__(self) -> str:
        return f"ExactSum({self.value()!r})"
