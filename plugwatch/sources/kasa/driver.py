"""KasaDriver: reads a TP-Link Kasa plug, or one outlet of a Kasa power strip, over TCP 9999.

The first contact asks only for `system.get_sysinfo` (some devices crash on modules they lack) and
learns the `feature` string and the strip's `children`. Every later read asks for sysinfo and the
energy meter in ONE request, from a request frame encoded once and reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from plugwatch.errors import BadAnswer
from plugwatch.model import Reading
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.connection import release_connection, shared_connection

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.config.plugs import KasaPlug

DEFAULT_PORT = 9999
_SYSINFO_FRAME = wire.encode_request(wire.SYSINFO_QUERY)


class KasaDriver:
    """A Driver for one Kasa plug or strip outlet (outlet = child id verbatim, or 0-based index)."""

    def __init__(
        self, host: str, port: int = DEFAULT_PORT, outlet: str | int | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.outlet = None if outlet is None else str(outlet)
        self.timeout = timeout
        self.where = f"{host}:{port}" + ("" if outlet is None else f" outlet {outlet}")
        self.sysinfo: dict[str, Any] = {}  # the latest sysinfo, for alias/model/children
        self.child_id: str | None = None
        self._frame: bytes | None = None  # the combined request, known after first contact
        self._conn: Any = None

    @classmethod
    def from_config(cls, plug: PlugConfig) -> KasaDriver:
        """The driver for a configured plug (`driver: kasa`, options: config.plugs.KasaPlug)."""
        options = cast("KasaPlug", plug.options)
        return cls(options.host, options.port or DEFAULT_PORT, options.outlet, plug.timeout_s)

    @property
    def alias(self) -> str | None:
        """The plug's (or the outlet's) name as set in the Kasa app, once read."""
        child = self._child(self.sysinfo) if self.child_id else None
        return (child or self.sysinfo).get("alias")

    @property
    def model(self) -> str | None:
        """The device model, e.g. "HS110(EU)", once read."""
        return self.sysinfo.get("model")

    async def get_sysinfo(self) -> dict[str, Any]:
        """The device's `system.get_sysinfo` object (DeviceError on failure)."""
        answer = await self._query(_SYSINFO_FRAME)
        self.sysinfo = self._check(lambda: wire.section(answer, "system", "get_sysinfo"))
        return self.sysinfo

    async def read(self, now: float) -> Reading:
        """One Reading stamped `now`; raises DeviceTimeout / DeviceUnreachable / BadAnswer."""
        if self._frame is None:
            self._learn(await self.get_sysinfo())
            assert self._frame is not None
        answer = await self._query(self._frame)
        sysinfo = self._check(lambda: wire.section(answer, "system", "get_sysinfo"))
        self.sysinfo = sysinfo
        realtime = self._check(lambda: wire.section(answer, "emeter", "get_realtime"))
        power_w, voltage_v, current_a, energy_kwh = self._check(
            lambda: wire.normalise_emeter(realtime)
        )
        if self.child_id is None:
            relay = sysinfo.get("relay_state")
        else:
            relay = (self._child(sysinfo) or {}).get("state")
        if relay not in (0, 1):
            raise BadAnswer(f"bad answer from {self.where}: sysinfo has no relay state 0 or 1")
        return Reading(now, power_w, relay == 1, energy_kwh, voltage_v, current_a)

    async def close(self) -> None:
        """Release the (possibly shared) connection."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await release_connection(conn)

    async def _query(self, frame: bytes) -> dict[str, Any]:
        if self._conn is None:
            self._conn = shared_connection(self.host, self.port)
        result: dict[str, Any] = await self._conn.query(frame, self.timeout, self.where)
        return result

    def _check(self, parse: Any) -> Any:
        try:
            return parse()
        except ValueError as exc:
            raise BadAnswer(f"bad answer from {self.where}: {exc}") from None

    def _learn(self, sysinfo: dict[str, Any]) -> None:
        """From the first sysinfo: choose the outlet, check the meter, build the request frame."""
        children = sysinfo.get("children")
        request: dict[str, Any] = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}
        if isinstance(children, list) and children:
            self.child_id = self._pick_outlet(children)
            request = {"context": {"child_ids": [self.child_id]}, **request}
        elif self.outlet is not None:
            raise BadAnswer(
                f"{self.host}:{self.port} is a single plug, not a strip: "
                f"remove outlet {self.outlet!r}"
            )
        feature = str(sysinfo.get("feature", ""))
        if "ENE" not in feature.split(":"):
            raise BadAnswer(
                f"bad answer from {self.where}: plug has no energy meter (feature {feature!r})"
            )
        self._frame = wire.encode_request(request)

    def _pick_outlet(self, children: list[Any]) -> str:
        ids = [str(c.get("id")) for c in children if isinstance(c, dict)]
        if self.outlet is None:
            raise BadAnswer(
                f"{self.host}:{self.port} is a power strip with {len(ids)} outlets: choose one "
                f"by index 0..{len(ids) - 1} or by id ({', '.join(ids)})"
            )
        if self.outlet in ids:
            return self.outlet
        if self.outlet.isdigit() and int(self.outlet) < len(ids):
            return ids[int(self.outlet)]
        raise BadAnswer(
            f"{self.host}:{self.port} has no outlet {self.outlet!r}: use an index "
            f"0..{len(ids) - 1} or an id ({', '.join(ids)})"
        )

    def _child(self, sysinfo: dict[str, Any]) -> dict[str, Any] | None:
        for child in sysinfo.get("children") or ():
            if isinstance(child, dict) and str(child.get("id")) == self.child_id:
                return child
        return None
