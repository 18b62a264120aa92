"""What `plugwatch run` says when it starts: what it watches, with what, and where it writes.

    for line in startup_summary(config, rules=3, workers=1):
        print(line)

Plugs by family, rules, targets (URLs redacted), the database (password redacted) and the
endpoints others read (HTTP, MQTT, InfluxDB). Secrets never appear.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from plugwatch.formatting import format_duration, plural
from plugwatch.redact import redact


def startup_summary(
    config: Any, rules: int, workers: int = 1, http_port: int | None = None,
) -> list[str]:
    """The lines `run` prints at start (a Config; `rules` checked rules; `workers` processes;
    `http_port` the HTTP endpoint's bound port when known, e.g. for `listen: ...:0`)."""
    families = Counter(plug.driver for plug in config.plugs)
    by_family = ", ".join(f"{count} {name}" for name, count in sorted(families.items()))
    plugs = plural(len(config.plugs), "plug") + (f" ({by_family})" if by_family else "")
    where = f" from {config.rules_path}" if config.rules_path else " (no `rules:` in the config)"
    first = f"plugwatch run: {plugs}; {plural(rules, 'rule')}{where}"
    if workers > 1:
        first += f"; sampled by {workers} processes"
    targets = ", ".join(f"{name} {redact(str(url))}"
                        for name, url in sorted(config.targets.items()))
    lines = [first, f"targets: {targets or 'none'}"]
    retention = config.retention_s
    kept = "readings kept forever" if retention is None else (
        f"readings kept {format_duration(retention)}")
    lines.append(f"database: {redact(config.database)} ({kept})")
    outputs = endpoints(config, workers, http_port)
    if outputs:
        lines.append("serving: " + "; ".join(outputs))
    return lines


def endpoints(config: Any, workers: int = 1, http_port: int | None = None) -> list[str]:
    """The outputs others read: the HTTP endpoint, the MQTT broker, InfluxDB (each redacted)."""
    found = []
    http = getattr(config, "http", None)
    if http is not None:
        port = http.port if http_port is None else http_port
        if port == 0:  # listen: ...:0 (tests): each process picks a free port, and says it
            where = f"{http_url(http.host)} (a free port per process)"
        else:
            where = http_url(http.host, port) + (f"-{port + workers - 1}" if workers > 1 else "")
        found.append(f"{where} (/metrics, /healthz, status page)")
    mqtt = getattr(config, "mqtt", None)  # MqttSettings (its password is never shown)
    if mqtt is not None:
        host = f"[{mqtt.host}]" if ":" in mqtt.host else mqtt.host
        user = f"{mqtt.username}@" if mqtt.username else ""
        url = f"{'mqtts' if mqtt.tls else 'mqtt'}://{user}{host}:{mqtt.port}"
        what = f"topics {mqtt.prefix}/..." if mqtt.publish else "MQTT plugs only, publishes nothing"
        found.append(f"MQTT {url} ({what})")
    influx = getattr(config, "influxdb", None)
    if influx is not None:
        what = f"bucket {influx.bucket}" if influx.v2 else f"database {influx.database}"
        found.append(f"InfluxDB {redact(influx.url)} ({what})")
    return found


def http_url(host: str, port: int | None = None) -> str:
    """http://HOST[:PORT] (an IPv6 host in brackets)."""
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}" + ("" if port is None else f":{port}")


def reload_summary(rules_ok: bool, rules: int, retuned: list[str]) -> str:
    """The line `run` prints after a SIGHUP: what was reloaded (problems are logged apart)."""
    said = [f"reloaded {plural(rules, 'rule')}" if rules_ok else
            "rules NOT reloaded (the old rules stay in force; see the error above)"]
    if retuned:
        said.append(f"new detector settings for {', '.join(retuned)}")
    return "SIGHUP: " + "; ".join(said)
