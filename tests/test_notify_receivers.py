"""Local receivers for notification tests: an HTTP JSON receiver and an SMTP server (aiosmtpd).

Imported by the other test_notify* modules as fixtures; it holds no tests itself.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _placeholder(port: int = 0) -> socket.socket:
    """A socket bound to `port` but not listening: it keeps the port ours while connections to it
    are refused (a receiver that is "down" without another process taking its port meanwhile)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class HttpReceiver:
    """A local HTTP server recording the JSON bodies POSTed to it; can go down and come back."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # each POST's HTTP headers, as received
        self.paths: list[str] = []  # each POST's path (with its query)
        self._held: socket.socket | None = _placeholder()
        self.port = int(self._held.getsockname()[1])
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        received, headers, paths = self.received, self.headers, self.paths
        if self._held is not None:
            self._held.close()
            self._held = None

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                headers.append(dict(self.headers.items()))
                paths.append(self.path)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._held = _placeholder(self.port)

    def close(self) -> None:
        self.down()
        if self._held is not None:
            self._held.close()
            self._held = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/"


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    receiver.up()
    yield receiver
    receiver.close()


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    port = free_port()
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()
