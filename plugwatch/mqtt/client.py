"""The one MQTT connection of the service: paho-mqtt driven by the asyncio event loop.

    client = MqttClient(settings, availability=Availability("plugwatch/status"))
    sub = client.subscribe("tele/washer/SENSOR", on_message)   # on_message(topic, payload, retain)
    client.add_connection_listener(on_up, on_down)             # on_down(reason: str)
    client.start()                                             # connects, reconnects with back-off
    client.publish("plugwatch/washer/state", b"{...}", retain=True)   # False while disconnected
    await client.close()

Nothing here blocks the loop: the TCP (and TLS) connect runs in a worker thread, everything else
is non-blocking socket I/O driven by add_reader/add_writer. Subscriptions live in this object and
are sent again after every reconnect; callbacks run on the event loop. With `availability`, the
client publishes its online payload there (retained) when connected and leaves the offline one
as its MQTT will (the broker publishes it when the connection dies without a goodbye).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugwatch.mqtt.settings import MqttSettings

log = logging.getLogger(__name__)

MessageCallback = Callable[[str, bytes, bool], None]  # (topic, payload, retained)
ConnectionUp = Callable[[], None]
ConnectionDown = Callable[[str], None]  # the reason, one line
SUBSCRIBE_BATCH = 200  # topic filters per SUBSCRIBE packet
CONNACK_TIMEOUT_S = 10.0
READS_PER_WAKEUP = 64  # packets read by paho per readable event before yielding to the loop
MESSAGES_PER_WAKEUP = 1000  # messages delivered per readable event before yielding to the loop


@dataclass(frozen=True, slots=True)
class Availability:
    """A retained availability topic: `online` once connected, `offline` as the will."""

    topic: str
    online: bytes = b"online"
    offline: bytes = b"offline"


@dataclass(eq=False, slots=True)
class Subscription:
    """One callback on one topic filter; `client.unsubscribe(sub)` removes it."""

    topic: str
    callback: MessageCallback
    qos: int = 0


@dataclass(slots=True)
class ClientStats:
    """Counters for logs and the bench."""

    received: int = 0
    published: int = 0
    dropped: int = 0  # publishes refused while disconnected
    connects: int = 0


class MqttClient:
    """One broker connection shared by every MQTT source and output of the service."""

    def __init__(
        self, settings: MqttSettings, *, availability: Availability | None = None,
        client_id: str | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.availability = availability
        self.client_id = client_id or settings.client_id or (
            f"plugwatch-{socket.gethostname()}-{os.getpid()}")
        self.clock = clock
        self.stats = ClientStats()
        self.connected = False
        self.last_error = ""
        self._exact: dict[str, list[Subscription]] = {}
        self._wild: list[Subscription] = []
        self._up: list[ConnectionUp] = []
        self._down: list[ConnectionDown] = []
        self._paho: Any = None
        self._sock: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[str] | None = None
        self._lost: asyncio.Event | None = None
        self._closing = False
        self._misc_task: asyncio.Task[None] | None = None
        self._to_subscribe: list[tuple[str, int]] = []
        self._to_unsubscribe: list[str] = []
        self._writing = False  # the socket's writer callback is registered

    # ---- the interface used by sources, outputs and notifications ----

    def subscribe(self, topic: str, callback: MessageCallback, qos: int = 0) -> Subscription:
        """Call `callback(topic, payload, retained)` for every message on `topic` (a filter)."""
        sub = Subscription(topic, callback, qos)
        if "+" in topic or "#" in topic:
            self._wild.append(sub)
        else:
            self._exact.setdefault(topic, []).append(sub)
        if self.connected:
            self._batch(self._to_subscribe, (topic, qos))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop calling `sub`; the broker subscription goes when no callback needs it."""
        if sub in self._wild:
            self._wild.remove(sub)
            still = any(s.topic == sub.topic for s in self._wild)
        else:
            subs = self._exact.get(sub.topic, [])
            if sub in subs:
                subs.remove(sub)
            still = bool(subs)
            if not subs:
                self._exact.pop(sub.topic, None)
        if not still and self.connected:
            self._batch(self._to_unsubscribe, sub.topic)

    def _batch(self, pending: list[Any], item: Any) -> None:
        """Queue a (un)subscription; the ones queued in one loop iteration go out together (a
        thousand plugs starting send a few packets, not thousands)."""
        if not self._to_subscribe and not self._to_unsubscribe and self._loop is not None:
            self._loop.call_soon(self._send_batches)
        pending.append(item)

    def _send_batches(self) -> None:
        subs, self._to_subscribe = self._to_subscribe, []
        unsubs, self._to_unsubscribe = self._to_unsubscribe, []
        if not self.connected:
            return  # everything is subscribed again on connect
        for i in range(0, len(subs), SUBSCRIBE_BATCH):
            self._paho.subscribe(subs[i : i + SUBSCRIBE_BATCH])
        for i in range(0, len(unsubs), SUBSCRIBE_BATCH):
            self._paho.unsubscribe(unsubs[i : i + SUBSCRIBE_BATCH])

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False,
                qos: int = 0) -> bool:
        """Queue one message; False (and nothing sent) while the broker is not connected."""
        if not self.connected:
            self.stats.dropped += 1
            return False
        if qos or not self._paho.publish_fast(topic, payload, retain):
            self._paho.publish(topic, payload, qos=qos, retain=retain)  # (or its ValueError)
        self.stats.published += 1
        return True

    def add_connection_listener(self, up: ConnectionUp | None = None,
                                down: ConnectionDown | None = None) -> None:
        """`up()` after every (re)connect, once subscriptions are sent; `down(reason)` on loss."""
        if up is not None:
            self._up.append(up)
        if down is not None:
            self._down.append(down)

    def start(self) -> None:
        """Start connecting (and reconnecting) in the background of the running loop."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._supervise(), name="mqtt-client")

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected (True) or `timeout_s` passed (False)."""
        deadline = time.monotonic() + timeout_s
        while not self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.connected

    async def close(self) -> None:
        """Publish `offline` (a clean disconnect sends no will), disconnect, stop reconnecting."""
        self._closing = True
        if self.connected and self.availability:
            a = self.availability
            info = self._paho.publish(a.topic, a.offline, qos=1, retain=True)
            await self._flush(info)
        if self._paho is not None and self.connected:
            self._paho.disconnect()
            await self._flush(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_socket()
        self.connected = False

    async def abort(self) -> None:
        """Drop the connection without a goodbye, as a killed process would: the broker
        publishes the will. For emulators and tests."""
        self._closing = True
        sock = self._sock
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_socket()
        self._paho = None
        self.connected = False
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    # ---- connection management ----

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._closing:
            reason = await self._connect_once()
            if reason is None:
                delay = 1.0
                assert self._lost is not None
                await self._lost.wait()
                reason = self.last_error
            if self._closing:
                return
            wait = min(self.settings.backoff_max_s, delay) * random.uniform(0.8, 1.2)
            log.warning("MQTT broker %s: %s (reconnecting in %.0f s)",
                        self.settings.where, reason, wait)
            await asyncio.sleep(wait)
            delay = min(self.settings.backoff_max_s, delay * 2)

    async def _connect_once(self) -> str | None:
        """One connection attempt; None once connected, else the reason it failed."""
        loop = asyncio.get_running_loop()
        paho = self._make_paho()
        self._connack = loop.create_future()
        self._lost = asyncio.Event()
        s = self.settings
        try:
            await asyncio.to_thread(paho.connect, s.host, s.port, s.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            return self._fail(_os_reason(exc))
        self._paho = paho
        self._sock = paho.socket()
        loop.add_reader(self._sock, self._on_readable)
        self._want_write()
        misc = asyncio.create_task(self._misc_loop(paho))
        try:
            refused = await asyncio.wait_for(self._connack, CONNACK_TIMEOUT_S)
        except TimeoutError:
            refused = "no CONNACK from the broker within 10 s"
        if refused:
            misc.cancel()
            self._drop_socket()
            return self._fail(refused)
        self._misc_task = misc
        return None

    def _make_paho(self) -> Any:
        import paho.mqtt.client as mqtt

        s = self.settings
        paho = _buffered_client_class()(mqtt.CallbackAPIVersion.VERSION2,
                                        client_id=self.client_id, clean_session=True,
                                        protocol=mqtt.MQTTv311)
        paho.max_inflight_messages_set(1000)
        if s.username is not None:
            paho.username_pw_set(s.username, s.password)
        if s.tls is not None:
            t = s.tls
            paho.tls_set(ca_certs=t.ca_file, certfile=t.cert_file, keyfile=t.key_file,
                         cert_reqs=ssl.CERT_NONE if t.insecure else ssl.CERT_REQUIRED)
            if t.insecure:
                paho.tls_insecure_set(True)
        if self.availability:
            paho.will_set(self.availability.topic, self.availability.offline, qos=1, retain=True)
        paho.on_connect = self._on_connect
        paho.on_disconnect = self._on_disconnect
        paho.on_message = self._on_message
        paho.on_socket_close = lambda *_: self._drop_socket()
        paho.on_socket_register_write = lambda *_: self._call_in_loop(self._want_write)
        paho.on_socket_unregister_write = lambda *_: self._call_in_loop(self._no_write)
        return paho

    def _fail(self, reason: str) -> str:
        self.last_error = reason
        return reason

    async def _misc_loop(self, paho: Any) -> None:
        """Keepalive pings and their timeouts (paho's loop_misc) once a second."""
        while self._paho is paho:
            paho.loop_misc()
            await asyncio.sleep(1.0)

    async def _flush(self, info: Any, timeout_s: float = 2.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._paho is not None and self._sock is not None and time.monotonic() < deadline:
            if self._paho.want_write() or (info is not None and not info.is_published()):
                self._paho.loop_write()
                await asyncio.sleep(0.01)
            else:
                return

    # ---- paho callbacks (on the event loop) ----

    def _on_connect(self, paho: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if self._connack is None or self._connack.done():
            return
        if reason.is_failure:
            self._connack.set_result(f"the broker refused the connection: {reason}")
            return
        self.connected = True
        self.last_error = ""
        self.stats.connects += 1
        log.info("connected to MQTT broker %s", self.settings.where)
        topics = [(t, max(s.qos for s in subs)) for t, subs in self._exact.items()]
        topics += list({s.topic: (s.topic, s.qos) for s in self._wild}.values())
        for i in range(0, len(topics), SUBSCRIBE_BATCH):
            paho.subscribe(topics[i : i + SUBSCRIBE_BATCH])
        if self.availability:
            a = self.availability
            paho.publish(a.topic, a.online, qos=1, retain=True)
        self._connack.set_result("")
        for up in list(self._up):
            try:
                up()
            except Exception:
                log.exception("MQTT connection listener failed")

    def _on_disconnect(self, _paho: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        was = self.connected
        self.connected = False
        text = "connection lost" if not str(reason) or str(reason) == "Success" else str(reason)
        text = "the broker closed the connection" if "Unspecified" in text else text
        self._fail(f"connection lost ({text})" if was else text)
        if self._lost is not None:
            self._lost.set()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(self.last_error)
        self._paho_gone()
        if was and not self._closing:
            reason_line = f"MQTT broker {self.settings.where} unreachable: {self.last_error}"
            for down in list(self._down):
                try:
                    down(reason_line)
                except Exception:
                    log.exception("MQTT connection listener failed")

    def _on_message(self, _paho: Any, _userdata: Any, msg: Any) -> None:
        self._dispatch(msg.topic, msg.payload, msg.retain)

    def _dispatch(self, topic: str, payload: bytes, retain: bool) -> None:
        """One message to every subscription it matches (paho's callback and the fast path)."""
        self.stats.received += 1
        for sub in self._exact.get(topic, ()):
            self._deliver(sub, topic, payload, retain)
        if self._wild:
            from paho.mqtt.client import topic_matches_sub

            for sub in self._wild:
                if topic_matches_sub(sub.topic, topic):
                    self._deliver(sub, topic, payload, retain)

    @staticmethod
    def _deliver(sub: Subscription, topic: str, payload: bytes, retain: bool) -> None:
        try:
            sub.callback(topic, payload, retain)
        except Exception:  # one subscriber's bug must not stop the others or the client
            log.exception("MQTT subscriber of %r failed", sub.topic)

    # ---- socket plumbing ----

    def _on_readable(self) -> None:
        paho = self._paho
        budget = MESSAGES_PER_WAKEUP
        for _ in range(READS_PER_WAKEUP):
            if paho is None:
                return
            budget -= paho.take_publishes(self._dispatch, budget)
            if self._paho is not paho or budget <= 0:
                break  # a callback closed the connection, or the others' turn
            if paho.loop_read() != 0 or self._paho is not paho:
                return  # nothing more to read (or the connection is gone)
            if not paho.buffered():
                return  # the socket says when there is more
        if self._loop is not None and self._paho is paho:  # more is buffered: go on soon
            self._loop.call_soon(self._on_readable)

    def _on_writable(self) -> None:
        if self._paho is not None:
            self._paho.loop_write()
            if self._paho is not None and not self._paho.want_write():
                self._no_write()

    def _want_write(self) -> None:
        if self._sock is not None and self._loop is not None and not self._writing:
            self._loop.add_writer(self._sock, self._on_writable)
            self._writing = True

    def _no_write(self) -> None:
        if self._sock is not None and self._loop is not None and self._writing:
            self._loop.remove_writer(self._sock)
        self._writing = False

    def _call_in_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:  # paho queues CONNECT from the connecting thread
            loop.call_soon_threadsafe(fn)

    def _drop_socket(self) -> None:
        if self._sock is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock)
                self._loop.remove_writer(self._sock)
        self._sock = None
        self._writing = False

    def _paho_gone(self) -> None:
        self._drop_socket()
        self._paho = None


_BUFFERED: Any = None


class _FastInfo:
    """The message info of fast QoS 0 publishes: nobody waits for them."""

    @staticmethod
    def _set_as_published() -> None:
        return None


_FAST_INFO = _FastInfo()


def _buffered_client_class() -> Any:
    """paho's Client reading the socket 64 KiB at a time, with a fast path for QoS 0 messages.

    paho reads each packet as 1 byte, then the length bytes, then the rest: three system calls
    per message. Served from a buffer, a burst of messages costs one call per 64 KiB. Only
    `_sock_recv` (paho 2.x's one read primitive) is replaced; `buffered()` tells the loop that
    packets are waiting although the socket is not readable any more.

    Nearly every packet a plug's report arrives in is a QoS 0 PUBLISH, and paho spends about half
    the CPU of a message on it (a message object with its lock, logging, its own topic matcher).
    `take_publishes` decodes those straight from the buffer (topic, payload, retain) while paho
    is between two packets; paho still reads everything else (acks, pings, QoS 1, the first
    packet after each refill of the buffer), in order. The other way, `publish_fast` queues QoS 0
    messages in paho's own send queue (so they keep their order with everything paho sends),
    many to one entry, sent with one system call per 64 KiB instead of one per message.
    """
    global _BUFFERED
    if _BUFFERED is not None:
        return _BUFFERED
    import paho.mqtt.client as mqtt

    class BufferedClient(mqtt.Client):
        _rx: bytes = b""
        _rx_pos = 0

        def _sock_recv(self, bufsize: int) -> bytes:
            data, pos = self._rx, self._rx_pos
            if pos >= len(data):
                data = super()._sock_recv(65536)  # BlockingIOError when there is nothing
                if not data:
                    return data  # the connection closed
                self._rx, pos = data, 0
            chunk = data[pos : pos + bufsize]
            self._rx_pos = pos + len(chunk)
            return chunk

        def take_publishes(self, deliver: MessageCallback, limit: int) -> int:
            """Deliver the complete QoS 0 PUBLISH packets at the head of the buffer, at most
            `limit`; how many. Anything else (a partial packet, an ack, QoS 1) is left to
            paho's own reader, which is between two packets whenever this runs."""
            if self._in_packet["command"] != 0 or self._protocol != mqtt.MQTTv311:
                return 0  # paho is inside a packet (it reads the rest); MQTT 5 has properties
            data, pos, end, done = self._rx, self._rx_pos, len(self._rx), 0
            while done < limit and end - pos >= 4 and data[pos] & 0xF6 == 0x30:
                first, length, shift, i = data[pos], 0, 0, pos + 1
                while True:  # the remaining length: 1-4 bytes, 7 bits each
                    if i >= end or i - pos > 4:
                        return done  # not all here (or malformed): paho's turn
                    byte = data[i]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    i += 1
                    if byte < 0x80:
                        break
                topic_end = i + 2 + ((data[i] << 8) | data[i + 1]) if end - i >= 2 else end + 1
                if end - i < length or topic_end > i + length:
                    return done  # a partial packet, or a bad one paho reports
                self._rx_pos = pos = i + length
                deliver(data[i + 2 : topic_end].decode("utf-8", "replace"),
                        data[topic_end:pos], bool(first & 1))
                done += 1
            return done

        def publish_fast(self, topic: str, payload: bytes | str, retain: bool) -> bool:
            """Queue a QoS 0 PUBLISH without paho's per-message bookkeeping (a message info
            with its lock, a message id, logging); consecutive ones share one queue entry, so
            a round of states goes out in a few system calls. False (nothing queued) for a
            topic paho must judge (empty, too long, a wildcard)."""
            name = topic.encode()
            if (not name or len(name) > 0xFFFF or b"+" in name or b"#" in name
                    or self._protocol != mqtt.MQTTv311):
                return False
            body = payload.encode() if isinstance(payload, str) else payload
            size = 2 + len(name) + len(body)
            head = bytearray((0x31 if retain else 0x30,))
            while True:
                size, digit = size >> 7, size & 0x7F
                head.append(digit | (0x80 if size else 0))
                if not size:
                    break
            head += len(name).to_bytes(2, "big")
            queue = self._out_packet
            last = queue[-1] if queue else None
            if last is not None and last["info"] is _FAST_INFO and last["to_process"] < 65536:
                chunk = last["packet"]
                last["to_process"] += len(head) + len(name) + len(body)
            else:
                chunk = bytearray()
                queue.append({"command": mqtt.PUBLISH, "mid": 0, "qos": 0, "pos": 0,
                              "to_process": len(head) + len(name) + len(body),
                              "packet": chunk, "info": _FAST_INFO})  # type: ignore[typeddict-item]
                self._call_socket_register_write()
            chunk += head
            chunk += name
            chunk += body
            return True

        def buffered(self) -> bool:
            if self._rx_pos < len(self._rx):
                return True
            sock = self._sock
            return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0

    _BUFFERED = BufferedClient
    return _BUFFERED


def _os_reason(exc: BaseException) -> str:
    """A connect error as a short phrase."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "connect timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def client_for(settings: MqttSettings, client_id: str | None = None) -> MqttClient:
    """The service's client: with the output on, `<prefix>/status` online/offline (the will)."""
    availability = Availability(settings.status_topic) if settings.publish else None
    return MqttClient(settings, availability=availability, client_id=client_id)
