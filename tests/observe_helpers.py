"""Helpers for the observability tests: run the whole `plugwatch run` app in-process, fetch URLs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from plugwatch.outputs import Outputs
from plugwatch.service.app import run_service
from plugwatch.store import open_store
from tests.helpers import wait_for


@contextlib.asynccontextmanager
async def running_app(config: Any) -> AsyncIterator[tuple[Outputs, str]]:
    """run_service (rules, sender, outputs) for the block; yields (outputs, base URL)."""
    store = await asyncio.to_thread(open_store, config.database)
    outputs = Outputs(config)
    stop = asyncio.Event()
    task = asyncio.create_task(run_service(config, store, stop=stop, outputs=outputs))
    try:
        await wait_for(lambda: task.done() or (outputs.http and outputs.http._runner), 20.0)
        if task.done():
            task.result()  # raise the start-up error
        yield outputs, f"http://127.0.0.1:{outputs.http.port}"
    finally:
        stop.set()
        await task
        store.close()


async def fetch(url: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    """(status, body text, headers) of one real HTTP request."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return response.status, await response.text(), dict(response.headers)


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


class Switchable:
    """A power profile the test switches by hand: `power` W until changed (any emulated time)."""

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def __call__(self, _emulated_s: float) -> float:
        return self.watts


async def one_run(load: Switchable, detectors: dict[str, Any], plug: str, watts: float,
                  hold_s: float, rest_w: float = 2.0) -> None:
    """Once `plug` is decided (standby), draw `watts` until it is on for `hold_s`, then rest."""
    await wait_for(lambda: str(detectors[plug].state) == "standby", 20.0)
    load.watts = watts
    await wait_for(lambda: str(detectors[plug].state) == "on", 20.0)
    await asyncio.sleep(hold_s)
    load.watts = rest_w
