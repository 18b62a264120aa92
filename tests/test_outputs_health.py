"""/healthz and the watchdog's test during real database trouble: PostgreSQL behind a proxy that
the test cuts (unreachable) or freezes (the writer hangs), while the service samples a plug."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plugwatch.config import config_from_dict
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import DetectorSettings
from tests.helpers import wait_for
from tests.observe_helpers import fetch, running_app, scrape
from tests.tcp_proxy import TcpProxy

FAST = DetectorSettings(window_s=0.1, unreachable_after=3, gap_s=5.0)


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A scratch schema's options (search_path) for a URL through the proxy."""
    from plugwatch.store.scratch import scratch_schema

    with scratch_schema(postgres_url) as url:
        yield url[url.index("?"):]


async def test_healthz_says_why_while_the_database_is_away_or_hangs(pg_schema: str) -> None:
    """200 while writing; 503 "database unreachable: ..." while PostgreSQL cannot be reached;
    200 again once it is back; 503 "database writer stuck: ..." while it hangs."""
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="plug", power=30.0)])
    config = config_from_dict({
        "database": f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test{pg_schema}",
        "defaults": {"interval": 0.1, "timeout": 0.5},
        "plugs": [{"name": "plug", "host": f"127.0.0.1:{port}"}],
        "http": {"listen": "127.0.0.1:0"},
    }, detector=FAST)
    try:
        async with running_app(config) as (outputs, base):
            view = outputs.view
            await wait_for(lambda: view.service.writer.stats.batches >= 2, 10.0)
            status, body, _ = await fetch(f"{base}/healthz")
            assert (status, body) == (200, "ok\n")

            await proxy.cut()
            await wait_for(lambda: not view.health().ok, 15.0)
            status, body, _ = await fetch(f"{base}/healthz")
            assert status == 503 and body.startswith("database unreachable: ")
            assert body.count("\n") == 1
            _, text, _ = await fetch(f"{base}/metrics")
            assert scrape(text)[("plugwatch_healthy", ())] == 0.0

            await proxy.start()
            await wait_for(lambda: view.health().ok, 15.0)
            assert (await fetch(f"{base}/healthz"))[0] == 200

            view.stuck_after_s = 1.0  # 30 s in production
            proxy.freeze()
            await wait_for(lambda: view.health().reason.startswith("database writer stuck"), 15.0)
            status, body, _ = await fetch(f"{base}/healthz")
            assert status == 503 and "items waiting, last write" in body
            proxy.thaw()
            await wait_for(lambda: view.health().ok, 15.0)
    finally:
        proxy.thaw()
        await emulator.stop()
        await proxy.cut()
