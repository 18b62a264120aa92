"""The composition root of `plugwatch run`: config -> sources, detectors, rules, writer, sender.

    await run_service(config, store)       # until SIGINT/SIGTERM; SIGHUP reloads the rule files

Nothing below this module knows about the others: the service samples and records, the alerting
bridge feeds the rules engine and the sender, and this is the one place that puts them together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Sequence

from plugwatch.config import Config
from plugwatch.outputs import Outputs
from plugwatch.service.alerting import KV_KEY, Alerting
from plugwatch.service.reload import reload_plugs
from plugwatch.service.service import EventListener, Service, install_stop_signals
from plugwatch.service.workers import shard_of
from plugwatch.store import Store

log = logging.getLogger(__name__)


async def run_service(
    config: Config, store: Store, listeners: Sequence[EventListener] = (),
    shard: tuple[int, int] | None = None, *, stop: asyncio.Event | None = None,
    outputs: Outputs | None = None,
) -> None:
    """`plugwatch run`: the service with its rules, sender and outputs until SIGINT/SIGTERM
    (or until `stop` is set, when given).

    A broken rule file raises RuleFileError before anything starts; SIGHUP reloads the rules
    and the plugs' detector tuning (a broken file is logged and the old settings stay in force).
    """
    kv_key = KV_KEY if shard is None else f"{KV_KEY}@{shard[0]}/{shard[1]}"
    alerting = await asyncio.to_thread(
        Alerting.from_config, config, store, kv_key=kv_key, send=shard is None or shard[0] == 0,
    )
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    # rules are checked against every plug; this process samples its share of them
    mine = config if shard is None else dataclasses.replace(
        config, plugs=shard_of(config.plugs, shard))
    outputs = outputs or Outputs(mine, shard=shard)
    service = Service(mine, store, on_events=alerting.on_events, kv_state=alerting.kv_state,
                      listeners=[*listeners, *outputs.listeners],
                      sample_listeners=outputs.sample_listeners)
    log.info("%d rules loaded", len(alerting.engine.rules))

    def reload() -> None:  # SIGHUP: rules, and the plugs' detector tuning (service/reload.py)
        outputs.reloading()
        alerting.reload()
        reload_plugs(service, config.path, shard)
        outputs.reloaded()

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    await outputs.start(service, stop)
    try:
        await asyncio.gather(service.run(stop), alerting.run(stop))
    finally:
        await outputs.stop()
