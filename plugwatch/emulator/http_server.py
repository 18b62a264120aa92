"""HttpEmulator: serves EmulatedHttpDevices over real HTTP/1.1 (keep-alive), one port per device.

    emulator = HttpEmulator()
    [port] = await emulator.start([EmulatedHttpDevice("tasmota", power=60.0)])
    await emulator.set_online(device, False)      # refuse connections (same port when back)
    await emulator.stop()
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.server import raise_open_file_limit


class HttpEmulator:
    """Serves emulated HTTP devices; `start()` returns their ports in the order given."""

    def __init__(self) -> None:
        self.devices: list[EmulatedHttpDevice] = []
        self.ports: list[int] = []
        self.host = "127.0.0.1"
        self._servers: dict[int, tuple[Any, asyncio.Server]] = {}  # index -> (web.Server, listener)

    async def start(
        self, devices: list[EmulatedHttpDevice], host: str = "127.0.0.1", port: int = 0,
    ) -> list[int]:
        """Listen for every device (port 0: OS-chosen ports; port P: P..P+N-1)."""
        raise_open_file_limit()
        self.host = host
        try:
            for i, device in enumerate(devices):
                self.devices.append(device)
                self.ports.append(port + i if port else 0)
                await self._listen(len(self.devices) - 1)
        except BaseException:
            await self.stop()
            raise
        return list(self.ports)

    async def set_online(self, device: EmulatedHttpDevice, online: bool) -> None:
        """Offline: close the device's listener and connections. Online: listen again."""
        index = next(i for i, d in enumerate(self.devices) if d is device)
        if online and index not in self._servers:
            await self._listen(index)
        elif not online and index in self._servers:
            web_server, listener = self._servers.pop(index)
            listener.close()
            await web_server.shutdown(0.1)

    async def stop(self) -> None:
        """Close every listener and connection."""
        for device in list(self.devices):
            await self.set_online(device, False)

    async def _listen(self, index: int) -> None:
        from aiohttp import web

        device = self.devices[index]

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            answer = device.answer(request.path, dict(request.query),
                                   request.headers.get("Authorization"))
            if answer is None:  # hung: accept the request, never answer
                await asyncio.Event().wait()
                raise AssertionError("unreachable")
            status, headers, body = answer
            return web.Response(status=status, headers=headers, body=body)

        web_server, listener, port = await listen_http(handle, self.host, self.ports[index])
        self.ports[index] = port
        self._servers[index] = (web_server, listener)


async def listen_http(handle: Any, host: str, port: int) -> tuple[Any, asyncio.Server, int]:
    """Serve the aiohttp low-level `handle` on host:port (0: OS-chosen): (web.Server, listener,
    port). Keep-alive, no access log; a cancelled request handler is cancelled."""
    from aiohttp import web

    web_server = web.Server(handle, access_log=None, handler_cancellation=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
        listener = await asyncio.get_running_loop().create_server(web_server, sock=sock)
    except BaseException:
        sock.close()
        raise
    return web_server, listener, listener.sockets[0].getsockname()[1]
