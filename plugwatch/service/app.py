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
from collections.abc import Callable, Sequence

from plugwatch.config import Config
from plugwatch.formatting import format_duration, plural
from plugwatch.mqtt.client import client_for
from plugwatch.outputs import Outputs
from plugwatch.service.alerting import KV_KEY, Alerting
from plugwatch.service.cluster import Cluster, ServiceMembers, new_instance_id, write_fence
from plugwatch.service.controls import add_http_routes, add_mqtt_ack
from plugwatch.service.reload import reload_plugs
from plugwatch.service.service import EventListener, Service, install_stop_signals
from plugwatch.service.summary import http_url, reload_summary, startup_summary
from plugwatch.service.workers import shard_of
from plugwatch.store import Store
from plugwatch.store.leases import LeaseStore

log = logging.getLogger(__name__)


async def run_service(
    config: Config, store: Store, listeners: Sequence[EventListener] = (),
    shard: tuple[int, int] | None = None, *, stop: asyncio.Event | None = None,
    outputs: Outputs | None = None, announce: Callable[[str], None] | None = None,
) -> None:
    """`plugwatch run`: the service with its rules, sender and outputs until SIGINT/SIGTERM
    (or until `stop` is set, when given).

    A broken rule file raises RuleFileError before anything starts; SIGHUP reloads the rules
    and the plugs' detector tuning (a broken file is logged and the old settings stay in force).
    `announce(line)` is told what runs (at start, unless sharded: the parent says it) and what
    each SIGHUP reloaded.
    """
    say = announce or (lambda line: None)
    leases = None  # clustered (`cluster:`): plugs shared with other instances by leases
    if config.cluster_lease_s is not None:
        leases = LeaseStore(store, new_instance_id(), config.cluster_lease_s)
    # one rules-engine state per sampling process; clustered, one per plug (it moves with it)
    kv_key = KV_KEY if shard is None else f"{KV_KEY}@{shard[0]}/{shard[1]}"
    # condition rules (duty cycle, no run) watch the plugs this process samples; clustered,
    # the plugs it holds
    watched = [p.name for p in (config.plugs if shard is None else shard_of(config.plugs, shard))]
    alerting = await asyncio.to_thread(
        Alerting.from_config, config, store, kv_key=kv_key,
        send=leases is None and (shard is None or shard[0] == 0), plugs=watched,
        per_plug=leases is not None,
    )
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    # rules are checked against every plug; this process samples its share of them
    mine = config if shard is None else dataclasses.replace(
        config, plugs=shard_of(config.plugs, shard))
    outputs = outputs or Outputs(mine, shard=shard, every_plug=[p.name for p in config.plugs])
    mqtt = client_for(config.mqtt) if config.mqtt is not None else None  # the one broker link
    service = Service(mine, store, on_events=alerting.on_events, kv_state=alerting.kv_state,
                      listeners=[*listeners, *outputs.listeners],
                      sample_listeners=outputs.sample_listeners, clustered=leases is not None,
                      mqtt=mqtt, on_take=alerting.adopt, on_drop=alerting.forget)
    log.info("%s loaded", plural(len(alerting.engine.rules), "rule"))

    prefix = "" if shard is None else f"[worker {shard[0]}/{shard[1]}] "

    def reload() -> None:  # SIGHUP: rules, and the plugs' detector tuning (service/reload.py)
        outputs.reloading()
        rules_ok = alerting.reload()
        retuned = reload_plugs(service, config.path, shard)
        outputs.reloaded()
        say(prefix + reload_summary(rules_ok, len(alerting.engine.rules), retuned))

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    plug_names = [p.name for p in config.plugs]

    def rule_names() -> list[str]:
        return list(alerting.engine.rules)  # the rules in force, after any reload

    if outputs.http is not None:  # POST /api/ack/{alert}, GET /api/alerts
        add_http_routes(outputs.http, store, plug_names, rule_names)
    if mqtt is not None and config.mqtt is not None and (shard is None or shard[0] == 0):
        # <prefix>/ack: one process answers (unsharded, worker 0; clustered, the sender)
        add_mqtt_ack(mqtt, store, config.mqtt.prefix, plug_names, rule_names,
                     may_ack=lambda: alerting.sender.may_send is None or alerting.sender.may_send())
    if mqtt is not None:
        mqtt.start()
    await outputs.start(service, stop)
    if shard is None:
        port = outputs.http.port if outputs.http is not None else None
        for line in startup_summary(config, len(alerting.engine.rules), http_port=port):
            say(line)
    elif outputs.http is not None:  # the parent named the ports; each child says its own
        say(f"{prefix}serving {http_url(outputs.http.host, outputs.http.port)}/")
    try:
        if leases is None:
            await asyncio.gather(service.run(stop), alerting.run(stop))
        else:
            await _run_clustered(service, alerting, leases, stop)
    finally:
        await outputs.stop()
        if mqtt is not None:
            await mqtt.close()


async def _run_clustered(service: Service, alerting: Alerting, leases: LeaseStore,
                         stop: asyncio.Event) -> None:
    """Sample the plugs this instance holds leases for; on stop the cluster hands every plug
    over first, then the service and the alerting stop."""
    service.store.fencer = write_fence(service, leases.owner)
    cluster = Cluster(leases, list(service.detectors), ServiceMembers(service, alerting))
    alerting.sender.may_send = cluster.may_send
    log.info("clustered as %s: leases of %s in %s", leases.owner,
             format_duration(leases.lease_s), service.store.where)
    stopped = asyncio.Event()

    async def cluster_then_service() -> None:
        try:
            await cluster.run(stop)
        finally:
            stopped.set()

    await asyncio.gather(service.run(stopped), alerting.run(stopped), cluster_then_service())
