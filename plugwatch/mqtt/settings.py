"""How to reach the MQTT broker and what plugwatch publishes there (the `mqtt:` config section).

    settings = MqttSettings.from_url("mqtts://user:secret@broker.lan")   # TLS on 8883
    settings.where                                                       # "broker.lan:8883"

The password never appears in a repr, a log line or an error: `where` and `redacted_url` are what
users are shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from plugwatch.errors import ConfigError

SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}
_URL = re.compile(
    r"^(?P<scheme>[a-z]+)://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<host>\[[^\]]+\]|[^:/?#\s]+)(?::(?P<port>\d+))?/?$"
)


@dataclass(frozen=True)
class TlsSettings:
    """TLS towards the broker: CA bundle (None: the system's), client certificate, checks."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False  # True: accept any certificate and host name (testing only)


@dataclass(frozen=True)
class MqttSettings:
    """The broker connection and plugwatch's own topics."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsSettings | None = None
    prefix: str = "plugwatch"  # plugwatch/<plug>/state, plugwatch/<plug>/event, plugwatch/status
    client_id: str | None = None  # None: plugwatch-<host name>-<pid>
    keepalive_s: int = 30
    publish: bool = True  # publish plug states and run events (the output)
    publish_interval_s: float = 10.0  # power updates at most this often per plug
    homeassistant: bool = True  # Home Assistant MQTT discovery
    homeassistant_prefix: str = "homeassistant"
    backoff_max_s: float = 60.0

    @classmethod
    def from_url(cls, url: str, **changes: object) -> MqttSettings:
        """Settings for a broker URL mqtt[s]://[user[:password]@]host[:port]; ConfigError if bad."""
        match = _URL.match(url.strip())
        scheme = match.group("scheme") if match else ""
        if not match or scheme not in SCHEMES:
            raise ConfigError(
                "not an MQTT broker URL (use e.g. mqtt://127.0.0.1:1883 or mqtts://broker:8883)")
        default_port, tls = SCHEMES[scheme]
        port = int(match.group("port") or default_port)
        if not 1 <= port <= 65535:
            raise ConfigError(f"MQTT broker port {port} is out of range (1-65535)")
        user, password = match.group("user"), match.group("password")
        settings = cls(
            host=match.group("host").strip("[]"), port=port,
            username=unquote(user) if user else None,
            password=unquote(password) if password is not None else None,
            tls=TlsSettings() if tls else None,
        )
        return replace(settings, **changes)  # type: ignore[arg-type]

    @property
    def where(self) -> str:
        """host:port, as shown in log lines and errors (never the credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def redacted_url(self) -> str:
        """The broker URL with the password hidden."""
        user = f"{self.username}:***@" if self.username and self.password else (
            f"{self.username}@" if self.username else "")
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.where}"

    @property
    def status_topic(self) -> str:
        """plugwatch's own availability: `online` while it runs, `offline` as the MQTT will."""
        return f"{self.prefix}/status"
