"""One TCP connection to a Kasa device, shared by the outlets of a strip, with no task per read.

A KasaLink owns a non-blocking socket watched with `loop.add_reader`. `ask(asker)` writes the
asker's pre-built request frame at once when the connection is open and idle; otherwise the asker
waits its turn (another outlet of the strip is in flight, or the connection is being opened: a
non-blocking connect finished in a writer callback, so no task at all for an IP address). The
answer is framed and decrypted in the reader callback and handed to `asker.answered(obj)`. Every
failure is mapped here, in one place, to a DeviceError whose one-line message names host:port
(and the outlet), handed to `asker.failed(error)`; the owner of the read decides when it has
timed out and calls `expire`.

A timeout does not hang up at once: a plug (or a loaded machine) that answers late still answers
in order, so the connection waits for that late answer, drops it and goes on; the next request
waits its turn behind it. Only when a second request times out behind a late answer (the plug
has really stopped answering) is the connection closed and the next read reconnects. So lateness
never costs a reconnection, which would cost the plug and the client more than the late answer.

Receiving is bounded by the frame: the first bytes of an answer go into a shared per-thread
buffer; a frame that does not arrive whole gets a buffer of exactly its announced length, and the
socket is read into the rest of it and no further. Bytes nobody asked for, a length header above
MAX_FRAME and a frame that does not decrypt to JSON close the connection (the next read
reconnects), so a plug that floods or talks garbage costs one connection per read, never a
growing buffer.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import weakref
from typing import Any, Protocol

from plugwatch.errors import BadAnswer, DeviceError, DeviceTimeout, DeviceUnreachable
from plugwatch.sources.kasa import protocol as wire


class Asker(Protocol):
    """Who a request is sent for: its frame, its name in messages, its timeout, two callbacks."""

    frame: bytes
    where: str
    timeout: float

    def answered(self, answer: dict[str, Any]) -> None: ...

    def failed(self, error: DeviceError) -> None: ...


class _LateAnswer:
    """Stands in for an expired asker whose answer is still to come: it is dropped on arrival."""

    frame = b""
    where = "a late answer"
    timeout = 0.0

    def answered(self, answer: dict[str, Any]) -> None:
        pass

    def failed(self, error: DeviceError) -> None:
        pass


_LATE = _LateAnswer()


class KasaLink:
    """A lazily opened connection to host:port with one request in flight at a time."""

    __slots__ = ("__weakref__", "_connecting", "_current", "_filled", "_frame", "_loop", "_sock",
                 "_waiting", "host", "port", "users")

    def __init__(self, host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self.port = port
        self.users = 0
        self._loop = loop
        self._sock: socket.socket | None = None
        # a socket connecting (an IP address), or the task looking up a host name
        self._connecting: socket.socket | asyncio.Task[None] | None = None
        self._current: Asker | None = None  # the asker whose request is on the wire
        self._waiting: list[Asker] | None = None  # askers waiting their turn, oldest first
        self._frame: bytearray | None = None  # a partly received frame, sized to its length
        self._filled = 0

    def ask(self, asker: Asker) -> None:
        """Send `asker.frame` now if the connection is open and idle, else when its turn comes."""
        if self._current is None and self._sock is not None:
            self._send(asker)
            return
        if self._waiting is None:
            self._waiting = [asker]
        else:
            self._waiting.append(asker)
        if self._sock is None and self._connecting is None:
            self._open()

    def expire(self, asker: Asker) -> None:
        """`asker` has waited its whole timeout: fail it now. If it was on the wire, its answer
        is awaited (and dropped) before the next request; if it waited behind such a late
        answer, the plug has stopped answering: hang up."""
        error = DeviceTimeout(f"timeout after {asker.timeout:g} s reading {asker.where}")
        if asker is self._current:
            self._current = _LATE
            asker.failed(error)
        elif self._waiting is not None and asker in self._waiting:
            self._waiting.remove(asker)
            if not self._waiting:
                self._waiting = None
                self._abandon()  # nobody waits for the connection: the next read tries anew
            if self._current is _LATE:
                self._close()  # (the others waiting get a new connection)
            asker.failed(error)

    def close(self) -> None:
        """Hang up and forget every request (a later `ask` reconnects)."""
        self._waiting = None
        self._abandon()
        self._close()

    # -- sending and receiving, all in event-loop callbacks ------------------------------------

    def _send(self, asker: Asker) -> None:
        self._current = asker
        assert self._sock is not None
        try:
            sent = self._sock.send(asker.frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._broken(exc)
            return
        if sent != len(asker.frame):  # a request is ~60 bytes: only a plug that stopped reading
            self._broken(OSError(errno.ENOBUFS, "the plug does not take the request"))

    def _readable(self) -> None:
        sock, frame = self._sock, self._frame
        if sock is None:
            return
        try:
            if frame is None:
                buf = wire.receive_buffer()
                n = sock.recv_into(buf)
            else:
                n = sock.recv_into(memoryview(frame)[self._filled:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._broken(exc)
            return
        if n == 0:
            self._broken(None)
        elif frame is None:
            self._first_bytes(buf, n)
        else:
            self._filled += n
            if self._filled == len(frame):
                if len(frame) == 4:
                    self._header_done(frame)
                else:
                    self._complete(memoryview(frame)[4:], extra=False)

    def _first_bytes(self, buf: memoryview, n: int) -> None:
        asker = self._current
        if asker is None:  # nobody asked: a flood, or garbage between two answers
            self._close()
            return
        if n < 4:
            self._frame = bytearray(buf[:n])
            self._frame.extend(bytes(4 - n))
            self._filled = n
            return
        (length,) = wire.HEADER.unpack_from(buf)
        if length > wire.MAX_FRAME:
            self._fail(asker, _too_long(length, asker.where))
            return
        total = 4 + length
        if n < total:
            frame = self._frame = bytearray(total)
            frame[:n] = buf[:n]
            self._filled = n
            return
        self._complete(buf[4:total], extra=n > total)

    def _header_done(self, header: bytearray) -> None:
        (length,) = wire.HEADER.unpack_from(header)
        asker = self._current
        assert asker is not None
        if length > wire.MAX_FRAME:
            self._fail(asker, _too_long(length, asker.where))
        elif length == 0:
            self._complete(memoryview(b""), extra=False)
        else:
            frame = self._frame = bytearray(4 + length)
            frame[:4] = header
            self._filled = 4

    def _complete(self, body: memoryview, extra: bool) -> None:
        asker = self._current
        assert asker is not None
        self._current, self._frame, self._filled = None, None, 0
        try:
            answer = wire.parse_answer(body)
        except ValueError as exc:  # a garbage frame: this is not a conversation worth keeping
            self._fail(asker, BadAnswer(f"bad answer from {asker.where}: {exc}"))
            return
        if extra:  # more bytes than the frame announced: a real plug never does that
            self._close()
        elif self._waiting:
            self._send(self._waiting.pop(0))
            if not self._waiting:
                self._waiting = None
        asker.answered(answer)

    def _broken(self, exc: BaseException | None) -> None:
        """The socket failed (exc) or the plug hung up (None): fail the request on the wire."""
        asker = self._current
        partial = b"" if self._frame is None else bytes(self._frame[: self._filled])
        self._close()
        if asker is not None:
            if exc is not None and not partial:
                asker.failed(_error_of(exc, asker.where))
            else:
                asker.failed(_closed_error(partial, asker.where))

    def _fail(self, asker: Asker, error: DeviceError) -> None:
        self._close()
        asker.failed(error)

    def _close(self) -> None:
        sock = self._sock
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()
            self._sock = None
        self._current, self._frame, self._filled = None, None, 0
        if self._waiting and self._connecting is None:  # the others get a new connection
            self._open()

    # -- connecting: for an IP address a non-blocking connect and a writer callback, no task --

    def _open(self) -> None:
        try:
            ip = ipaddress.ip_address(self.host)
        except ValueError:
            self._connecting = self._loop.create_task(self._look_up())
            return
        if not 0 <= self.port <= 65535:
            self._fail_waiting(OverflowError("port must be 0-65535"))
            return
        if ip.version == 6:
            self._connect_to((self.host, self.port, 0, 0), socket.AF_INET6)
        else:
            self._connect_to((self.host, self.port), socket.AF_INET)

    async def _look_up(self) -> None:
        me = asyncio.current_task()
        try:
            infos = await self._loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            if not infos:
                raise OSError(errno.EHOSTUNREACH, "no address found")
        except (OSError, ValueError) as exc:  # ValueError: a name IDNA cannot encode ("a..b")
            if self._connecting is me:
                self._connecting = None
                self._fail_waiting(exc)
            return
        if self._connecting is me:
            self._connecting = None
            family, _, _, _, address = infos[0]
            self._connect_to(address, family)

    def _connect_to(self, address: tuple[Any, ...], family: int) -> None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            err = sock.connect_ex(address)
        except OSError as exc:
            sock.close()
            self._fail_waiting(exc)
            return
        if err == 0:
            self._opened(sock)
        elif err in (errno.EINPROGRESS, errno.EAGAIN):
            self._connecting = sock
            self._loop.add_writer(sock.fileno(), self._connect_done, sock)
        else:
            sock.close()
            self._fail_waiting(OSError(err, os.strerror(err)))

    def _connect_done(self, sock: socket.socket) -> None:
        self._loop.remove_writer(sock.fileno())
        if self._connecting is not sock:  # abandoned meanwhile
            sock.close()
            return
        self._connecting = None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self._fail_waiting(OSError(err, os.strerror(err)))
        else:
            self._opened(sock)

    def _opened(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._readable)
        if self._waiting:
            first = self._waiting.pop(0)
            if not self._waiting:
                self._waiting = None
            self._send(first)

    def _abandon(self) -> None:
        """Stop connecting (nobody waits for the connection any more)."""
        connecting, self._connecting = self._connecting, None
        if isinstance(connecting, socket.socket):
            self._loop.remove_writer(connecting.fileno())
            connecting.close()
        elif connecting is not None:
            connecting.cancel()

    def _fail_waiting(self, exc: BaseException) -> None:
        waiting, self._waiting = self._waiting or [], None
        for asker in waiting:
            asker.failed(_error_of(exc, asker.where))


def _error_of(exc: BaseException, where: str) -> DeviceError:
    if isinstance(exc, ConnectionRefusedError):
        return DeviceUnreachable(f"connection refused by {where}")
    if isinstance(exc, OSError):
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc) or "error"
        return DeviceUnreachable(f"cannot reach {where}: {reason}")
    return DeviceUnreachable(f"cannot reach {where}: {exc}")  # a port above 65535, a bad name


def _too_long(length: int, where: str) -> BadAnswer:
    return BadAnswer(f"bad answer from {where}: length header says {length} bytes, "
                     f"more than the {wire.MAX_FRAME} allowed")


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


_pool: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], KasaLink]]
_pool = weakref.WeakKeyDictionary()


def shared_link(host: str, port: int) -> KasaLink:
    """The link to host:port in the running loop, shared by all its users (refcounted)."""
    loop = asyncio.get_running_loop()
    links = _pool.setdefault(loop, {})
    link = links.get((host, port))
    if link is None:
        link = links[(host, port)] = KasaLink(host, port, loop)
    link.users += 1
    return link


def release_link(link: KasaLink) -> None:
    """Give back a link from `shared_link`; the last user closes it."""
    link.users -= 1
    if link.users > 0:
        return
    links = _pool.get(link._loop, {})
    if links.get((link.host, link.port)) is link:
        del links[(link.host, link.port)]
    link.close()
