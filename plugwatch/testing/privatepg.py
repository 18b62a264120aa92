"""A private PostgreSQL server for outage tests and benches: stop it and start it at will.

    with PrivatePostgres() as pg:            # initdb in a temp dir, started on a free port
        url = pg.url                         # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        pg.stop(); pg.start()                # a real outage, the same port and data
    # stopped and removed
    PrivatePostgres(durable=True)            # commits survive stop("immediate") (benches)

Never the machine's own server. As root, initdb and pg_ctl run as an unprivileged user
(`postgres`, else `nobody`), since PostgreSQL refuses to run as root. `available()` says whether
the binaries are installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

_SEARCH = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14", "13")]


def _binary(name: str) -> str | None:
    for folder in _SEARCH:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def available() -> bool:
    """True when initdb and pg_ctl are installed."""
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, below the kernel's range of ephemeral
    ports: while the server is stopped, no outgoing connection can take its port as a local one
    (on a busy machine one did, and the restart failed with "could not create listen socket")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 16384), max(1025, low))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # everything below is taken: any free port
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """One throw-away PostgreSQL cluster on 127.0.0.1 (trust auth, user postgres)."""

    def __init__(self, port: int | None = None, *, durable: bool = False) -> None:
        self.port = port or free_port()
        # not durable (tests): commits return before their WAL is written, so a crash-stop
        # (stop("immediate")) may undo the last ~0.6 s of commits; durable: as a real server
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="plugwatch-pg-"))
        self.data = self.dir / "data"
        self._user = self._run_as()
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its `postgres` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Create the cluster (initdb)."""
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                 "-E", "UTF8", "--locale", "C")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.dir}'\n")
            if not self.durable:
                conf.write("fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                 "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: disconnect everyone; `immediate`: like a crash)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """True while the server runs."""
        uid, gid = self._ids()
        return subprocess.run([_need("pg_ctl"), "-D", str(self.data), "status"], check=False,
                              capture_output=True, user=uid, group=gid).returncode == 0

    def remove(self) -> None:
        """Stop (if running) and delete the cluster."""
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.init()
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()

    def _pg(self, name: str, *args: str) -> None:
        uid, gid = self._ids()
        done = subprocess.run([_need(name), *args], check=False, capture_output=True, text=True,
                              cwd=self.dir, user=uid, group=gid)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            with contextlib.suppress(OSError):  # the server's own words on why it did not start
                tail += (self.dir / "log").read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{name} failed ({done.returncode}): {' | '.join(tail)}")

    def _ids(self) -> tuple[int | None, int | None]:
        if self._user is None:
            return None, None
        return self._user.pw_uid, self._user.pw_gid

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise RuntimeError("PostgreSQL refuses root and there is no postgres or nobody user")


def _need(name: str) -> str:
    path = _binary(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install postgresql)")
    return path
