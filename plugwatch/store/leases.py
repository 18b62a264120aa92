"""Leases in PostgreSQL: which instance samples which plug, and which one sends the outbox.

Several `plugwatch run` instances on one PostgreSQL database share the plugs through one row per
plug (and one for the sender) in `leases`: owner, expiry and a generation that grows on every
claim. Every instance also keeps a row in `instances` alive, so each can work out its fair share.
All times are the database's clock (`clock_timestamp()`), so the instances' clocks never matter.

    leases = LeaseStore(store, owner="host-1234-ab12", lease_s=15)
    leases.ensure(["plug:washer", "plug:tv", "sender"])
    got = leases.claim(["plug:washer", "plug:tv"], limit=10)   # {name: generation}
    kept = leases.renew(got)                                     # the ones still ours
    leases.release(["plug:tv"])

A claim takes only rows that are free or expired (`FOR UPDATE SKIP LOCKED`: two instances never
wait for or take the same row). A writer fences its transaction with `fence(conn, held)`, which
share-locks the rows it still holds, so no claim can take them until that transaction is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from plugwatch.store.store import Store

NOW = "extract(epoch from clock_timestamp())"


@dataclass(frozen=True)
class Instance:
    """A live instance: its id, where it runs, since when, and its lease expiry (DB clock)."""

    id: str
    host: str
    pid: int
    started_at: float
    expires_at: float


class LeaseStore:
    """The lease and instance rows of one instance (`owner`) in a PostgreSQL Store. Every method
    is one transaction; a database error is a one-line StoreError."""

    def __init__(self, store: Store, owner: str, lease_s: float) -> None:
        self.store = store
        self.engine = store.engine
        self.owner = owner
        self.lease_s = lease_s

    def ensure(self, names: Iterable[str]) -> None:
        """Create the lease rows that do not exist yet (free, generation 0)."""
        rows = [{"name": name} for name in names]
        if not rows:
            return
        with self.store._guard("updating the leases in"), self.engine.begin() as conn:
            conn.execute(text("INSERT INTO leases (name, owner, expires_at, generation) "
                              "VALUES (:name, NULL, 0, 0) ON CONFLICT (name) DO NOTHING"), rows)

    def heartbeat(self, host: str, pid: int) -> list[Instance]:
        """Keep this instance alive for one lease; the live instances, oldest first."""
        with self.store._guard("updating the leases in"), self.engine.begin() as conn:
            conn.execute(text(
                f"INSERT INTO instances (id, host, pid, started_at, expires_at) VALUES "
                f"(:id, :host, :pid, {NOW}, {NOW} + :lease) ON CONFLICT (id) DO UPDATE "
                f"SET expires_at = {NOW} + :lease"),
                {"id": self.owner, "host": host, "pid": pid, "lease": self.lease_s})
            # an instance dead for ten leases is forgotten (its leases expired long ago)
            conn.execute(text(f"DELETE FROM instances WHERE expires_at < {NOW} - 10 * :lease"),
                         {"lease": self.lease_s})
            rows = conn.execute(text(
                f"SELECT id, host, pid, started_at, expires_at FROM instances "
                f"WHERE expires_at > {NOW} ORDER BY started_at, id")).all()
        return [Instance(*row) for row in rows]

    def claim(self, names: Iterable[str], limit: int) -> dict[str, int]:
        """Take up to `limit` of `names` that are free or expired; {name: new generation}."""
        wanted = list(names)
        if not wanted or limit <= 0:
            return {}
        with self.store._guard("updating the leases in"), self.engine.begin() as conn:
            rows = conn.execute(text(
                f"WITH free AS (SELECT name FROM leases WHERE name = ANY(:names) "
                f"AND (owner IS NULL OR expires_at < {NOW}) ORDER BY random() LIMIT :limit "
                f"FOR UPDATE SKIP LOCKED) "
                f"UPDATE leases AS l SET owner = :me, expires_at = {NOW} + :lease, "
                f"generation = l.generation + 1 FROM free WHERE l.name = free.name "
                f"RETURNING l.name, l.generation"),
                {"names": wanted, "limit": limit, "me": self.owner, "lease": self.lease_s}).all()
        return {name: int(gen) for name, gen in rows}

    def renew(self, held: Mapping[str, int]) -> dict[str, int]:
        """Extend the leases still ours (same owner and generation, not expired); those."""
        if not held:
            return {}
        with self.store._guard("updating the leases in"), self.engine.begin() as conn:
            rows = conn.execute(text(
                f"UPDATE leases AS l SET expires_at = {NOW} + :lease "
                f"FROM unnest(CAST(:names AS text[]), CAST(:gens AS bigint[])) AS m(name, gen) "
                f"WHERE l.name = m.name AND l.generation = m.gen AND l.owner = :me "
                f"AND l.expires_at > {NOW} RETURNING l.name, l.generation"),
                {"names": list(held), "gens": list(held.values()), "me": self.owner,
                 "lease": self.lease_s}).all()
        return {name: int(gen) for name, gen in rows}

    def holds(self, name: str, generation: int, margin_s: float) -> bool:
        """Whether this instance holds lease `name` at `generation` for `margin_s` more."""
        with self.store._guard("reading the leases in"), self.engine.connect() as conn:
            return conn.execute(text(
                f"SELECT 1 FROM leases WHERE name = :name AND owner = :me AND generation = :gen "
                f"AND expires_at > {NOW} + :margin"),
                {"name": name, "me": self.owner, "gen": generation, "margin": margin_s},
            ).first() is not None

    def release(self, names: Iterable[str]) -> None:
        """Give up these leases at once (a clean hand-over: another instance may claim now)."""
        names = list(names)
        if not names:
            return
        with self.store._guard("updating the leases in"), self.engine.begin() as conn:
            conn.execute(text("UPDATE leases SET owner = NULL, expires_at = 0 "
                              "WHERE name = ANY(:names) AND owner = :me"),
                         {"names": names, "me": self.owner})

    def leave(self) -> None:
        """Release every lease of this instance and remove its instance row (a clean stop)."""
        with self.store._guard("updating the leases in"), self.engine.begin() as conn:
            conn.execute(text("UPDATE leases SET owner = NULL, expires_at = 0 WHERE owner = :me"),
                         {"me": self.owner})
            conn.execute(text("DELETE FROM instances WHERE id = :me"), {"me": self.owner})

    def holders(self) -> dict[str, str]:
        """{lease name: owner} for every lease held and not expired (for `status`)."""
        with self.store._guard("reading the leases in"), self.engine.connect() as conn:
            return live_holders(conn)


def live_holders(conn: Connection) -> dict[str, str]:
    """{lease name: owner} of every lease held and not expired (PostgreSQL)."""
    rows = conn.execute(text(
        f"SELECT name, owner FROM leases WHERE owner IS NOT NULL AND expires_at > {NOW}")).all()
    return {name: owner for name, owner in rows}


def fence(conn: Connection, owner: str, held: Mapping[str, int]) -> set[str]:
    """Inside a write transaction: share-lock the lease rows `owner` still holds (same generation,
    not expired) and return their names. Writes for any other name must be dropped: the lease
    has moved on. The share lock keeps a claim from taking a row until the transaction ends."""
    if not held:
        return set()
    rows = conn.execute(text(
        f"SELECT l.name FROM leases AS l "
        f"JOIN unnest(CAST(:names AS text[]), CAST(:gens AS bigint[])) AS m(name, gen) "
        f"ON l.name = m.name AND l.generation = m.gen "
        f"WHERE l.owner = :me AND l.expires_at > {NOW} FOR SHARE OF l"),
        {"names": list(held), "gens": list(held.values()), "me": owner}).all()
    return {name for (name,) in rows}


def fair_share(total: int, instances: int) -> int:
    """How many of `total` leases one of `instances` live instances should hold."""
    return -(-total // max(1, instances))
