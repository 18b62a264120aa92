"""The one MQTT client: broker URLs and credentials, a broker that refuses, TLS, subscriptions that
survive a reconnect — against private mosquitto brokers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from plugwatch.config import config_from_dict
from plugwatch.errors import ConfigError
from plugwatch.mqtt.client import MqttClient
from plugwatch.mqtt.settings import MqttSettings, TlsSettings
from tests.helpers import wait_for
from tests.mqtt_helpers import PrivateBroker, private_broker, unique

__all__ = ["private_broker"]


@pytest.mark.parametrize(("url", "where", "tls", "user"), [
    ("mqtt://127.0.0.1", "127.0.0.1:1883", False, None),
    ("mqtts://broker.lan", "broker.lan:8883", True, None),
    ("mqtt://me:s%40cret@[::1]:1884", "[::1]:1884", False, "me"),
])
def test_broker_urls(url: str, where: str, tls: bool, user: str | None) -> None:
    settings = MqttSettings.from_url(url)
    assert (settings.where, settings.tls is not None, settings.username) == (where, tls, user)


def test_a_password_never_shows_and_comes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTT_PW", "hunter2")
    config = config_from_dict({"mqtt": {"url": "mqtt://broker.lan", "username": "pw",
                                        "password": "${MQTT_PW}"}})
    assert config.mqtt is not None and config.mqtt.password == "hunter2"
    assert "hunter2" not in repr(config.mqtt) and "hunter2" not in config.mqtt.redacted_url
    with pytest.raises(ConfigError) as err:
        config_from_dict({"mqtt": {"url": "http://me:hunter2@broker"}})
    assert "hunter2" not in str(err.value) and "not an MQTT broker URL" in str(err.value)


def _password_broker(tmp_path: Path) -> PrivateBroker:
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(passwd).exists():
        pytest.skip("mosquitto_passwd is not installed")
    file = tmp_path / "passwd"
    subprocess.run([passwd, "-b", "-c", str(file), "plugwatch", "right"], check=True)
    broker = PrivateBroker(tmp_path)
    broker.conf.write_text(f"listener {broker.port} 127.0.0.1\nallow_anonymous false\n"
                           f"password_file {file}\npersistence false\n")
    return broker


async def test_wrong_credentials_are_one_line_and_right_ones_connect(tmp_path: Path) -> None:
    broker = _password_broker(tmp_path)
    broker.start()
    try:
        bad = MqttClient(MqttSettings(port=broker.port, username="plugwatch", password="wrong"))
        bad.start()
        await wait_for(lambda: bool(bad.last_error), 5.0)
        assert bad.last_error.startswith("the broker refused the connection: "), bad.last_error
        assert "wrong" not in bad.last_error and "\n" not in bad.last_error
        assert not bad.connected
        await bad.close()
        good = MqttClient(MqttSettings(port=broker.port, username="plugwatch", password="right"))
        good.start()
        assert await good.wait_connected(5), good.last_error
        await good.close()
    finally:
        broker.stop()


async def test_tls_with_the_broker_certificate(tmp_path: Path) -> None:
    """mqtts:// against a broker with a self-signed certificate: trusted through ca_file, and
    refused with a one-line TLS reason without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    broker = PrivateBroker(tmp_path)
    broker.conf.write_text(f"listener {broker.port} 127.0.0.1\nallow_anonymous true\n"
                           f"certfile {cert}\nkeyfile {key}\npersistence false\n")
    broker.start()
    try:
        trusted = MqttClient(MqttSettings(port=broker.port, tls=TlsSettings(ca_file=str(cert))))
        trusted.start()
        assert await trusted.wait_connected(5), trusted.last_error
        got: list[bytes] = []
        trusted.subscribe("t/x", lambda t, p, r: got.append(p))
        await asyncio.sleep(0.2)
        trusted.publish("t/x", b"over tls")
        await wait_for(lambda: got == [b"over tls"], 5.0)
        await trusted.close()
        stranger = MqttClient(MqttSettings(port=broker.port, tls=TlsSettings()))
        stranger.start()
        await wait_for(lambda: bool(stranger.last_error), 5.0)
        assert stranger.last_error.startswith("TLS failed"), stranger.last_error
        await stranger.close()
    finally:
        broker.stop()


async def test_subscriptions_survive_a_broker_restart(private_broker: PrivateBroker) -> None:
    from dataclasses import replace

    topic = unique("t")
    client = MqttClient(replace(MqttSettings(port=private_broker.port), backoff_max_s=0.5))
    got: list[bytes] = []
    downs: list[str] = []
    client.subscribe(topic, lambda t, p, r: got.append(p))
    client.add_connection_listener(down=downs.append)
    client.start()
    assert await client.wait_connected(5)
    private_broker.kill()
    await wait_for(lambda: bool(downs), 5.0)
    assert downs == [f"MQTT broker 127.0.0.1:{private_broker.port} unreachable: connection lost "
                     "(the broker closed the connection)"]
    assert client.publish(topic, b"lost") is False  # refused while down, not queued forever
    private_broker.start()
    assert await client.wait_connected(10)
    await asyncio.sleep(0.2)
    other = MqttClient(MqttSettings(port=private_broker.port), client_id=unique("other"))
    other.start()
    assert await other.wait_connected(5)
    other.publish(topic, b"after the restart")
    await wait_for(lambda: got == [b"after the restart"], 5.0)
    await other.close()
    await client.close()


async def test_a_burst_of_every_size_and_qos_arrives_whole_and_in_order(
        private_broker: PrivateBroker) -> None:
    """Messages from empty to 200 KB (lengths of 1 to 3 bytes, packets split across socket
    reads), QoS 0 and 1 interleaved, non-ASCII topics, then retained ones on a new subscription:
    every payload arrives intact, in the order sent, with its retain flag."""
    settings = MqttSettings(port=private_broker.port)
    prefix = unique("burst")
    sizes = [0, 1, 127, 128, 16_383, 16_384, 200_000, 3]
    sent = [(f"{prefix}/{'é' if i % 5 == 0 else 'a'}/{i}", bytes([i % 251]) * sizes[i % 8],
             (i // 3) % 2) for i in range(2_000)]
    qos_of = {t: q for t, _, q in sent}
    got: list[tuple[str, bytes, bool]] = []
    probes: list[bytes] = []
    probe = f"{prefix}/probe"

    def received(topic: str, payload: bytes, retained: bool) -> None:
        if topic == probe:
            probes.append(payload)
        else:
            got.append((topic, payload, retained))

    receiver = MqttClient(settings, client_id=unique("receiver"))
    receiver.subscribe(f"{prefix}/#", received, qos=1)
    sender = MqttClient(settings, client_id=unique("sender"))
    for client in (receiver, sender):
        client.start()
        assert await client.wait_connected(15), client.last_error
    # the burst starts once the broker has the subscription: a probe came back through it
    deadline = asyncio.get_running_loop().time() + 15
    while not probes and asyncio.get_running_loop().time() < deadline:
        sender.publish(probe, b"probe", qos=1)
        await asyncio.sleep(0.2)
    assert probes, "the receiver's subscription never took effect"
    for topic, payload, qos in sent:
        assert sender.publish(topic, payload, qos=qos)
    try:
        await wait_for(lambda: len(got) >= len(sent), 60.0)
    except AssertionError:
        raise AssertionError(f"{len(got)} of {len(sent)} messages arrived") from None
    for qos in (0, 1):  # MQTT keeps the order of each QoS; the broker may interleave the two
        assert [(t, p) for t, p, _ in got if qos_of[t] == qos] == [
            (t, p) for t, p, q in sent if q == qos]
    assert not any(r for _, _, r in got)  # live messages
    for i in range(3):
        sender.publish(f"{prefix}/kept/{i}", f"kept {i}".encode(), retain=True, qos=i % 2)
    await asyncio.sleep(0.3)
    late: list[tuple[str, bytes, bool]] = []
    receiver.subscribe(f"{prefix}/kept/#", lambda t, p, r: late.append((t, p, r)))
    await wait_for(lambda: len(late) == 3, 5.0)
    assert sorted(late) == [(f"{prefix}/kept/{i}", f"kept {i}".encode(), True) for i in range(3)]
    for i in range(3):
        sender.publish(f"{prefix}/kept/{i}", b"", retain=True, qos=1)
    await asyncio.sleep(0.2)
    await sender.close()
    await receiver.close()
