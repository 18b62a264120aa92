"""Shared fixtures. External services (PostgreSQL, Mosquitto) are used for real when present.

When a service is absent its tests skip with the reason; with PLUGWATCH_REQUIRE_SERVICES=1 (set by
.ci/run) such a skip becomes a failure, so CI proves the tests really ran.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from plugwatch.emulator import Emulator

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "tests" / "data" / "traces"
POSTGRES_URL = os.environ.get("PLUGWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail, under PLUGWATCH_REQUIRE_SERVICES=1) when a service is not listening."""
    if _port_open(host, port):
        return
    reason = f"{name} is not listening on {host}:{port}"
    if os.environ.get("PLUGWATCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (PLUGWATCH_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> str:
    """URL of the machine's PostgreSQL test database (skips/fails when absent)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL of each kind: a SQLite file, a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/plugwatch.db"
        return
    from plugwatch.store.scratch import scratch_schema

    with scratch_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """An Emulator with no plugs yet, stopped after the test."""
    from plugwatch.emulator import Emulator

    emu = Emulator()
    yield emu
    await emu.stop()
