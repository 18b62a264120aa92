"""SIGHUP (`systemctl reload plugwatch`): apply what can change while sampling goes on.

The rule files are reloaded by the alerting bridge. From plugwatch.yaml, the detector tuning of
plugs already sampled (thresholds, hysteresis, dwell, window, unreachable_after, gap) is applied at
once: each such detector continues from its own state with the new settings, nothing is announced.
Everything else (plugs added or removed, a new address, driver, interval or timeout, the database,
http:, influxdb:) needs a restart, and the log says which plugs and what to run.
"""

from __future__ import annotations

import logging
from typing import Any

from plugwatch.errors import PlugwatchError
from plugwatch.service.workers import shard_of

log = logging.getLogger(__name__)


def _reached(plug: Any) -> tuple[Any, ...]:
    """How a plug is read: its driver, its entry's keys but the tuning ones (a plug's own
    thresholds or dwell are retuned like the defaults), its interval and timeout."""
    from plugwatch.config.tuning import Tuning

    entry = plug.options.model_dump(exclude=set(Tuning.model_fields))
    return plug.driver, entry, plug.interval_s, plug.timeout_s


def reload_plugs(service: Any, path: Any, shard: tuple[int, int] | None = None) -> list[str]:
    """Re-read the config at `path` and retune `service`'s detectors; returns the plugs retuned.

    A broken file is logged (one line per problem) and nothing changes.
    """
    from plugwatch.config import load_config

    if path is None:
        return []
    try:
        new = load_config(path)
    except PlugwatchError as exc:
        log.error("plugwatch.yaml not reloaded, the running settings stay in force:\n%s", exc)
        return []
    fresh = {p.name: p for p in shard_of(new.plugs, shard)}
    running = service.plug_configs
    retuned, restart = [], sorted(f"{name} (added)" for name in fresh.keys() - running.keys())
    for name, old in running.items():
        plug = fresh.get(name)
        if plug is None:
            restart.append(f"{name} (removed)")
        elif _reached(plug) != _reached(old):
            restart.append(f"{name} (address, driver, interval or timeout)")
        elif plug.detector != old.detector:
            service.retune(plug)
            retuned.append(name)
    if retuned:
        log.info("new detector settings for %s", ", ".join(retuned))
    if restart:
        log.warning("plug changes that need a restart (systemctl restart plugwatch): %s",
                    ", ".join(restart))
    return retuned
