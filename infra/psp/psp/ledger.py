"""The processor's own books, in its own SQLite file: every charge request answered under
an idempotency key, and every capture. Shopstack's invariants are checked against these,
outside Shopstack's code: two captures for one reference is a double charge."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    idempotency_key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS captures (
    id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS captures_reference ON captures (reference);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL UNIQUE REFERENCES captures (id),
    amount_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def answer(self, key: str) -> tuple[str, int, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT request_hash, status_code, body FROM answers WHERE idempotency_key = ?",
                (key,),
            ).fetchone()
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    def record(
        self,
        *,
        key: str,
        request_hash: str,
        status_code: int,
        body: dict[str, Any],
        capture: dict[str, Any] | None = None,
        refund: dict[str, Any] | None = None,
    ) -> None:
        """The answer and its capture (or refund) are written together, or neither is."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if refund is not None:
                    self._db.execute(
                        "INSERT INTO refunds (id, charge_id, amount_cents) VALUES (?, ?, ?)",
                        (refund["id"], refund["charge_id"], refund["amount_cents"]),
                    )
                if capture is not None:
                    self._db.execute(
                        "INSERT INTO captures (id, reference, amount_cents, currency) "
                        "VALUES (?, ?, ?, ?)",
                        (
                            capture["id"],
                            capture["reference"],
                            capture["amount_cents"],
                            capture["currency"],
                        ),
                    )
                self._db.execute(
                    "INSERT INTO answers (idempotency_key, request_hash, status_code, body) "
                    "VALUES (?, ?, ?, ?)",
                    (key, request_hash, status_code, json.dumps(body)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def capture(self, charge_id: str) -> dict[str, Any] | None:
        found = self._select(" WHERE c.id = ?", (charge_id,))
        return found[0] if found else None

    def captures(self, reference: str | None = None) -> list[dict[str, Any]]:
        if reference is None:
            return self._select("", ())
        return self._select(" WHERE c.reference = ?", (reference,))

    def _select(self, where: str, args: tuple[str, ...]) -> list[dict[str, Any]]:
        query = (
            "SELECT c.id, c.reference, c.amount_cents, c.currency, c.created_at, "
            "coalesce(r.amount_cents, 0) FROM captures c LEFT JOIN refunds r "
            "ON r.charge_id = c.id" + where + " ORDER BY c.created_at"
        )
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        names = ("id", "reference", "amount_cents", "currency", "created_at", "refunded_cents")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            total, count = self._db.execute(
                "SELECT coalesce(sum(amount_cents), 0), count(*) FROM captures"
            ).fetchone()
            (refunded,) = self._db.execute(
                "SELECT coalesce(sum(amount_cents), 0) FROM refunds"
            ).fetchone()
            doubles = self._db.execute(
                "SELECT reference, count(*) FROM captures GROUP BY reference HAVING count(*) > 1"
            ).fetchall()
        return {
            "captures": count,
            "captured_cents": total,
            "refunded_cents": refunded,
            "references_charged_more_than_once": {ref: n for ref, n in doubles},
        }
