"""README's "A short tour", run as written wherever it needs no hardware.

Every command line of the tour's block has a recipe here: how to run it in a scratch folder
(emulated plugs over TCP/HTTP instead of the LAN's, a local HTTP receiver instead of ntfy.sh, a
scratch PostgreSQL schema instead of `user@host/db`, a real trace for `trace.csv`), or the
hardware it needs. A tour line without a recipe fails the test, so README and test stay in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.http_server import HttpEmulator
from tests.conftest import POSTGRES_URL, REPO, TRACES, require_service
from tests.test_notify_receivers import HttpReceiver, free_port

TRACE = TRACES / "tracebase/Washingmachine__dev_7297E3_2012.01.08.csv"
HARDWARE = {
    "plugwatch discover": "plugs answering a UDP broadcast or mDNS on the LAN",
    "plugwatch read 192.168.1.53 --driver tapo --username me@example.com --password-env "
    "TAPO_PASSWORD": "a Tapo plug and its TP-Link account (the KLAP emulator's tests cover it)",
}


def tour_commands() -> list[str]:
    """The command of every line of README's tour block (comments and blank lines dropped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A short tour.*?```sh\n(.*?)```", text, re.S)
    assert block, "README has no tour block"
    commands = []
    for line in block.group(1).splitlines():
        command = line.split("  #")[0].strip()
        if command:
            commands.append(command)
    return commands


class Tour:
    """A scratch folder with emulated plugs, a receiver, and a way to run plugwatch there."""

    def __init__(self, folder: Path, ports: dict[str, int], receiver: HttpReceiver,
                 http_port: int) -> None:
        self.folder = folder
        self.ports = ports
        self.receiver = receiver
        self.http_port = http_port  # the config's `http: {listen: 127.0.0.1:PORT}`
        self.checked: list[str] = []

    async def plugwatch(self, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """Run `plugwatch ARGS` in the folder to its end: (status, stdout, stderr)."""
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "plugwatch", *args, cwd=self.folder,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: a hung one is killed with its workers
        )

    @contextlib.asynccontextmanager
    async def running(self, *args: str, until: str | Callable[[list[str]], bool],
                      ) -> AsyncIterator[list[str]]:
        """`plugwatch ARGS` running until its stdout shows `until` (or `until(lines)` holds);
        SIGINT after the block, which must end it with status 0. A start that finds the
        config's HTTP port taken (another process got it between free_port() and the bind) is
        tried again on another free port."""
        seen = until if callable(until) else (lambda lines: any(until in x for x in lines))
        for _ in range(5):
            proc = await self.start(*args)
            lines, err = await lines_until(proc, seen)
            if lines is not None:
                break
            assert "http.listen: cannot listen on" in err, (args, err)
            self.set_http_port(free_port())
        assert lines is not None, "no free HTTP port in 5 tries"
        try:
            yield lines
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            rest, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
            lines += rest.decode().splitlines()
            lines.append(err_bytes.decode())
        assert proc.returncode == 0, lines

    @contextlib.asynccontextmanager
    async def emulating(self, ports: Callable[[], Awaitable[list[str]]], *args: str,
                        ) -> AsyncIterator[tuple[list[str], str]]:
        """`plugwatch emulate PORTS ARGS` serving: (the port arguments, its banner line); SIGINT
        after the block. A start that finds a port taken (another process got it after
        `ports()` found it free) is tried again on the free ports of another `ports()`."""
        for _ in range(5):
            words = await ports()
            proc = await self.start("emulate", *words, *args)
            lines, err = await lines_until(proc, bool)
            if lines is not None:
                break
            assert "address already in use" in err, (words, err)
        assert lines is not None, "no free ports in 5 tries"
        try:
            yield words, lines[0]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0

    def set_http_port(self, port: int) -> None:
        """The config's `http: {listen: ...}` on another port."""
        self.http_port = port
        path = self.folder / "plugwatch.yaml"
        path.write_text(re.sub(r"^http: .*$", f"http: {{listen: '127.0.0.1:{port}'}}",
                               path.read_text(), flags=re.M))

    def edit_config(self, **extra: str) -> None:
        """As the tour says after `init`: edit plugs and targets (here: the emulated ones)."""
        path = self.folder / "plugwatch.yaml"
        plugs = (
            "plugs:\n"
            f"  - {{name: washer, driver: kasa, host: '127.0.0.1:{self.ports['washer']}', "
            "tags: [laundry]}\n"
            f"  - {{name: tv, driver: kasa, host: '127.0.0.1:{self.ports['tv']}', outlet: 2}}\n"
            f"  - {{name: dryer, driver: shelly, host: '127.0.0.1:{self.ports['shelly']}'}}\n"
            f"  - {{name: freezer, driver: tasmota, host: '127.0.0.1:{self.ports['tasmota']}', "
            "tags: [critical]}\n\n"
        )
        text = re.sub(r"^plugs:.*?^(?=targets:)", plugs, path.read_text(), flags=re.M | re.S)
        text = text.replace("ntfy://ntfy.sh/my-topic", self.receiver.url)
        text = text.replace("interval: 5s", "interval: 0.5s")
        for key, value in extra.items():
            text += f"{key}: {value}\n"
        path.write_text(text)


async def free_ports(count: int) -> int:
    """A first port P with P..P+count-1 all free on 127.0.0.1."""
    for _ in range(50):
        first = free_port()
        socks = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no run of free ports")


async def lines_until(proc: asyncio.subprocess.Process, seen: Callable[[list[str]], bool],
                      ) -> tuple[list[str] | None, str]:
    """proc's stdout lines until `seen(lines)` holds, or (None, its stderr) if it ended first.
    One still short of it after 90 s is killed, with its workers, and the test fails with what
    it printed on stdout and stderr."""
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90  # a loaded machine starts processes slowly
    while not seen(lines):
        raw: bytes | None
        try:
            raw = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # (gone since, workers and all)
                os.killpg(proc.pid, signal.SIGKILL)
            raw = None
        if not raw:
            err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
            await proc.wait()
            if raw is None:
                raise AssertionError(f"still waiting after 90 s; stdout {lines}, "
                                     f"stderr {err[-3000:]}")
            return None, f"stdout {lines}, stderr {err}"
        lines.append(raw.decode().rstrip("\n"))
    return lines, ""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- one recipe per tour line: each runs the line (adapted as its docstring says) and checks it

async def demo(t: Tour) -> None:
    """At --speed 600 (8 s instead of 80 s): the story with its two notifications."""
    code, out, _ = await t.plugwatch("demo", "--speed", "600", "--db", "demo.db")
    assert code == 0 and "2 runs, 2 notifications" in out


async def read_kasa(t: Tour) -> None:
    """An emulated HS110 instead of 192.168.1.50."""
    code, out, _ = await t.plugwatch("read", f"127.0.0.1:{t.ports['kasa']}", "--json")
    assert code == 0 and json.loads(out.splitlines()[0])["power_w"] == pytest.approx(42.0)


async def read_shelly(t: Tour) -> None:
    """An emulated Shelly Plus Plug S instead of 192.168.1.52."""
    code, out, err = await t.plugwatch("read", f"127.0.0.1:{t.ports['shelly']}",
                                       "--driver", "shelly")
    assert code == 0 and "33" in out, err


async def emulate_trace(t: Tour) -> None:
    """Three plugs replaying the real washer trace on free ports P..P+2 instead of 9999, their
    UDP discovery on a free port too (the machine's 9999 may be another test's)."""
    async def ports() -> list[str]:
        return ["--port", str(await free_ports(3)), "--discovery-port", str(free_udp_port())]

    async with t.emulating(ports, "--count", "3", "--trace", str(TRACE), "--speed", "60") as (
            words, banner):
        first = int(words[1])
        assert banner == (f"serving 3 emulated HS110v2 plug(s) on 127.0.0.1:{first}..{first + 2}"
                          f" (discovery on UDP {words[3]}); Ctrl-C stops")
        code, out, err = await t.plugwatch("read", f"127.0.0.1:{first + 2}", "--json")
        assert code == 0, err
        assert json.loads(out)["power_w"] >= 0


async def emulate_fault(t: Tour) -> None:
    """A Shelly answering NaN on a free port instead of 8080: reading it is one clear line."""
    async def port() -> list[str]:
        return ["--port", str(free_port())]

    async with t.emulating(port, "--family", "shelly2", "--fault", "nan") as (words, _):
        code, _, err = await t.plugwatch("read", f"127.0.0.1:{words[1]}", "--driver", "shelly")
        assert code == 1 and len(err.strip().splitlines()) == 1 and "nan" in err.lower()


async def emulate_tapo(t: Tour) -> None:
    """A Tapo P110 over KLAP on a loopback address of its own and a free port (not
    127.0.0.2:8080): `read --driver tapo` reads it (no account: python-kasa's blank login)."""
    from tests.test_discover_lan import free_address

    host, port = free_address()
    proc = await t.start("emulate", "--family", "tapo", "--host", host, "--port", str(port))
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"serving 1 emulated Tapo P110"), line
        code, out, err = await t.plugwatch("read", f"{host}:{port}", "--driver", "tapo", "--json")
        assert code == 0, err
        assert json.loads(out)["model"] == "P110" and json.loads(out)["power_w"] == 60.0
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 15)


async def discover_mqtt(t: Tour) -> None:
    """The machine's Mosquitto instead of 192.168.1.10, half a second for the retained topics."""
    require_service("Mosquitto", "127.0.0.1", 1883)
    code, out, err = await t.plugwatch("discover", "--mqtt", "mqtt://127.0.0.1:1883",
                                       "--timeout", "0.5", "--json")
    assert code == 0, err
    assert all(json.loads(line)["driver"] for line in out.splitlines())


async def emulate_mqtt(t: Tour) -> None:
    """Three Tasmota devices on the machine's Mosquitto, named apart from other tests' (--name);
    discover --mqtt finds them; SIGINT publishes them offline; their retained LWTs are cleared."""
    from tests.mqtt_helpers import broker_settings, clear_retained, unique

    name = unique("tour")
    proc = await t.start("emulate", "--family", "tasmota-mqtt", "--count", "3", "--name", name)
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert banner.startswith(b"publishing 3 emulated tasmota-mqtt device(s)"), banner
        code, out, err = await t.plugwatch("discover", "--mqtt", "mqtt://127.0.0.1:1883",
                                           "--timeout", "0.5", "--json")
        found = sorted(d["id"] for d in map(json.loads, out.splitlines()) if name in d["id"])
        assert code == 0 and found == [f"{name}-{i}" for i in (1, 2, 3)], err
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 15)
        await clear_retained(broker_settings(), *(f"tele/{name}-{i}/LWT" for i in (1, 2, 3)))
    assert proc.returncode == 0


async def init(t: Tour) -> None:
    """Writes plugwatch.yaml and rules/; then the plugs and target are edited (emulated ones),
    the interval shortened, and `http:` added for the curl lines."""
    code, _, err = await t.plugwatch("init")
    assert code == 0, err
    assert (t.folder / "plugwatch.yaml").exists() and list((t.folder / "rules").glob("*.yaml"))
    t.edit_config(http=f"{{listen: '127.0.0.1:{t.http_port}'}}")


async def rules_check(t: Tour) -> None:
    code, out, err = await t.plugwatch("rules", "check")
    assert code == 0, err
    assert re.match(r"\d+ rules in \d+ files OK against plugwatch.yaml", out)


async def notify_test(t: Tour) -> None:
    """`phone` is a local HTTP receiver instead of ntfy.sh."""
    code, _, err = await t.plugwatch("notify", "test", "phone")
    assert code == 0, err
    assert t.receiver.received[-1]["title"] == "plugwatch test"


async def run(t: Tour) -> None:
    """The service against the emulated washer and strip outlet; while it runs, the curl
    lines (as urllib GETs) and `status --check` see it live."""
    async with t.running("run", until="tv ") as lines:
        assert re.match(r"plugwatch run: 4 plugs \(2 kasa, 1 shelly, 1 tasmota\); \d+ rules "
                        "from ", lines[0]), lines[0]
        assert get(f"http://127.0.0.1:{t.http_port}/healthz")[0] == 200
        assert "plugwatch_" in get(f"http://127.0.0.1:{t.http_port}/metrics")[1]
        code, out, err = await t.plugwatch("status", "--check")
        assert code == 0, out + err
    assert any("washer" in line and "state on" in line for line in lines)


async def run_workers(t: Tour) -> None:
    """Until both sampling processes say where they serve HTTP and answer /healthz there. The
    config listens on port 0 here, so each picks a free port (with a port P in the config,
    worker i serves P + i, as the summary line says: no race for P + 1 on a busy machine)."""
    def both(lines: list[str]) -> bool:
        return sum(SERVING.match(line) is not None for line in lines) == 2

    async with t.running("run", "--workers", "2", until=both) as lines:
        assert lines[0].endswith("sampled by 2 processes"), lines
        assert "serving: http://127.0.0.1 (a free port per process)" in lines[3]
        served = sorted(m.groups() for m in map(SERVING.match, lines) if m)
        assert [shard for shard, _ in served] == ["0/2", "1/2"]
        for _, port in served:
            await until_healthy(int(port))


async def until_healthy(port: int) -> None:
    """/healthz says 200 once the service has sampled and written (a loaded machine: slowly)."""
    deadline = time.monotonic() + 60
    while (await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz"))[0] != 200:
        assert time.monotonic() < deadline, f"port {port} never healthy"
        await asyncio.sleep(0.2)


SERVING = re.compile(r"\[worker (\d/2)\] serving http://127\.0\.0\.1:(\d+)/$")


async def run_cluster(t: Tour) -> None:
    """On a scratch PostgreSQL schema (the machine's) instead of a cluster of machines."""
    from plugwatch.store.scratch import scratch_schema

    require_service("PostgreSQL", "127.0.0.1", 5432)
    original = (t.folder / "plugwatch.yaml").read_text()
    with scratch_schema(POSTGRES_URL) as url:
        (t.folder / "plugwatch.yaml").write_text(
            re.sub(r"^database: .*$", f"database: {url}", original, flags=re.M))
        try:
            async with t.running("run", "--cluster", until="plugwatch run: "):
                await asyncio.sleep(2)
        finally:
            (t.folder / "plugwatch.yaml").write_text(original)


async def db_copy(t: Tour) -> None:
    """Into a fresh scratch PostgreSQL schema instead of user@host/db."""
    from plugwatch.store.scratch import scratch_schema

    require_service("PostgreSQL", "127.0.0.1", 5432)
    with scratch_schema(POSTGRES_URL) as url:
        assert (await t.plugwatch("status"))[0] == 0  # the config's database exists now
        code, _, err = await t.plugwatch("db", "copy", "sqlite:///plugwatch.db", url)
        assert code == 0, err


async def json_logs(t: Tour) -> None:
    """Every log line on stderr is one JSON object (with -v, so that there are some)."""
    async with t.running("--log-format", "json", "-v", "run", until="plugwatch run: ") as lines:
        await asyncio.sleep(1)
    logged = [line for line in lines[-1].splitlines() if line.strip()]
    assert logged and all(json.loads(line)["level"] for line in logged)


async def curl_healthz(t: Tour) -> None:
    """Checked while `plugwatch run` runs (see run)."""


async def status(t: Tour) -> None:
    """Right after the run (the service stopped, the database answers): each plug's state,
    since, power and contact, none stale yet."""
    code, out, _ = await t.plugwatch("status")
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines] == ["washer", "tv", "dryer", "freezer"]
    assert re.match(r"washer +on +1800 W +since .* last contact .* ago\)$", lines[0]), out
    assert re.match(r"tv +standby +0\.90 W +since ", lines[1]), out
    assert "stale" not in out


async def status_check(t: Tour) -> None:
    """Right after a run the data is live: exit 0 (checked during run as well)."""
    code, out, err = await t.plugwatch("status", "--check")
    assert code == 0, out + err


async def history(t: Tour) -> None:
    """The washer's first state, and with --runs its run still going when the service stopped
    (no `price:` in the example config, so no cost)."""
    code, out, _ = await t.plugwatch("history", "--since", "24h", "--runs")
    assert code == 0 and re.search(r"  washer +state on \(power\) at 1800\.0 W$", out, re.M), out
    assert re.search(r"  washer +open run of .*, peak 1800 W \(started ", out), out


async def ack(t: Tour) -> None:
    """The emulated washer only ever ran (no alert is active): `ack` lists none, and
    `ack washer` says in one line that there is nothing to acknowledge (exit 1)."""
    code, out, err = await t.plugwatch("ack")
    assert (code, out) == (0, "no active alerts\n"), err
    code, out, err = await t.plugwatch("ack", "washer")
    assert code == 1 and err.startswith("plugwatch: error: nothing to acknowledge for 'washer'")


async def silence(t: Tour) -> None:
    code, out, err = await t.plugwatch("silence", "tv", "--for", "2h")
    assert code == 0 and out.startswith("silenced plug tv until "), err
    code, out, _ = await t.plugwatch("silence")
    assert code == 0 and "plug tv" in out


async def replay_json(t: Tour) -> None:
    """The real washer trace for trace.csv."""
    code, out, _ = await t.plugwatch("replay", str(TRACE), "--json")
    assert code == 0 and any(json.loads(line)["type"] == "run" for line in out.splitlines())


async def replay_rules(t: Tour) -> None:
    code, out, err = await t.plugwatch("replay", str(TRACE), "--plug", "washer", "--rules",
                                       "rules/")
    assert code == 0, err
    assert "from the rules in rules/ for plug 'washer' (from --plug; none sent)" in out
    assert "ALERT washer-done -> phone: washer finished" in out


async def calibrate(t: Tour) -> None:
    code, out, _ = await t.plugwatch("calibrate", str(TRACE))
    assert code == 0 and "# paste under the plug" in out


async def plot(t: Tour) -> None:
    code, _, err = await t.plugwatch("plot", str(TRACE), "-o", "day.png")
    assert code == 0, err
    assert (t.folder / "day.png").read_bytes()[:4] == b"\x89PNG"


RECIPES: dict[str, tuple[str, Callable[[Tour], object]]] = {  # line -> (group, recipe)
    "plugwatch demo": ("demo", demo),
    "plugwatch read 192.168.1.50 --json": ("devices", read_kasa),
    "plugwatch read 192.168.1.52 --driver shelly": ("devices", read_shelly),
    "plugwatch emulate --port 9999 --count 3 --trace washer.csv --speed 60":
        ("devices", emulate_trace),
    "plugwatch emulate --family shelly2 --port 8080 --fault nan": ("devices", emulate_fault),
    "plugwatch emulate --family tapo --host 127.0.0.2 --port 8080": ("devices", emulate_tapo),
    "plugwatch discover --mqtt mqtt://192.168.1.10": ("mqtt", discover_mqtt),
    "plugwatch emulate --family tasmota-mqtt --count 3": ("mqtt", emulate_mqtt),
    "plugwatch init": ("service", init),
    "plugwatch rules check": ("service", rules_check),
    "plugwatch notify test phone": ("service", notify_test),
    "plugwatch run": ("service", run),
    "plugwatch run --workers 2": ("workers", run_workers),
    "plugwatch run --cluster": ("postgres", run_cluster),
    "plugwatch db copy sqlite:///plugwatch.db postgresql+psycopg://user@host/db":
        ("postgres", db_copy),
    "plugwatch --log-format json run": ("workers", json_logs),
    "curl -s 127.0.0.1:9464/healthz": ("service", curl_healthz),
    "curl -s 127.0.0.1:9464/metrics": ("service", curl_healthz),
    "plugwatch status": ("service", status),
    "plugwatch status --check": ("service", status_check),
    "plugwatch history --since 24h --runs": ("service", history),
    "plugwatch replay trace.csv --json": ("offline", replay_json),
    "plugwatch ack washer": ("service", ack),
    "plugwatch silence tv --for 2h": ("service", silence),
    "plugwatch replay trace.csv --plug washer --rules rules/": ("offline", replay_rules),
    "plugwatch calibrate trace.csv": ("offline", calibrate),
    "plugwatch plot trace.csv -o day.png": ("offline", plot),
}
NEEDS_INIT = {"workers", "postgres", "offline"}  # groups run in a folder `plugwatch init` made


def test_every_tour_line_has_a_recipe_or_names_its_hardware() -> None:
    """A line added to the tour must be added here too (run, or say what hardware it needs)."""
    missing = [c for c in tour_commands() if c not in RECIPES and c not in HARDWARE]
    assert missing == []
    assert len(tour_commands()) >= 20


@pytest.mark.parametrize("group", sorted({group for group, _ in RECIPES.values()}))
async def test_the_readme_tour_runs_as_written(tmp_path: Path, group: str) -> None:
    """The tour's lines of one group, in the README's order, in a scratch folder."""
    emulator, http = Emulator(), HttpEmulator()
    kasa, washer = EmulatedPlug("HS110v2", power=42.0), EmulatedPlug("HS110v2", power=1800.0)
    strip = EmulatedPlug("HS300", power=[0.0, 0.0, 0.9, 0.0, 0.0, 0.0])  # the tv: outlet 2
    shelly = EmulatedHttpDevice("shelly2", power=33.0)
    tasmota = EmulatedHttpDevice("tasmota", power=80.0)
    ports = dict(zip(("kasa", "washer", "tv"), await emulator.start([kasa, washer, strip]),
                     strict=True))
    ports["shelly"], ports["tasmota"] = await http.start([shelly, tasmota])
    receiver = HttpReceiver()
    receiver.up()
    tour = Tour(tmp_path, ports, receiver, http_port=0 if group == "workers" else free_port())
    lines = [c for c in tour_commands() if c in RECIPES and RECIPES[c][0] == group]
    try:
        if group in NEEDS_INIT:
            await init(tour)
        for command in lines:
            await RECIPES[command][1](tour)  # type: ignore[misc]
            tour.checked.append(command)
    finally:
        receiver.down()
        await emulator.stop()
        await http.stop()
    assert tour.checked == lines and lines
