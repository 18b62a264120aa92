"""The `mqtt:` section of plugwatch.yaml: the one broker connection, shared by the MQTT plugs and
the MQTT output (plug states, run events, Home Assistant discovery).

    mqtt:
      url: mqtt://127.0.0.1:1883          # mqtts://host (port 8883) for TLS
      username: plugwatch
      password: ${MQTT_PASSWORD}
      prefix: plugwatch                   # plugwatch/<plug>/state, /event, plugwatch/status
      publish_interval: 10s               # power at most this often per plug
      homeassistant: {prefix: homeassistant}   # or true / false
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from plugwatch.config.tuning import PositiveDuration
from plugwatch.errors import ConfigError
from plugwatch.mqtt.settings import MqttSettings, TlsSettings

_PREFIX = r"^[^+#\s/][^+#\s]*[^+#\s/]$|^[^+#\s/]$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSection(_Section):
    """`tls:` under `mqtt:` (or `tls: true` for the system's CA bundle)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


class HomeAssistantSection(_Section):
    """`homeassistant:` under `mqtt:`: MQTT discovery (or `true` / `false`)."""

    enabled: bool = True
    prefix: Annotated[str, Field(pattern=_PREFIX)] = "homeassistant"


def _tls(value: object) -> object:
    if value is True:
        return {}
    return None if value is False else value


def _homeassistant(value: object) -> object:
    return {"enabled": value} if isinstance(value, bool) else value


class MqttSection(_Section):
    """`mqtt:`: the broker and what plugwatch publishes there."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    tls: Annotated[TlsSection | None, BeforeValidator(_tls)] = None
    client_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    keepalive: PositiveDuration = 30.0
    prefix: Annotated[str, Field(pattern=_PREFIX)] = "plugwatch"
    publish: bool = True
    publish_interval: PositiveDuration = 10.0
    homeassistant: Annotated[HomeAssistantSection, BeforeValidator(_homeassistant)] = Field(
        default_factory=HomeAssistantSection)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            MqttSettings.from_url(value)
        except ConfigError as exc:  # never echo the URL: it may hold a password
            raise ValueError(str(exc)) from None
        return value

    def settings(self) -> MqttSettings:
        """The runtime settings (credentials given as keys win over those in the URL)."""
        base = MqttSettings.from_url(self.url)
        tls = base.tls
        if self.tls is not None:
            t = self.tls
            tls = TlsSettings(t.ca_file, t.cert_file, t.key_file, t.insecure)
        return MqttSettings(
            host=base.host, port=base.port,
            username=self.username if self.username is not None else base.username,
            password=self.password.get_secret_value() if self.password else base.password,
            tls=tls, prefix=self.prefix, client_id=self.client_id,
            keepalive_s=max(5, round(self.keepalive)), publish=self.publish,
            publish_interval_s=self.publish_interval,
            homeassistant=self.homeassistant.enabled,
            homeassistant_prefix=self.homeassistant.prefix,
        )
