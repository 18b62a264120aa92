"""EmulatedPlug: the state of one emulated Kasa device and its answers to protocol requests.

Power is W or a callable of emulated seconds; emulated time runs `speed` times as fast as the
real (monotonic) clock. The energy counter integrates the emulated power over emulated time, so
`total_wh` stays consistent with `power_mw`. A relay that is off draws 0 W.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any, Protocol

from plugwatch.emulator.models import MODELS, base_sysinfo

PowerSource = float | Callable[[float], float]
VOLTAGE_V = 230.0
_MAX_STEPS = 3600  # integration steps per advance for a callable power (about 1 emulated s each)
_serial = count(1)


class Clocked(Protocol):
    """A device whose emulated time its outlets follow."""

    def emulated_seconds(self) -> float: ...


class EmulatedOutlet:
    """One metered output: a single plug's own, or one outlet of a strip (or of any device)."""

    def __init__(self, plug: Clocked, power: PowerSource, alias: str, child_id: str | None):
        self.plug = plug
        self.alias = alias
        self.child_id = child_id
        self._power = power
        self._relay_on = True
        self._energy_wh = 0.0
        self._last_t = 0.0
        self.on_since = plug.emulated_seconds()

    @property
    def power(self) -> PowerSource:
        """The power source: W, or a callable of emulated seconds returning W."""
        return self._power

    @power.setter
    def power(self, value: PowerSource) -> None:
        self._advance(self.plug.emulated_seconds())
        self._power = value

    @property
    def relay_on(self) -> bool:
        """Whether the relay is closed (off means the load draws 0 W)."""
        return self._relay_on

    @relay_on.setter
    def relay_on(self, value: bool) -> None:
        t = self.plug.emulated_seconds()
        self._advance(t)
        if value and not self._relay_on:
            self.on_since = t
        self._relay_on = bool(value)

    @property
    def energy_wh(self) -> float:
        """Energy drawn so far, integrated over emulated time."""
        self._advance(self.plug.emulated_seconds())
        return self._energy_wh

    def reset_energy(self) -> None:
        """Restart the energy counter at 0 (a reboot, a counter reset, a replaced plug)."""
        self._advance(self.plug.emulated_seconds())
        self._energy_wh = 0.0

    def power_w(self, t: float | None = None) -> float:
        """The power drawn at emulated time t (default now)."""
        if not self._relay_on:
            return 0.0
        p = self._power
        if callable(p):
            p = p(self.plug.emulated_seconds() if t is None else t)
        return max(0.0, float(p))

    def _advance(self, t: float) -> None:
        span = t - self._last_t
        if span <= 0:
            return
        if not self._relay_on:
            pass
        elif callable(self._power):
            steps = min(_MAX_STEPS, max(1, math.ceil(span)))
            dt = span / steps
            start = self._last_t
            total = sum(self.power_w(start + (k + 0.5) * dt) for k in range(steps))
            self._energy_wh += total * dt / 3600.0
        else:
            self._energy_wh += max(0.0, float(self._power)) * span / 3600.0
        self._last_t = t

    def realtime(self, v2: bool) -> dict[str, Any]:
        """The `emeter.get_realtime` answer in the model's firmware style."""
        p = self.power_w()
        energy = self.energy_wh
        if v2:
            return {"voltage_mv": round(VOLTAGE_V * 1000),
                    "current_ma": round(p / VOLTAGE_V * 1000),
                    "power_mw": round(p * 1000), "total_wh": round(energy), "err_code": 0}
        return {"voltage": VOLTAGE_V, "current": round(p / VOLTAGE_V, 6), "power": round(p, 3),
                "total": round(energy / 1000.0, 6), "err_code": 0}


class EmulatedPlug:
    """One emulated Kasa device: a single plug (HS110v1, HS110v2, KP115) or an HS300 strip.

    `power` is W or a callable(emulated_seconds) -> W; for a strip it may be a sequence with one
    per outlet. `.hung = True` makes the plug accept requests and never answer them. A strip's
    outlets are `.outlets[i]`, each with its own `power`, `relay_on` and `energy_wh`.
    """

    def __init__(
        self, model: str = "HS110v2", alias: str | None = None,
        power: PowerSource | Sequence[PowerSource] = 0.0, speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic, device_id: str | None = None,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
        self.model = MODELS[model]
        self.speed = speed
        self.hung = False
        self._clock = clock
        self._t0 = clock()
        serial = next(_serial)
        self.alias = alias or f"emulated {model} {serial}"
        self.device_id = device_id or f"80065E{serial:034X}"
        self._base = base_sysinfo(self.model, self.alias, self.device_id)
        n = self.model.outlets
        powers = list(power) if isinstance(power, Sequence) else [power] * max(n, 1)
        if len(powers) != max(n, 1):
            raise ValueError(f"{model} has {max(n, 1)} outlet(s) but {len(powers)} powers given")
        if n:
            self.outlets = [EmulatedOutlet(self, powers[i], f"{self.alias} outlet {i + 1}",
                                           f"{self.device_id}{i:02d}") for i in range(n)]
        else:
            self.outlets = [EmulatedOutlet(self, powers[0], self.alias, None)]

    def emulated_seconds(self) -> float:
        """Emulated time since the plug was made (real seconds times `speed`)."""
        return (self._clock() - self._t0) * self.speed

    @property
    def is_strip(self) -> bool:
        """True for a power strip (its outlets are `.outlets`)."""
        return self.model.outlets > 0

    @property
    def power(self) -> PowerSource:
        """The power source of a single plug (of outlet 0 for a strip)."""
        return self.outlets[0].power

    @power.setter
    def power(self, value: PowerSource) -> None:
        self.outlets[0].power = value

    @property
    def relay_on(self) -> bool:
        """Relay state of a single plug (for a strip: True when any outlet is on)."""
        return any(o.relay_on for o in self.outlets)

    @relay_on.setter
    def relay_on(self, value: bool) -> None:
        for outlet in self.outlets:
            outlet.relay_on = value

    @property
    def energy_wh(self) -> float:
        """Energy drawn so far (a strip: all outlets together)."""
        return sum(o.energy_wh for o in self.outlets)

    def sysinfo(self) -> dict[str, Any]:
        """The current `system.get_sysinfo` answer."""
        info = dict(self._base)
        info["alias"] = self.alias
        now = self.emulated_seconds()
        if self.is_strip:
            info["children"] = [
                {"id": o.child_id, "state": int(o.relay_on), "alias": o.alias,
                 "on_time": int(now - o.on_since) if o.relay_on else 0, "next_action": {"type": -1}}
                for o in self.outlets
            ]
        else:
            main = self.outlets[0]
            info["relay_state"] = int(main.relay_on)
            info["on_time"] = int(now - main.on_since) if main.relay_on else 0
        return info

    def outlets_for(self, context: Any) -> list[EmulatedOutlet] | None:
        """The outlets a request's `context.child_ids` selects (None if an id is unknown)."""
        if not self.is_strip or not isinstance(context, dict) or "child_ids" not in context:
            return self.outlets
        by_id = {o.child_id: o for o in self.outlets}
        ids = context.get("child_ids")
        if not isinstance(ids, list) or any(i not in by_id for i in ids):
            return None
        return [by_id[i] for i in ids]
