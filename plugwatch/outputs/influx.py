"""The InfluxDB output (`influxdb:` in the config): readings, state changes and runs over HTTP.

The service's listeners only format a line and append it to a bounded buffer (never a wait);
one task sends batches (`batch` lines, or whatever is there every `flush` seconds) to the 1.x
`/write` or the 2.x `/api/v2/write` API. A batch leaves the buffer only once InfluxDB has
answered 204, so an InfluxDB restart loses nothing; while it is down the buffer holds up to
`buffer` lines and then drops the oldest (counted, logged once). Retries back off from 1 s to
30 s. Points are idempotent in InfluxDB (same series and time), so a batch sent twice after a
timeout is stored once. The outage is logged when it starts and when it ends, not per retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from plugwatch.config.outputs import InfluxSection
from plugwatch.model import Reading, RunSummary, Sample, Transition
from plugwatch.outputs.lineproto import reading_head, reading_line, run_line, transition_line
from plugwatch.redact import redact_text

log = logging.getLogger(__name__)
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_FLUSH_S = 5.0  # at shutdown, how long to try to send what is left


class InfluxRejected(Exception):
    """InfluxDB refused a batch for its content (HTTP 400): retrying cannot help."""


class InfluxOutput:
    """Buffers points as line protocol and writes them to InfluxDB in batches."""

    def __init__(self, section: InfluxSection) -> None:
        self.section = section
        self.prefix = section.measurement_prefix
        self.lines: deque[str] = deque()
        self.removed = 0  # lines ever removed from the buffer's left end (sent or dropped)
        self.written = 0
        self.dropped = 0
        self.rejected = 0
        self.failures = 0
        self.down_since: float | None = None
        self.last_error = ""
        self.backoff_s = BACKOFF_S  # waits between failed attempts
        self._heads: dict[str, str] = {}  # plug -> "plugwatch_reading,plug=<plug> "
        self.stop_flush_s = STOP_FLUSH_S
        self._wake: asyncio.Event | None = None

    # -- the service's listeners: format and append, nothing else -----------------------------

    def on_sample(self, plug: str, sample: Sample) -> None:
        """A live reading becomes a point (failures are not points: state changes say it)."""
        if type(sample) is Reading:
            head = self._heads.get(plug)
            if head is None:
                head = self._heads[plug] = reading_head(self.prefix, plug)
            line = reading_line(head, sample)
            if line is not None:
                self._append(line)

    def on_event(self, event: Any) -> None:
        """A live transition or finished run becomes a point."""
        if isinstance(event, Transition):
            self._append(transition_line(self.prefix, event))
        elif isinstance(event, RunSummary):
            self._append(run_line(self.prefix, event))

    def _append(self, line: str) -> None:
        lines = self.lines
        if len(lines) >= self.section.buffer:
            lines.popleft()
            self.removed += 1
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100_000 == 0:
                log.warning("InfluxDB buffer full (%d points): dropping the oldest (%d so far)",
                            self.section.buffer, self.dropped)
        lines.append(line)
        if len(lines) == self.section.batch and self._wake is not None:
            self._wake.set()

    # -- the sending task ---------------------------------------------------------------------

    def request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL, query parameters, headers) of a write, as the 1.x or 2.x API wants them."""
        s = self.section
        base = s.url.rstrip("/")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if s.token:
            headers["Authorization"] = f"Token {s.token}"
        if s.v2:
            headers["Accept"] = "application/json"  # error bodies as JSON
            return (f"{base}/api/v2/write",
                    {"org": s.org or "", "bucket": s.bucket or "", "precision": "ms"}, headers)
        params = {"db": s.database or "", "precision": "ms"}
        if s.retention_policy:
            params["rp"] = s.retention_policy
        return f"{base}/write", params, headers

    async def run(self, stop: asyncio.Event) -> None:
        """Send batches until `stop`, then try for `stop_flush_s` to send what is left."""
        import aiohttp

        self._wake = asyncio.Event()
        auth = None
        if self.section.username is not None:
            auth = aiohttp.BasicAuth(self.section.username, self.section.password or "")
        timeout = aiohttp.ClientTimeout(total=self.section.timeout)
        async with aiohttp.ClientSession(timeout=timeout, auth=auth) as session:
            attempt = 0
            while not stop.is_set():
                backoff = self.backoff_s[min(attempt, len(self.backoff_s)) - 1]
                await self._sleep(stop, self.section.flush if attempt == 0 else backoff)
                attempt = 0 if await self._send_all(session) else attempt + 1
            deadline = time.monotonic() + self.stop_flush_s
            while self.lines and time.monotonic() < deadline:
                if not await self._send_all(session):
                    await asyncio.sleep(0.5)
        if self.lines:
            log.error("InfluxDB: %d points not written at shutdown (%s)", len(self.lines),
                      self.last_error or "no answer in time")

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        if len(self.lines) >= self.section.batch:
            return
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def _send_all(self, session: Any) -> bool:
        """Send batches until the buffer is empty; False when InfluxDB did not take one."""
        while self.lines:
            head, batch = self.removed, list(_first(self.lines, self.section.batch))
            try:
                await self._post(session, "\n".join(batch))
            except InfluxRejected as exc:
                self.rejected += len(batch)
                log.error("InfluxDB rejected %d points, dropped them: %s", len(batch), exc)
            except Exception as exc:  # aiohttp, OSError, timeouts: InfluxDB is away
                self._failed(exc)
                return False
            else:
                self.written += len(batch)
                self._recovered()
            # lines dropped from the left meanwhile were part of this batch
            for _ in range(max(0, len(batch) - (self.removed - head))):
                self.lines.popleft()
                self.removed += 1
        return True

    async def _post(self, session: Any, body: str) -> None:
        url, params, headers = self.request()
        async with session.post(url, params=params, data=body.encode(), headers=headers) as r:
            if 200 <= r.status < 300:  # 204 No Content: every point written
                return
            text = (await r.text()).strip().splitlines()
            detail = f"HTTP {r.status}: {text[0][:300] if text else r.reason}"
            if r.status == 400:
                raise InfluxRejected(detail)
            raise OSError(detail)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = redact_text(str(exc) or type(exc).__name__)
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("InfluxDB at %s is not taking writes (%s): buffering up to %d points, "
                      "retrying", redact_text(self.section.url), self.last_error,
                      self.section.buffer)

    def _recovered(self) -> None:
        if self.down_since is not None:
            log.warning("InfluxDB writes work again after %.0f s", time.monotonic() -
                        self.down_since)
            self.down_since = None

    def collect(self) -> Iterator[Any]:
        """Metric families for /metrics: points written, buffered, dropped, failed writes."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield CounterMetricFamily("plugwatch_influxdb_points_written", "points InfluxDB took",
                                  value=self.written)
        yield GaugeMetricFamily("plugwatch_influxdb_points_buffered", "points waiting to be "
                                "written", value=len(self.lines))
        yield CounterMetricFamily("plugwatch_influxdb_points_dropped", "points dropped: buffer "
                                  "full, or rejected by InfluxDB",
                                  value=self.dropped + self.rejected)
        yield CounterMetricFamily("plugwatch_influxdb_write_failures", "write attempts that "
                                  "failed (retried)", value=self.failures)


def _first(lines: deque[str], count: int) -> Iterator[str]:
    for i, line in enumerate(lines):
        if i == count:
            return
        yield line
