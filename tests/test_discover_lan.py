"""`plugwatch discover` over every LAN family, as a user runs it, against emulators in their own
processes: Tapo and KLAP Kasa plugs over UDP 20002 (python-kasa's Discover), Shelly devices over
real mDNS multicast (python-zeroconf responders and browser in a private network namespace), and
`read`/`emulate` of the python-kasa families."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_extras import run_without

PLUGWATCH = [sys.executable, "-m", "plugwatch"]


def free_address() -> tuple[str, int]:
    """A loopback address of its own (its UDP 20002 free) and a free TCP port on it."""
    while True:
        host = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, 20002))
            except OSError:
                continue
        with socket.socket() as tcp:
            tcp.bind((host, 0))
            return host, tcp.getsockname()[1]


def emulate(*argv: str) -> subprocess.Popen[str]:
    """`plugwatch emulate ...` in its own process, once it says it is serving."""
    proc = subprocess.Popen([*PLUGWATCH, "emulate", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("serving "), line
    return proc


@pytest.fixture
def klap_plugs() -> Iterator[dict[str, tuple[str, int]]]:
    """An emulated Tapo P110 (account me@example.com) and a KLAP HS110 (no account)."""
    tapo, kasa = free_address(), free_address()
    procs = [emulate("--family", "tapo", "--host", tapo[0], "--port", str(tapo[1]),
                     "--username", "me@example.com", "--password", "pw-tapo", "--power", "321"),
             emulate("--family", "kasa-klap", "--host", kasa[0], "--port", str(kasa[1]),
                     "--power", "45")]
    yield {"tapo": tapo, "kasa-klap": kasa}
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLUGWATCH, *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_discover_finds_tapo_and_klap_kasa_plugs_with_their_driver(klap_plugs) -> None:
    for family, (host, port) in klap_plugs.items():
        done = run("discover", "--family", "tapo", "--target", host, "--timeout", "1", "--json")
        assert done.returncode == 0, done.stderr
        [found] = [json.loads(line) for line in done.stdout.splitlines()]
        assert (found["host"], found["port"], found["driver"]) == (host, port, family)
        if family == "tapo":
            assert (found["model"], found["device_type"], found["encryption"]) == (
                "P110(EU)", "SMART.TAPOPLUG", "KLAP login v2")
        else:
            assert (found["model"], found["device_type"], found["encryption"]) == (
                "HS110(EU)", "IOT.SMARTPLUGSWITCH", "KLAP login v1")
    host, port = klap_plugs["tapo"]
    text = run("discover", "--target", host, "--timeout", "1")  # every family, as people read
    assert text.stdout == (f'{host}:{port}  P110(EU)  ""  id {found_id(host)}  driver: tapo  '
                           "(SMART.TAPOPLUG, KLAP login v2)\n")


def found_id(host: str) -> str:
    done = run("discover", "--family", "tapo", "--target", host, "--timeout", "1", "--json")
    return str(json.loads(done.stdout)["device_id"])


def test_read_a_tapo_and_a_klap_kasa_plug(klap_plugs) -> None:
    """`read --driver tapo` with the account (password from the environment), then
    `--driver kasa-klap` without one (python-kasa's blank login)."""
    host, port = klap_plugs["tapo"]
    done = run("read", f"{host}:{port}", "--driver", "tapo", "--username", "me@example.com",
               "--password-env", "TAPO_PW", "--json", env={"TAPO_PW": "pw-tapo"})
    assert done.returncode == 0, done.stderr
    reading = json.loads(done.stdout)
    assert (reading["alias"], reading["model"], reading["power_w"], reading["relay_on"]) == (
        "emulated P110 1", "P110", 321.0, True)
    wrong = run("read", f"{host}:{port}", "--driver", "tapo", "--username", "me@example.com",
                "--password-env", "TAPO_PW", env={"TAPO_PW": "not-it"})
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr == (
        f"plugwatch: error: {host}:{port} (P110(EU), firmware unknown, KLAP login v2) refused "
        "the login for 'me@example.com': check the plug's username (the TP-Link account e-mail) "
        "and password; next try in 5 min\n")
    host, port = klap_plugs["kasa-klap"]
    done = run("read", f"{host}:{port}", "--driver", "kasa-klap")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{host}:{port}  'emulated HS110v2 1' (HS110(EU)): 45 W, ")


def test_without_the_mdns_extra_discover_says_what_it_skipped(tmp_path: Path) -> None:
    host, _ = free_address()
    done = run_without("zeroconf", "discover", "--target", host, "--timeout", "0.3",
                       cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.splitlines()[0] == (
        "shelly: not searched (finding Shelly devices over mDNS needs the optional 'mdns' part "
        "of plugwatch, which is not installed: pip install 'plugwatch[mdns]' (or pipx inject "
        "plugwatch zeroconf))")
    named = run_without("zeroconf", "discover", "--family", "shelly", cwd=tmp_path)
    assert named.returncode == 1 and "pip install 'plugwatch[mdns]'" in named.stderr


NETNS_SCRIPT = """
import json, subprocess, sys
PLUGWATCH = [sys.executable, "-m", "plugwatch"]
for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
            ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
    subprocess.run(cmd, check=True)
procs = []
for argv in (["--family", "shelly2", "--port", "18080", "--count", "2"],
             ["--family", "shelly1", "--port", "18090"],
             ["--family", "tasmota", "--port", "18095"]):
    proc = subprocess.Popen([*PLUGWATCH, "emulate", *argv, "--mdns"], stdout=subprocess.PIPE,
                            text=True)
    procs.append(proc)
for proc in procs:
    assert proc.stdout.readline().startswith("serving "), "emulator did not start"
done = subprocess.run([*PLUGWATCH, "discover", "--family", "shelly", "--timeout", "3", "--json"],
                      capture_output=True, text=True, timeout=60)
for proc in procs:
    proc.terminate()
    proc.wait(10)
print(json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr}))
"""


def test_shelly_devices_are_found_over_real_mdns(tmp_path: Path) -> None:
    """In a private network namespace (multicast on its own loopback, nothing leaves it): two
    Shelly Plus Plug S and a Shelly Plug S announce themselves with python-zeroconf's
    responder; discover browses _shelly._tcp and _http._tcp and asks each /shelly. A Tasmota plug
    (no mDNS of its own) is not listed."""
    if shutil.which("unshare") is None or shutil.which("ip") is None or os.geteuid() != 0:
        reason = "a network namespace needs root, unshare and ip (iproute2)"
        if os.environ.get("PLUGWATCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (PLUGWATCH_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip(reason)
    script = tmp_path / "netns.py"
    script.write_text(textwrap.dedent(NETNS_SCRIPT), encoding="utf-8")
    done = subprocess.run(["unshare", "-n", sys.executable, str(script)], capture_output=True,
                          text=True, timeout=90, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, result["err"]
    found = {d["port"]: d for d in map(json.loads, result["out"].splitlines())}
    assert set(found) == {18080, 18081, 18090}
    assert {d["driver"] for d in found.values()} == {"shelly"}
    assert (found[18080]["model"], found[18080]["generation"]) == ("SNPL-00112EU", 2)
    assert found[18081]["alias"] == "emulated shelly2 2"
    assert (found[18090]["model"], found[18090]["generation"]) == ("SHPLG-S", 1)
    assert found[18090]["mdns_name"].startswith("shellyplug-s-")


def test_a_tapo_plug_without_python_kasa_names_the_extra(tmp_path: Path) -> None:
    done = run_without("kasa", "read", "127.0.0.1", "--driver", "tapo", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "plugwatch: error: reading Tapo and KLAP-firmware Kasa plugs needs the optional "
        "'kasa-new' part of plugwatch, which is not installed: pip install 'plugwatch[kasa-new]' "
        "(or pipx inject plugwatch python-kasa)\n")
