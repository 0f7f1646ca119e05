"""The alerts' state in the PostgreSQL database several hubs share (migration 7), and
which hub judges and delivers them.

``PostgresAlertStore`` implements ``AlertStateStore`` on ``alert_incidents`` and
``alert_outbox``, each ``commit`` one transaction, as the SQLite store does in
``data_dir/alerts.sqlite``. ``PostgresAlertLeadership`` implements
``AlertLeadership``: the hub whose connection holds the schema's advisory
lock (``TRY_LEAD_SQL``) is the one that judges and delivers; the lock goes with its
connection (a hub that dies, stops or loses the database lets it go), and another
hub takes it at its next try (docs/cluster.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import psycopg

from hub.errors import StoreError
from hub.store._api import AlertStateStore, NewDelivery, StoredDelivery, StoredIncident
from hub.store._cluster_api import AlertLeadership
from hub.store._pg_db import CONNECT_TIMEOUT_SECONDS, Connection, PostgresDatabase, connect
from hub.store._pg_schema import (
    ACTIVE_INCIDENTS_SQL,
    DELIVERED_SQL,
    FIRE_INCIDENT_SQL,
    GIVE_UP_LEAD_SQL,
    PENDING_DELIVERIES_SQL,
    QUEUE_DELIVERY_SQL,
    RESOLVE_INCIDENT_SQL,
    TRY_LEAD_SQL,
)
from hub.text import redacted_url

log = logging.getLogger(__name__)

# The server notices a leader whose host vanished without closing its connection
# within about idle + interval * count seconds (TCP only; sockets close at once).
_SERVER_KEEPALIVES: Final = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


class PostgresAlertStore:
    """Incidents and the outbox in the database at ``url``; usable from any thread."""

    def __init__(self, url: str, *, wait_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._db = PostgresDatabase(url, name="alerts", wait_seconds=wait_seconds)

    def active(self) -> list[StoredIncident]:
        with self._db.connection("reading the alert incidents") as conn:
            rows = conn.execute(ACTIVE_INCIDENTS_SQL).fetchall()
        return [StoredIncident(str(a), str(k), int(f), str(e)) for a, k, f, e in rows]

    def pending(self) -> list[StoredDelivery]:
        with self._db.connection("reading the alert outbox") as conn:
            rows = conn.execute(PENDING_DELIVERIES_SQL).fetchall()
        return [StoredDelivery(int(i), str(a), str(t), str(e)) for i, a, t, e in rows]

    def commit(
        self,
        *,
        fired: Sequence[StoredIncident] = (),
        resolved: Sequence[tuple[str, str]] = (),
        deliveries: Sequence[NewDelivery] = (),
    ) -> list[StoredDelivery]:
        if not (fired or resolved or deliveries):
            return []
        queued: list[StoredDelivery] = []
        with self._db.transaction("recording alerts") as conn:
            with conn.cursor() as cursor:
                cursor.executemany(RESOLVE_INCIDENT_SQL, list(resolved))
                cursor.executemany(
                    FIRE_INCIDENT_SQL, [(i.alert, i.key, i.fired_ms, i.event) for i in fired]
                )
            for delivery in deliveries:
                row = conn.execute(
                    QUEUE_DELIVERY_SQL, (delivery.alert, delivery.target, delivery.event)
                ).fetchone()
                assert row is not None
                queued.append(
                    StoredDelivery(int(row[0]), delivery.alert, delivery.target, delivery.event)
                )
        return queued

    def done(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        with self._db.transaction("clearing delivered events") as conn:
            conn.execute(DELIVERED_SQL, (list(delivery_ids),))

    def close(self) -> None:
        self._db.close()


class PostgresAlertLeadership:
    """This hub's claim to judge and deliver the alerts: the advisory lock on one
    connection of its own. Used from one thread (the AlertActor's)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._shown = redacted_url(url)
        self._conn: Connection | None = None
        self._leading = False

    def try_lead(self) -> bool:
        if self._leading:
            return True
        if self._conn is not None and self._conn.closed:
            self._conn = None
        stale = self._conn is not None
        try:
            if self._conn is None:
                self._conn = connect(self._url)
                for statement in _SERVER_KEEPALIVES:
                    self._conn.execute(statement.encode())
            row = self._conn.execute(TRY_LEAD_SQL).fetchone()
        except (psycopg.Error, StoreError) as exc:
            if stale:  # the connection kept from the last try died meanwhile: a new one
                self.close()
                return self.try_lead()
            self._drop(f"cannot try to lead the alerts on {self._shown}: {exc}")
            return False
        self._leading = bool(row and row[0])
        return self._leading

    def still_leading(self) -> bool:
        if not self._leading or self._conn is None:
            return False
        try:
            self._conn.execute(b"SELECT 1")
        except psycopg.Error as exc:
            self._drop(f"lost the connection holding the alerts' lock on {self._shown}: {exc}")
            return False
        return True

    def _drop(self, why: str) -> None:
        log.warning("alerts: %s", why)
        self.close()

    def close(self) -> None:
        conn, leading = self._conn, self._leading
        self._conn, self._leading = None, False
        if conn is None:
            return
        try:
            if leading and not conn.closed:
                conn.execute(GIVE_UP_LEAD_SQL)  # the next hub need not wait for the server
        except psycopg.Error:
            log.debug("giving up the alerts' lock failed; closing lets it go", exc_info=True)
        try:
            conn.close()
        except psycopg.Error:
            log.debug("closing the alerts' lock connection failed", exc_info=True)


if TYPE_CHECKING:
    # mypy checks the classes against their contracts, signatures included.
    def _implements(
        store: PostgresAlertStore, leadership: PostgresAlertLeadership
    ) -> tuple[AlertStateStore, AlertLeadership]:
        return store, leadership
