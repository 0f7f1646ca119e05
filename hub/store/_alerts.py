"""The alerts' state in ``<data_dir>/alerts.sqlite``: firing incidents and the delivery outbox.

``SqliteAlertStore`` implements ``AlertStateStore`` (``hub.store._api``) and owns one
SQLite connection, created and used in one thread (the AlertActor's).
``read_alert_state`` is a read-only snapshot for the CLI (``synchub alerts``), usable
whether or not the hub is running.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from hub.errors import StoreError
from hub.store._api import AlertStateStore, NewDelivery, StoredDelivery, StoredIncident
from hub.store._files import ensure_private_database
from hub.store._sqlite_check import check_file, check_pages, failed, opening_failure

ALERT_STORE_FILENAME: Final = "alerts.sqlite"

_BUSY_TIMEOUT_MS = 5000

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS incidents (alert TEXT NOT NULL, key TEXT NOT NULL, "
    "fired_ms INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (alert, key))",
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "alert TEXT NOT NULL, target TEXT NOT NULL, event TEXT NOT NULL)",
)
_FIRE: Final = (
    "INSERT INTO incidents (alert, key, fired_ms, event) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (alert, key) DO UPDATE SET fired_ms = excluded.fired_ms, event = excluded.event"
)
_ACTIVE: Final = "SELECT alert, key, fired_ms, event FROM incidents ORDER BY alert, key"
_PENDING: Final = "SELECT id, alert, target, event FROM outbox ORDER BY id"


def alert_store_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / ALERT_STORE_FILENAME


class SqliteAlertStore:
    """Incidents and the outbox in SQLite (WAL); every change is one transaction."""

    def __init__(self, data_dir: str | os.PathLike[str], *, check: bool = False) -> None:
        """``check``: refuse the file when ``PRAGMA quick_check`` finds damage."""
        self.path = alert_store_path(data_dir)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_file(self.path, "alert store")
            ensure_private_database(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise opening_failure("alert store", self.path, exc) from exc
        try:
            if check:
                check_pages(conn, self.path, "alert store")
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise failed("alert store", self.path, "preparing it", exc) from exc
        self._conn: sqlite3.Connection | None = conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the alert store is closed")
        return self._conn

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {action} failed: {exc}") from exc

    def active(self) -> list[StoredIncident]:
        try:
            rows = self._connection().execute(_ACTIVE).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read incidents: {exc}") from exc
        return [StoredIncident(*row) for row in rows]

    def pending(self) -> list[StoredDelivery]:
        try:
            rows = self._connection().execute(_PENDING).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the outbox: {exc}") from exc
        return [StoredDelivery(*row) for row in rows]

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
        with self._transaction("recording alerts") as conn:
            conn.executemany(
                "DELETE FROM incidents WHERE alert = ? AND key = ?", list(resolved)
            )
            conn.executemany(_FIRE, [(i.alert, i.key, i.fired_ms, i.event) for i in fired])
            for delivery in deliveries:
                cursor = conn.execute(
                    "INSERT INTO outbox (alert, target, event) VALUES (?, ?, ?)",
                    (delivery.alert, delivery.target, delivery.event),
                )
                assert cursor.lastrowid is not None
                queued.append(
                    StoredDelivery(
                        cursor.lastrowid, delivery.alert, delivery.target, delivery.event
                    )
                )
        return queued

    def done(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        with self._transaction("clearing delivered events") as conn:
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in delivery_ids])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot close the alert store: {exc}") from exc


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(store: SqliteAlertStore) -> AlertStateStore:
        return store


def read_alert_state(
    data_dir: str | os.PathLike[str],
) -> tuple[list[StoredIncident], list[StoredDelivery]]:
    """The firing incidents and the undelivered events; empty when there is no store.

    Opens the file read-only, so it never creates or changes anything in data_dir.
    """
    path = alert_store_path(data_dir)
    if not path.is_file():
        return [], []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the alert store: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        tables = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        incidents = conn.execute(_ACTIVE).fetchall() if "incidents" in tables else []
        pending = conn.execute(_PENDING).fetchall() if "outbox" in tables else []
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot read the alert store: {exc}") from exc
    finally:
        conn.close()
    return [StoredIncident(*row) for row in incidents], [StoredDelivery(*row) for row in pending]
