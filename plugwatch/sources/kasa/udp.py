"""Kasa over UDP: every UDP-polled plug of an event loop shares one socket, drained in a loop.

Legacy Kasa plugs answer the same encrypted JSON on UDP 9999 as on TCP, without the 4-byte length
header (discovery works that way, and energy monitors poll HS110s so). KasaUdp sends an asker's
datagram to its plug; one reader callback drains every datagram waiting on the socket and matches
each to its plug by the sender's address. One request per address is in flight (a strip's other
outlets wait their turn). A datagram may be lost: one without an answer after a third of its
timeout is sent once more (a third, as first contact takes two exchanges, each may need a retry).
The retry sweep first takes every datagram waiting on the socket (however many piled up while
the loop was busy), so an answer that is merely unread is not taken for a loss. The owner of the
read calls `expire` once the whole timeout has passed, and only then does the read count as
failed (an answer already waiting on the socket is taken first: that read has not timed out).
A late answer to an expired read is dropped (counted in `strays`).

A retried request may be answered twice. The second answer must not be taken for the answer to
the plug's next request: real firmware answers every module a request asks (with an err_code
object for one it lacks), so an answer that lacks a module the request in flight asked for
(the sysinfo-only answer of first contact, arriving once the combined request is out) answers an
earlier request: it counts as a stray and the request stays in flight. A strip's outlets ask
the same modules: after the answer to a retried request, the next outlet's request (waiting its
turn) is sent once the second copy has come, or after as long as a retry waits, so that copy is
never taken for the other outlet's meter. (A duplicate answer to a single plug's combined request
is an answer to the same question, one interval old, and is taken.)
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import weakref
from typing import Any, Protocol

from plugwatch.errors import BadAnswer, DeviceTimeout, DeviceUnreachable
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.connection import Asker

_DRAIN_MAX = 512  # datagrams read per callback before other callbacks get their turn
_DRAIN_EVERY = 64  # datagrams sent in a row before the answers already back are taken
RETRY_AFTER = 1 / 3  # of the timeout: an unanswered datagram is sent again this much later
_RCVBUF = 4 * 1024 * 1024  # bursts of answers must not overflow the socket (capped by the kernel)

Address = tuple[str, int]
Route = tuple[Address, socket.socket]  # where an asker's datagrams go, and through which socket


class UdpAsker(Asker, Protocol):
    """An Asker that also says where its plug is; KasaUdp keeps its route in `udp_route`."""

    host: str
    port: int
    udp_route: Route | None


class KasaUdp:
    """The UDP socket(s) of one event loop, with the requests in flight and the retry sweep."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.users = 0
        self.sent = 0  # datagrams sent, retries included
        self.retries = 0
        self.strays = 0  # answers nobody waited for (late, duplicated, or from a stranger)
        self._loop = loop
        self._socks: dict[int, socket.socket] = {}  # address family -> socket
        self._buf = memoryview(bytearray(65536))
        self._addresses: dict[tuple[str, int], tuple[Address, int]] = {}  # resolved, with family
        self._resolving: dict[tuple[str, int], list[UdpAsker]] = {}
        # address -> the asker whose datagram is out (None: the second copy of an answer may come)
        self._flight: dict[Address, UdpAsker | None] = {}
        self._echoes: dict[Address, asyncio.TimerHandle] = {}  # the Nones' end
        self._queued: dict[Address, list[UdpAsker]] = {}
        self._due: dict[UdpAsker, float] = {}  # not retried yet -> loop time its retry is due
        self._asked: dict[bytes, tuple[str, ...]] = {}  # request frame -> the modules it asks
        self._timer: asyncio.TimerHandle | None = None
        self._reading = False  # in _readable (whose answers may send the next requests)

    def ask(self, asker: UdpAsker) -> None:
        """Send `asker.frame` to its plug now, or when the plug's earlier request is answered."""
        route = asker.udp_route
        if route is None:
            self._route(asker)
            return
        address = route[0]
        if address in self._flight:
            self._queued.setdefault(address, []).append(asker)
            return
        self._flight[address] = asker
        due = self._due[asker] = self._loop.time() + asker.timeout * RETRY_AFTER
        timer = self._timer
        if timer is None or due < timer.when():  # (earlier only when the timeouts differ)
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(due, self._sweep)
        self._transmit(asker, route)

    def expire(self, asker: UdpAsker) -> None:
        """`asker` has waited its whole timeout: fail it now (unless its answer is waiting)."""
        route = asker.udp_route
        if route is not None and self._flight.get(route[0]) is asker and not self._reading:
            self._drain(route[1])  # behind a busy loop its answer may wait behind hundreds
        error = DeviceTimeout(f"timeout after {asker.timeout:g} s reading {asker.where} "
                              f"(no answer to 2 datagrams)")
        if route is None:
            waiting = self._resolving.get((asker.host, asker.port), [])
            if asker in waiting:
                waiting.remove(asker)
                asker.failed(error)
            return
        address = route[0]
        if self._flight.get(address) is asker:
            self._land(address, asker)
            asker.failed(error)
        elif asker in self._queued.get(address, ()):
            self._queued[address].remove(asker)
            asker.failed(error)

    def close(self) -> None:
        """Close the sockets and forget every request."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sock in self._socks.values():
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()
        self._addresses.clear()  # askers' routes name closed sockets: KasaDriver.close drops them
        self._flight.clear()
        for timer in self._echoes.values():
            timer.cancel()
        self._echoes.clear()
        self._queued.clear()
        self._due.clear()

    # -- in event-loop callbacks -----------------------------------------------------------------

    def _transmit(self, asker: UdpAsker, route: Route) -> None:
        address, sock = route
        self.sent += 1
        try:
            sock.sendto(asker.frame, address)
        except (BlockingIOError, InterruptedError):
            pass  # the socket's buffer is full: as good as lost, the retry sends it again
        except OSError as exc:
            if self._flight.get(address) is asker:
                self._land(address, asker)
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or "error"
            asker.failed(DeviceUnreachable(f"cannot reach {asker.where}: {reason}"))
            return
        if not self.sent % _DRAIN_EVERY and not self._reading:
            # a burst (the ticks of many slots at once after a busy spell): the answers coming
            # back meanwhile must not pile up past the socket's buffer and be lost
            self._readable(sock)

    def _readable(self, sock: socket.socket) -> bool:
        """Take up to _DRAIN_MAX datagrams waiting on `sock`; True if there may be more."""
        self._reading = True
        try:
            return self._take(sock)
        finally:
            self._reading = False

    def _drain(self, sock: socket.socket) -> None:
        """Take every datagram waiting on `sock`."""
        while self._readable(sock):
            pass

    def _take(self, sock: socket.socket) -> bool:
        buf, flight, asked = self._buf, self._flight, self._asked
        for _ in range(_DRAIN_MAX):
            try:
                n, sender = sock.recvfrom_into(buf)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                continue
            address = sender if len(sender) == 2 else sender[:2]
            asker = flight.get(address)
            if asker is None:
                self.strays += 1
                if address in flight:  # the copy waited for: the next request may go
                    self._echoed(address)
                continue
            try:
                answer = wire.parse_answer(buf[:n])
            except ValueError as exc:
                self._land(address, asker)
                asker.failed(BadAnswer(f"bad answer from {asker.where}: {exc}"))
                continue
            modules = asked.get(asker.frame)
            if modules is None:
                modules = asked[asker.frame] = _modules(asker.frame)
            for module in modules:
                if module not in answer:  # an answer to an earlier request: not this one's
                    self.strays += 1
                    break
            else:
                self._land(address, asker, answered=True)
                asker.answered(answer)
        return True

    def _land(self, address: Address, asker: UdpAsker, answered: bool = False) -> None:
        """The request in flight to `address` is over (answered or failed): send the next."""
        del self._flight[address]
        retried = self._due.pop(asker, None) is None
        if answered and retried and self._queued.get(address):
            # Both datagrams may be answered, and the second copy, coming after the next
            # outlet's request, would be taken for its answer: that request waits for the copy,
            # or for as long as a retry would.
            self._flight[address] = None
            self._echoes[address] = self._loop.call_later(
                asker.timeout * RETRY_AFTER, self._echoed, address)
            return
        self._next(address)

    def _echoed(self, address: Address) -> None:
        """The second copy of an answer came, or will not: the address's next request may go."""
        timer = self._echoes.pop(address, None)
        if timer is not None:
            timer.cancel()
        if address in self._flight and self._flight[address] is None:
            del self._flight[address]
            self._next(address)

    def _next(self, address: Address) -> None:
        queued = self._queued.get(address)
        if queued:
            asker = queued.pop(0)
            if not queued:
                del self._queued[address]
            self.ask(asker)

    def _sweep(self) -> None:
        self._timer = None
        for sock in list(self._socks.values()):
            self._drain(sock)  # every answer already here: those are not losses
        now = self._loop.time()
        due = [asker for asker, at in self._due.items() if at <= now]
        for asker in due:
            del self._due[asker]
            self.retries += 1
            assert asker.udp_route is not None
            self._transmit(asker, asker.udp_route)
        if self._due:
            self._timer = self._loop.call_at(min(self._due.values()), self._sweep)

    def _socket(self, family: int) -> socket.socket:
        sock = self._socks.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            except OSError:
                sock.close()
                raise
            self._loop.add_reader(sock.fileno(), self._readable, sock)
            self._socks[family] = sock
        return sock

    def _route(self, asker: UdpAsker) -> None:
        """Find the asker's address (and the socket of its family), then ask."""
        key = (asker.host, asker.port)
        resolved = self._addresses.get(key)
        if resolved is None:
            try:
                ip = ipaddress.ip_address(asker.host)
            except ValueError:
                waiting = self._resolving.setdefault(key, [])
                waiting.append(asker)
                if len(waiting) == 1:
                    self._loop.create_task(self._lookup(key))
                return
            if not 0 <= asker.port <= 65535:
                asker.failed(DeviceUnreachable(f"cannot reach {asker.where}: "
                                               f"port must be 0-65535"))
                return
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            resolved = self._addresses[key] = ((str(ip), asker.port), family)
        try:
            sock = self._socket(resolved[1])
        except OSError as exc:
            asker.failed(DeviceUnreachable(f"cannot open a UDP socket for {asker.where}: "
                                           f"{exc.strerror or exc}"))
            return
        asker.udp_route = (resolved[0], sock)
        self.ask(asker)

    async def _lookup(self, key: tuple[str, int]) -> None:
        try:
            infos: list[Any] = await self._loop.getaddrinfo(*key, type=socket.SOCK_DGRAM)
        except OSError as exc:
            for asker in self._resolving.pop(key, []):
                reason = exc.strerror or str(exc)
                asker.failed(DeviceUnreachable(f"cannot reach {asker.where}: {reason}"))
            return
        family, _, _, _, sockaddr = infos[0]
        self._addresses[key] = ((sockaddr[0], sockaddr[1]), family)
        for asker in self._resolving.pop(key, []):
            self._route(asker)


def _modules(frame: bytes) -> tuple[str, ...]:
    """The modules a request datagram asks for: real firmware answers each (an err_code object
    for one it lacks), so an answer without one of them answers some other request."""
    request = wire.parse_answer(frame)  # a request decrypts and parses like an answer
    return tuple(module for module in request if module != "context")


_pool: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KasaUdp] = weakref.WeakKeyDictionary()


def shared_udp() -> KasaUdp:
    """The UDP poller of the running loop, shared by all its UDP plugs (refcounted)."""
    loop = asyncio.get_running_loop()
    udp = _pool.get(loop)
    if udp is None:
        udp = _pool[loop] = KasaUdp(loop)
    udp.users += 1
    return udp


def release_udp(udp: KasaUdp) -> None:
    """Give back the poller from `shared_udp`; the last user closes its sockets."""
    udp.users -= 1
    if udp.users <= 0:
        if _pool.get(udp._loop) is udp:
            del _pool[udp._loop]
        udp.close()
