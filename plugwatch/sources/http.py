"""HTTP for the plugs that answer it (Shelly, Tasmota): one shared aiohttp session, one request in
flight per device, a timeout per read, and every failure mapped here to a one-line DeviceError.

    device = HttpDevice("10.0.0.7", 80, where="10.0.0.7:80", timeout=2.0)
    status = await device.get_json("/rpc/Switch.GetStatus?id=0")   # DeviceError on any failure
    await device.close()

All devices of one event loop share one `aiohttp.ClientSession` (its connection pool keeps each
device's connection alive between reads); the session is closed with the last device. Channels of
one device share its lock, so a device never sees two requests at once from plugwatch.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from plugwatch.errors import BadAnswer, DeviceTimeout, DeviceUnreachable

if TYPE_CHECKING:
    import aiohttp

MAX_BODY = 256 * 1024  # a status answer is a few KiB; more is not a plug talking
_SESSIONS: dict[asyncio.AbstractEventLoop, _Shared] = {}


class _Shared:
    """The session of one event loop, how many devices use it, and one lock per device."""

    def __init__(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "plugwatch"},
        )
        self.users = 0
        self.locks: dict[tuple[str, int], asyncio.Lock] = {}


class HttpDevice:
    """One device reached over HTTP at host:port, read with GET requests answering JSON."""

    def __init__(
        self, host: str, port: int, where: str, timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.where = where
        self.timeout = timeout
        self.headers: dict[str, str] = {}  # e.g. Authorization (basic_auth below)
        self.middlewares: tuple[Any, ...] = ()  # e.g. a DigestAuthMiddleware (Shelly Gen2)
        self.base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._shared: _Shared | None = None

    async def get_json(self, path: str) -> Any:
        """GET `path` and return its JSON; DeviceTimeout / DeviceUnreachable / BadAnswer."""
        shared = self._use()
        lock = shared.locks.setdefault((self.host, self.port), asyncio.Lock())
        async with lock:
            try:
                async with asyncio.timeout(self.timeout):
                    try:
                        return await self._get(shared.session, path)
                    except _Stale:  # a kept-alive connection the device had closed: once more
                        try:
                            return await self._get(shared.session, path)
                        except _Stale:
                            raise DeviceUnreachable(
                                f"{self.where} closed the connection without answering") from None
            except TimeoutError:
                raise DeviceTimeout(f"timeout after {self.timeout:g} s reading {self.where}") \
                    from None

    async def _get(self, session: aiohttp.ClientSession, path: str) -> Any:
        import aiohttp

        try:
            async with session.get(self.base + path, headers=self.headers,
                                   middlewares=self.middlewares, allow_redirects=False) as resp:
                if resp.status == 401:
                    raise BadAnswer(f"{self.where} refused the credentials (HTTP 401): set the "
                                    "plug's password (and username) in plugwatch.yaml")
                body = await resp.content.read(MAX_BODY + 1)
                if resp.status != 200:
                    raise HttpStatus(self.where, resp.status, resp.reason or "", body)
        except aiohttp.ServerDisconnectedError:
            raise _Stale() from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, ConnectionRefusedError):
                raise DeviceUnreachable(f"connection refused by {self.where}") from None
            reason = exc.os_error.strerror or str(exc.os_error)
            raise DeviceUnreachable(f"cannot reach {self.where}: {reason}") from None
        except aiohttp.ClientResponseError as exc:  # not HTTP at all, or broken HTTP
            raise BadAnswer(f"bad answer from {self.where}: not a valid HTTP answer "
                            f"({_first_line(exc.message)})") from None
        except aiohttp.ClientPayloadError:
            raise BadAnswer(f"bad answer from {self.where}: the answer's body was cut off") \
                from None
        except (aiohttp.ClientOSError, ConnectionError) as exc:
            raise DeviceUnreachable(f"cannot reach {self.where}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
        if len(body) > MAX_BODY:
            raise BadAnswer(f"bad answer from {self.where}: answer longer than {MAX_BODY} bytes")
        return parse_json(body, self.where)

    def _use(self) -> _Shared:
        if self._shared is None:
            loop = asyncio.get_running_loop()
            shared = _SESSIONS.get(loop)
            if shared is None or shared.session.closed:
                shared = _SESSIONS[loop] = _Shared()
            shared.users += 1
            self._shared = shared
        return self._shared

    async def close(self) -> None:
        """Stop using the shared session; the last device of the event loop closes it."""
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            for loop, known in list(_SESSIONS.items()):
                if known is shared:
                    del _SESSIONS[loop]
            await shared.session.close()


class HttpStatus(BadAnswer):
    """The device answered with an HTTP status other than 200 (`status`; `error` is the
    message of a JSON error body such as Shelly's {"code": 404, "message": "No handler ..."})."""

    def __init__(self, where: str, status: int, reason: str, body: bytes) -> None:
        self.status = status
        self.error = _error_message(body)
        detail = f" ({self.error})" if self.error else (f" {reason}" if reason else "")
        super().__init__(f"bad answer from {where}: HTTP {status}{detail}")


def _error_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    message = data.get("message") if isinstance(data, dict) else None
    return _first_line(message) if isinstance(message, str) else None


class _Stale(Exception):
    """The device closed the connection before answering (retried once on a new one)."""


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic auth."""
    import base64

    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def parse_json(body: bytes, where: str) -> Any:
    """The JSON value of `body`; BadAnswer naming `where` when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as exc:  # bad JSON, bad UTF-8, an integer of over 4,300 digits
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else _first_line(str(exc))
        head = body[:24].decode("utf-8", "replace")
        raise BadAnswer(f"bad answer from {where}: not JSON ({why}; starts {head!r})") from None
    except RecursionError:
        raise BadAnswer(f"bad answer from {where}: JSON nested too deeply") from None


def number(obj: Any, key: str, where: str, what: str, required: bool = True) -> float | None:
    """`obj[key]` as a float; None when absent and not required; BadAnswer when not a number."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        if required:
            raise BadAnswer(f"bad answer from {where}: {what} has no {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadAnswer(f"bad answer from {where}: {what}.{key} is {_short(value)}, not a number")
    try:
        return float(value)
    except OverflowError:  # an integer like 1e400 written out
        raise BadAnswer(f"bad answer from {where}: {what}.{key} is too large to be true") \
            from None


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _first_line(text: str) -> str:
    return (text.splitlines() or [""])[0][:120]
