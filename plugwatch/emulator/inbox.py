"""A local notification receiver: takes apprise's `json://` POSTs on 127.0.0.1 (the demo's phone).

    inbox = Inbox(lambda message: print(message.title))
    await inbox.start()              # then notify to inbox.url, e.g. "json://127.0.0.1:40123/"
    await inbox.stop()

Each POST body is apprise's JSON shape ({"title", "message", "type", ...}); the receiver answers
200 and hands the message to the callback on the event loop. One request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass

MAX_BODY = 1 << 20  # a notification is small; anything larger is refused


@dataclass(frozen=True, slots=True)
class Message:
    """One delivered notification."""

    title: str
    body: str


class Inbox:
    """An HTTP server on 127.0.0.1 (a free port) receiving apprise json:// notifications."""

    def __init__(self, on_message: Callable[[Message], None]) -> None:
        self.on_message = on_message
        self.received: list[Message] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The apprise URL that delivers here."""
        return f"json://127.0.0.1:{self.port}/"

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1; return the port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = "400 Bad Request"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            length = _content_length(head)
            if head.startswith(b"POST ") and 0 <= length <= MAX_BODY:
                data = json.loads(await asyncio.wait_for(reader.readexactly(length), 5.0))
                message = Message(str(data.get("title", "")), str(data.get("message", "")))
                self.received.append(message)
                self.on_message(message)
                status = "200 OK"
        except (OSError, TimeoutError, ValueError, AttributeError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass  # a broken request gets 400 (or nothing, when the client has gone)
        with contextlib.suppress(OSError):
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                         .encode())
            await writer.drain()
            writer.close()
            await writer.wait_closed()


def _content_length(head: bytes) -> int:
    """The Content-Length of a request head (-1 when absent or not a number)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip()) if value.strip().isdigit() else -1
    return -1
