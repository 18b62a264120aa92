"""One persistent TCP connection to a Kasa device, one request in flight, reconnect after errors.

Outlets of one power strip share a connection: `shared_connection()` hands out one per
(event loop, host, port) with a reference count. Every failure is mapped here, in one place, to a
DeviceError whose one-line message names host:port (and the outlet, when there is one).
"""

from __future__ import annotations

import asyncio
import errno
import weakref
from typing import Any, cast

from plugwatch.errors import BadAnswer, DeviceError, DeviceTimeout, DeviceUnreachable
from plugwatch.sources.kasa import protocol as wire


class _FrameProtocol(asyncio.BufferedProtocol):
    """Collects one length-prefixed answer frame per request into a waiting future.

    A BufferedProtocol: the transport receives into a reused buffer instead of allocating (and
    shrinking) a 256 KiB bytes object per answer, which was a quarter of the CPU of a read.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.waiter: asyncio.Future[bytes] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return wire.receive_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        # Called right after the receive into get_buffer()'s buffer, before any other callback.
        self.data_received(wire.receive_buffer()[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        buf = self.buf = self.buf + data if self.buf else data
        waiter = self.waiter
        if waiter is None or waiter.done() or len(buf) < 4:
            return
        (length,) = wire.HEADER.unpack_from(buf)
        if length > wire.MAX_FRAME:
            waiter.set_exception(_FrameTooLong(length))
        elif len(buf) >= 4 + length:
            self.buf = b""
            waiter.set_result(buf[4 : 4 + length])

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if isinstance(exc, OSError) and not self.buf:
                waiter.set_exception(exc)
            else:
                waiter.set_exception(_ClosedEarly(self.buf))


class _FrameTooLong(Exception):
    def __init__(self, length: int) -> None:
        self.length = length


class _ClosedEarly(Exception):
    def __init__(self, partial: bytes) -> None:
        self.partial = partial


class KasaConnection:
    """A lazily opened connection to host:port; `query()` sends one request, returns its answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.users = 0
        self._lock = asyncio.Lock()
        self._proto: _FrameProtocol | None = None

    async def query(self, frame: bytes, timeout: float, where: str) -> dict[str, Any]:
        """Send an encoded request frame; the decoded answer object, or a DeviceError.

        The timeout covers waiting for the connection's turn, connecting, writing and reading.
        After any error the connection is closed, so the next query reconnects.
        """
        try:
            proto = self._proto
            if proto is None or proto.lost or self._lock.locked():
                async with asyncio.timeout(timeout):
                    async with self._lock:
                        try:
                            body = await self._exchange(frame)
                        except BaseException:
                            self._drop()
                            raise
            else:
                body = await self._exchange_open(proto, frame, timeout)
        except TimeoutError:
            raise DeviceTimeout(f"timeout after {timeout:g} s reading {where}") from None
        except ConnectionRefusedError:
            raise DeviceUnreachable(f"connection refused by {where}") from None
        except OSError as exc:
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc) or "error"
            raise DeviceUnreachable(f"cannot reach {where}: {reason}") from None
        except (OverflowError, ValueError) as exc:  # a port above 65535, an invalid host name
            raise DeviceUnreachable(f"cannot reach {where}: {exc}") from None
        except _FrameTooLong as exc:
            raise BadAnswer(
                f"bad answer from {where}: length header says {exc.length} bytes, "
                f"more than the {wire.MAX_FRAME} allowed"
            ) from None
        except _ClosedEarly as exc:
            raise _closed_error(exc.partial, where) from None
        try:
            return wire.parse_answer(body)
        except ValueError as exc:
            raise BadAnswer(f"bad answer from {where}: {exc}") from None

    async def _exchange(self, frame: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        proto = self._proto
        if proto is None or proto.lost:
            _, proto = await loop.create_connection(_FrameProtocol, self.host, self.port)
            self._proto = proto
        proto.buf = b""  # nothing may precede the answer to this request
        waiter = proto.waiter = loop.create_future()
        assert proto.transport is not None
        proto.transport.write(frame)
        return await waiter

    async def _exchange_open(self, proto: _FrameProtocol, frame: bytes, timeout: float) -> bytes:
        """The common case, an open idle connection: one timer on the answer instead of an
        asyncio.timeout() block (its bookkeeping was a quarter of the CPU of a read)."""
        loop = asyncio.get_running_loop()
        async with self._lock:  # free, so taken without waiting
            proto.buf = b""
            waiter = proto.waiter = loop.create_future()
            timer = loop.call_at(loop.time() + timeout, _expire, waiter)
            try:
                assert proto.transport is not None
                proto.transport.write(frame)
                return await waiter
            except BaseException:
                self._drop()
                raise
            finally:
                timer.cancel()

    def _drop(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.abort()
        self._proto = None

    async def close(self) -> None:
        """Close the connection (a later query would reconnect)."""
        self._drop()


def _expire(waiter: asyncio.Future[bytes]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _closed_error(partial: bytes, where: str) -> DeviceError:
    if not partial:
        return DeviceUnreachable(f"{where} closed the connection without answering")
    if len(partial) < 4:
        return BadAnswer(
            f"bad answer from {where}: frame truncated after {len(partial)} of 4 header bytes"
        )
    (length,) = wire.HEADER.unpack_from(partial)
    return BadAnswer(
        f"bad answer from {where}: frame truncated after {len(partial) - 4} of {length} bytes"
    )


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
