"""KasaDriver: reads a TP-Link Kasa plug, or one outlet of a Kasa power strip, over TCP or UDP 9999.

The first contact asks only for `system.get_sysinfo` (some devices crash on modules they lack) and
learns the `feature` string and the strip's `children`. Every later read asks for sysinfo and the
energy meter in ONE request, from a frame encoded once and reused. The sampler reads through
`begin()` (no task, lock or timer per read: the answer is parsed in the socket's callback);
`read()` is the same path awaited, for the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from plugwatch.errors import BadAnswer, DeviceError, DeviceTimeout
from plugwatch.model import Reading
from plugwatch.sources.base import ReadDone, ReadResult
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.connection import KasaLink, release_link, shared_link
from plugwatch.sources.kasa.udp import KasaUdp, release_udp, shared_udp

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.config.plugs import KasaPlug

DEFAULT_PORT = 9999
TRANSPORTS = ("tcp", "udp")
_COMBINED: dict[str, Any] = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}


class KasaDriver:
    """A CallbackDriver for one Kasa plug or strip outlet (outlet = child id, or 0-based index).

    `transport="udp"` polls the plug with datagrams through the one UDP socket all UDP plugs of
    the event loop share (legacy Kasa plugs answer the same JSON on UDP 9999, without the length
    header); a datagram that gets no answer is sent once more after a third of the timeout.
    """

    __slots__ = ("_done", "_link", "_ready", "_ts", "alias", "child_id", "frame", "host",
                 "model", "outlet", "port", "timeout", "transport", "udp_route", "where")

    def __init__(
        self, host: str, port: int = DEFAULT_PORT, outlet: str | int | None = None,
        timeout: float = 2.0, transport: str = "tcp",
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown Kasa transport {transport!r} (use tcp or udp)")
        self.host = host
        self.port = port
        self.outlet = None if outlet is None else str(outlet)
        self.timeout = timeout
        self.transport = transport
        self.where = (f"{host}:{port}" + ("" if outlet is None else f" outlet {outlet}")
                      + (" over UDP" if transport == "udp" else ""))
        self.alias: str | None = None  # the plug's (or outlet's) name in the Kasa app, once read
        self.model: str | None = None  # e.g. "HS110(EU)", once read
        self.child_id: str | None = None
        self.frame = _frame(transport, None, False)  # the combined request after first contact
        self._ready = False  # first contact done: `frame` is the combined request
        self._link: KasaLink | KasaUdp | None = None
        self.udp_route: Any = None  # KasaUdp's: where this plug's datagrams go
        self._done: ReadDone | None = None
        self._ts = 0.0

    @classmethod
    def from_config(cls, plug: PlugConfig) -> KasaDriver:
        """The driver for a configured plug (`driver: kasa`, options: config.plugs.KasaPlug)."""
        options = cast("KasaPlug", plug.options)
        return cls(options.host, options.port or DEFAULT_PORT, options.outlet, plug.timeout_s,
                   options.transport)

    # -- the fast path (CallbackDriver) ----------------------------------------------------------

    def begin(self, now: float, done: ReadDone) -> None:
        """Send one request; `done(Reading | DeviceError)` follows once, from the event loop."""
        if self._done is not None:
            raise RuntimeError(f"a read of {self.where} is already in flight")
        self._ts = now
        self._done = done
        link = self._link
        (link if link is not None else self._transport()).ask(self)

    def expire(self) -> None:
        """The read in flight has had its timeout: end it with a DeviceTimeout, hang up."""
        if self._done is None:
            return
        if self._link is not None:
            self._link.expire(self)
        if self._done is not None:  # the link did not know this read: end it all the same
            self._finish(DeviceTimeout(f"timeout after {self.timeout:g} s reading {self.where}"))

    def answered(self, answer: dict[str, Any]) -> None:
        """The link's callback with the decrypted answer object."""
        if not self._ready:
            try:
                self._learn(wire.section(answer, "system", "get_sysinfo"))
            except ValueError as exc:
                self._finish(BadAnswer(f"bad answer from {self.where}: {exc}"))
                return
            except BadAnswer as exc:
                self._finish(exc)
                return
            self._transport().ask(self)  # first contact done: now the reading itself
            return
        try:
            reading, alias = wire.reading_of(answer, self.child_id, self._ts)
        except ValueError as exc:
            self._finish(BadAnswer(f"bad answer from {self.where}: {exc}"))
            return
        self.alias = alias
        self._finish(reading)

    def failed(self, error: DeviceError) -> None:
        """The link's callback with the reason the read failed."""
        self._finish(error)

    # -- awaited forms -----------------------------------------------------------------------------

    async def read(self, now: float) -> Reading:
        """One Reading stamped `now`; raises DeviceTimeout / DeviceUnreachable / BadAnswer."""
        result = await self._wait(lambda done: self.begin(now, done), self.expire)
        if isinstance(result, DeviceError):
            raise result
        assert isinstance(result, Reading)
        return result

    async def get_sysinfo(self) -> dict[str, Any]:
        """The device's `system.get_sysinfo` object (DeviceError on failure)."""
        ask = _SysinfoAsk(self)
        result = await self._wait(ask.start, ask.expire)
        if isinstance(result, DeviceError):
            raise result
        assert isinstance(result, dict)
        return result

    async def close(self) -> None:
        """Release the (possibly shared) connection or UDP socket."""
        self.expire()
        link, self._link = self._link, None
        self.udp_route = None
        if isinstance(link, KasaLink):
            release_link(link)
        elif link is not None:
            release_udp(link)

    async def _wait(
        self, start: Callable[[Callable[[Any], None]], None], expire: Callable[[], None],
    ) -> Any:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()

        def done(value: Any) -> None:
            if not result.done():
                result.set_result(value)

        start(done)
        # expire only after the loop has polled the sockets once more: an answer that came in
        # while the loop was busy is not a timeout (and no reason to hang up)
        timer = loop.call_later(self.timeout, lambda: loop.call_at(loop.time(), expire))
        try:
            return await result
        except asyncio.CancelledError:
            expire()
            raise
        finally:
            timer.cancel()

    # -- helpers --------------------------------------------------------------------------------

    def _transport(self) -> KasaLink | KasaUdp:
        link = self._link
        if link is None:
            link = self._link = (shared_link(self.host, self.port) if self.transport == "tcp"
                                 else shared_udp())
        return link

    def _finish(self, result: ReadResult) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(result)

    def _learn(self, sysinfo: dict[str, Any]) -> None:
        """From the first sysinfo: choose the outlet, check the meter, build the request frame."""
        children = sysinfo.get("children")
        if isinstance(children, list) and children:
            self.child_id = self._pick_outlet(children)
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
        self.frame = _frame(self.transport, self.child_id, True)
        self._ready = True
        self.model = sys.intern(str(sysinfo.get("model", "?")))  # one string for all plugs
        owner = sysinfo if self.child_id is None else wire.child_of(sysinfo, self.child_id)
        self.alias = (owner or {}).get("alias")

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


@functools.lru_cache(maxsize=4096)
def _frame(transport: str, child_id: str | None, combined: bool) -> bytes:
    """The encoded request, shared by every driver asking the same (one object, not one each)."""
    request: dict[str, Any] = _COMBINED if combined else wire.SYSINFO_QUERY
    if child_id is not None:
        request = {"context": {"child_ids": [child_id]}, **request}
    encode = wire.encode_request if transport == "tcp" else wire.encode_datagram
    return encode(request)


class _SysinfoAsk:
    """A one-off `system.get_sysinfo` question on the driver's link (for `plugwatch read`)."""

    __slots__ = ("done", "driver", "frame", "host", "port", "timeout", "udp_route", "where")

    def __init__(self, driver: KasaDriver) -> None:
        self.driver = driver
        self.host, self.port = driver.host, driver.port
        self.udp_route = driver.udp_route
        self.frame = _frame(driver.transport, None, False)
        self.where = driver.where
        self.timeout = driver.timeout
        self.done: Callable[[Any], None] | None = None

    def start(self, done: Callable[[Any], None]) -> None:
        self.done = done
        self.driver._transport().ask(self)

    def expire(self) -> None:
        if self.done is not None and self.driver._link is not None:
            self.driver._link.expire(self)

    def answered(self, answer: dict[str, Any]) -> None:
        try:
            info = wire.section(answer, "system", "get_sysinfo")
        except ValueError as exc:
            self.failed(BadAnswer(f"bad answer from {self.where}: {exc}"))
            return
        self.driver.model = str(info.get("model", "?"))
        if self.done is not None:
            done, self.done = self.done, None
            done(info)

    def failed(self, error: DeviceError) -> None:
        if self.done is not None:
            done, self.done = self.done, None
            done(error)
