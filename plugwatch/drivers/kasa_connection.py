"""One persistent TCP connection to a Kasa device, one request in flight, reconnect after errors.

Outlets of one power strip share a connection: `shared_connection()` hands out one per
(event loop, host, port) with a reference count. Every failure is mapped here, in one place, to a
DeviceError whose one-line message names host:port (and the outlet, when there is one).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import weakref
from typing import Any

from plugwatch.drivers import kasa_protocol as wire
from plugwatch.errors import BadAnswer, DeviceTimeout, DeviceUnreachable


class KasaConnection:
    """A lazily opened stream to host:port; `query()` sends one request and returns its answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.users = 0
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def query(self, frame: bytes, timeout: float, where: str) -> dict[str, Any]:
        """Send an encoded request frame; the decoded answer object, or a DeviceError.

        The timeout covers waiting for the connection's turn, connecting, writing and reading.
        After any error the connection is closed, so the next query reconnects.
        """
        try:
            async with asyncio.timeout(timeout):
                async with self._lock:
                    try:
                        return await self._exchange(frame, where)
                    except BaseException:
                        self._drop()
                        raise
        except TimeoutError:
            raise DeviceTimeout(f"timeout after {timeout:g} s reading {where}") from None
        except ConnectionRefusedError:
            raise DeviceUnreachable(f"connection refused by {where}") from None
        except OSError as exc:
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc) or "error"
            raise DeviceUnreachable(f"cannot reach {where}: {reason}") from None

    async def _exchange(self, frame: bytes, where: str) -> dict[str, Any]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(frame)
        try:
            header = await self._reader.readexactly(4)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                msg = f"{where} closed the connection without answering"
                raise DeviceUnreachable(msg) from None
            raise BadAnswer(
                f"bad answer from {where}: frame truncated after {len(exc.partial)} of 4 "
                "header bytes"
            ) from None
        (length,) = wire.HEADER.unpack(header)
        if length > wire.MAX_FRAME:
            raise BadAnswer(
                f"bad answer from {where}: length header says {length} bytes, "
                f"more than the {wire.MAX_FRAME} allowed"
            )
        try:
            body = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise BadAnswer(
                f"bad answer from {where}: frame truncated after {len(exc.partial)} of "
                f"{length} bytes"
            ) from None
        try:
            return wire.parse_answer(body)
        except ValueError as exc:
            raise BadAnswer(f"bad answer from {where}: {exc}") from None

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def close(self) -> None:
        """Close the stream (a later query would reconnect)."""
        writer = self._writer
        self._drop()
        if writer is not None:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


_pool: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], KasaConnection]]
_pool = weakref.WeakKeyDictionary()


def shared_connection(host: str, port: int) -> KasaConnection:
    """The connection to host:port in the running loop, shared by all its users (refcounted)."""
    conns = _pool.setdefault(asyncio.get_running_loop(), {})
    conn = conns.get((host, port))
    if conn is None:
        conn = conns[(host, port)] = KasaConnection(host, port)
    conn.users += 1
    return conn


async def release_connection(conn: KasaConnection) -> None:
    """Give back a connection from `shared_connection`; the last user closes it."""
    conn.users -= 1
    if conn.users > 0:
        return
    conns = _pool.get(asyncio.get_running_loop(), {})
    if conns.get((conn.host, conn.port)) is conn:
        del conns[(conn.host, conn.port)]
    await conn.close()
