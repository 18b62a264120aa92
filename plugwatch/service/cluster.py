"""Sharing the plugs of one config among instances through leases in PostgreSQL (issue 16).

    cluster = Cluster(leases, plugs=[p.name for p in config.plugs], members=service)
    await cluster.run(stop)      # heartbeat, renew, rebalance every lease/5 s; release on stop

Each period the instance renews what it holds (a lease it lost is dropped at once), counts the
live instances, and moves toward its fair share: it claims free or expired plugs up to the share
(as many as needed: orphans of a dead instance are picked up in one period), and releases plugs
above the share a bounded number per period (`step`), so a rebalance never stops sampling. The
outbox sender follows a lease of its own ("sender"). Database calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Connection

from plugwatch.errors import PlugwatchError
from plugwatch.store.leases import LeaseStore, fair_share, fence

if TYPE_CHECKING:
    from plugwatch.service.alerting import Alerting
    from plugwatch.service.service import Service

log = logging.getLogger(__name__)
SENDER = "sender"


def plug_lease(plug: str) -> str:
    """The lease name of a plug."""
    return f"plug:{plug}"


def new_instance_id() -> str:
    """host-pid-random: unique per process start, readable in `status`."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Members(Protocol):
    """What the cluster drives: the service taking and dropping plugs, the sender on and off."""

    async def take(self, plugs: dict[str, int]) -> None:
        """Start sampling these plugs (name -> lease generation, the fence of their writes)."""

    async def drop(self, plugs: Sequence[str], *, flush: bool) -> None:
        """Stop sampling these plugs; with flush, write what is queued for them first."""

    async def sending(self, on: bool) -> None:
        """Start the outbox sender, or stop it and return once it has."""


class ServiceMembers:
    """The running service and its alerting as the cluster's Members."""

    def __init__(self, service: Service, alerting: Alerting) -> None:
        self.service = service
        self.alerting = alerting

    async def take(self, plugs: dict[str, int]) -> None:
        await self.service.take(plugs)

    async def drop(self, plugs: Sequence[str], *, flush: bool) -> None:
        await self.service.drop(list(plugs), flush=flush)

    async def sending(self, on: bool) -> None:
        if on:
            self.alerting.start_sending()
        else:
            await self.alerting.stop_sending()


def write_fence(service: Service, owner: str) -> Callable[[Connection, set[str]], set[str]]:
    """The store's fencer for `service`: of the plugs in a write, those it still holds."""

    def fencer(conn: Connection, plugs: set[str]) -> set[str]:
        held = {plug_lease(p): service.fences[p] for p in plugs if p in service.fences}
        return {name.removeprefix("plug:") for name in fence(conn, owner, held)}

    return fencer


class Cluster:
    """One instance's side of the lease protocol."""

    def __init__(self, leases: LeaseStore, plugs: Sequence[str], members: Members, *,
                 step: int | None = None) -> None:
        self.leases = leases
        self.plugs = list(plugs)
        self.members = members
        self.step = step or max(10, len(self.plugs) // 20)
        self.period_s = leases.lease_s / 5
        self.held: dict[str, int] = {}  # plug name -> generation
        self.sender: dict[str, int] = {}
        self.instances = 1

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the leases until `stop`; then hand everything over at once."""
        await asyncio.to_thread(self.leases.ensure, [*map(plug_lease, self.plugs), SENDER])
        try:
            # Be seen for one period before claiming: instances starting together then each
            # claim their share at once, instead of the first taking everything and handing
            # it back a step at a time.
            try:
                await asyncio.to_thread(self.leases.heartbeat, socket.gethostname(), os.getpid())
            except PlugwatchError as exc:
                log.error("cluster: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period_s)
            while not stop.is_set():
                try:
                    await self.step_once()
                except PlugwatchError as exc:  # the database is away: leases lapse by themselves
                    log.error("cluster: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.period_s)
        finally:
            await self.leave()

    async def step_once(self) -> None:
        """One period: heartbeat, renew, then claim or release toward the fair share."""
        live = await asyncio.to_thread(self.leases.heartbeat, socket.gethostname(), os.getpid())
        self.instances = len(live)
        await self._renew()
        share = fair_share(len(self.plugs), self.instances)
        if len(self.held) < share:
            names = [plug_lease(p) for p in self.plugs if p not in self.held]
            got = await asyncio.to_thread(self.leases.claim, names, share - len(self.held))
            if got:
                plugs = {name.removeprefix("plug:"): gen for name, gen in got.items()}
                self.held.update(plugs)
                log.info("cluster: took %d plugs (%d held, share %d of %d instances)",
                         len(plugs), len(self.held), share, self.instances)
                await self.members.take(plugs)
        elif len(self.held) > share:
            extra = sorted(self.held)[: min(self.step, len(self.held) - share)]
            await self.members.drop(extra, flush=True)
            for plug in extra:
                del self.held[plug]
            await asyncio.to_thread(self.leases.release, [plug_lease(p) for p in extra])
            log.info("cluster: handed over %d plugs (%d held, share %d of %d instances)",
                     len(extra), len(self.held), share, self.instances)
        if not self.sender:
            self.sender = await asyncio.to_thread(self.leases.claim, [SENDER], 1)
            if self.sender:
                log.info("cluster: this instance sends the notifications")
                await self.members.sending(True)

    async def _renew(self) -> None:
        held = {plug_lease(p): gen for p, gen in self.held.items()} | self.sender
        kept = await asyncio.to_thread(self.leases.renew, held)
        lost = [p for p in self.held if plug_lease(p) not in kept]
        if lost:
            log.warning("cluster: lost the leases of %d plugs (this instance was too slow or "
                        "cut off); stopped sampling them", len(lost))
            for plug in lost:
                del self.held[plug]
            await self.members.drop(lost, flush=False)
        if self.sender and SENDER not in kept:
            self.sender = {}
            log.warning("cluster: lost the sender's lease; another instance sends now")
            await self.members.sending(False)

    def may_send(self) -> bool:
        """Whether this instance surely holds the sender's lease for a while yet (at least half
        a lease): the sender asks before every delivery. Blocking: call it in a thread."""
        if not self.sender:
            return False
        try:
            return self.leases.holds(SENDER, self.sender[SENDER], self.leases.lease_s / 2)
        except PlugwatchError:
            return False

    async def leave(self) -> None:
        """A clean stop: flush and drop every plug, then release all leases at once."""
        plugs = list(self.held)
        await self.members.drop(plugs, flush=True)
        self.held.clear()
        if self.sender:  # the sender is stopped before its lease is given up: never two at once
            await self.members.sending(False)
            self.sender = {}
        try:
            await asyncio.to_thread(self.leases.leave)
        except PlugwatchError as exc:
            log.error("cluster: could not release the leases (they expire by themselves): %s",
                      exc)
