"""The HTTP endpoint (`http:` in the config), served by aiohttp inside the service's event loop.

    GET /           the status page (HTML, refreshes itself)
    GET /metrics    Prometheus metrics
    GET /healthz    200 "ok", or 503 with a one-line reason
    GET /api/status JSON: {"service": {...}, "plugs": [{plug, state, since, power_w, ...}]}

Other parts of plugwatch add their own routes before the endpoint starts:

    outputs.http.add_route("POST", "/api/ack/{alert}", handler)   # an aiohttp handler

Work that takes longer than a few milliseconds (building /metrics, database queries for the page)
runs in a worker thread, so a scrape never delays sampling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from plugwatch.outputs.live import LiveView

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[Any]]  # aiohttp.web.Request -> aiohttp.web.StreamResponse


class HttpEndpoint:
    """One aiohttp server: the built-in routes plus those added with add_route()."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port  # the bound port once started (port 0 picks a free one)
        self._view: LiveView | None = None
        self.render_metrics: Callable[[], bytes] | None = None
        self.page: Any = None  # plugwatch.outputs.page.StatusPage, set by the outputs
        self._routes: list[tuple[str, str, Handler]] = []
        self._runner: Any = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `handler` for `method path` (aiohttp path syntax); call before start()."""
        if self._runner is not None:
            raise RuntimeError("add routes before the HTTP endpoint starts")
        self._routes.append((method.upper(), path, handler))

    @property
    def view(self) -> LiveView:
        """The live service this endpoint shows (set by start())."""
        if self._view is None:
            raise RuntimeError("the HTTP endpoint has not started")
        return self._view

    async def start(self, view: LiveView, render_metrics: Callable[[], bytes] | None) -> None:
        """Bind and serve `view`; a port already in use is a ConfigError naming the address."""
        from aiohttp import web

        from plugwatch.errors import ConfigError

        self._view, self.render_metrics = view, render_metrics
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._page)
        app.router.add_get("/plug/{name}", self._plug_page)
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"http.listen: cannot listen on {self.host}:{self.port}: "
                              f"{exc.strerror or exc} (is another plugwatch running? choose "
                              "another port)") from None
        self._runner = runner
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        log.info("serving the status page, /metrics and /healthz on http://%s:%d/",
                 self.host, self.port)

    async def stop(self) -> None:
        """Stop serving (requests in progress get a short grace)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: Any) -> Any:
        from aiohttp import web

        health = self.view.health()
        return web.Response(status=200 if health.ok else 503, text=health.reason + "\n")

    async def _status(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"service": self.view.summary(), "plugs": self.view.plugs()})

    async def _metrics(self, request: Any) -> Any:
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST

        if self.render_metrics is None:
            raise web.HTTPNotFound(text="metrics are not enabled\n")
        body = await asyncio.to_thread(self.render_metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _page(self, request: Any) -> Any:
        from aiohttp import web

        if self.page is None:
            return web.json_response({"service": self.view.summary(), "plugs": self.view.plugs()})
        html = await asyncio.to_thread(self.page.overview, _refresh(request))
        return web.Response(text=html, content_type="text/html")

    async def _plug_page(self, request: Any) -> Any:
        from aiohttp import web

        name = request.match_info["name"]
        if self.page is None or name not in self.view.service.detectors:
            raise web.HTTPNotFound(text=f"no plug named {name!r}\n")
        html = await asyncio.to_thread(self.page.plug, name, _refresh(request))
        return web.Response(text=html, content_type="text/html")


def _refresh(request: Any) -> int:
    """The page's reload period: ?refresh=S (2 to 3600 s), else 30 s."""
    text = request.query.get("refresh", "")
    return int(text) if text.isdigit() else 30
