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
        capture: dict[str, Any] | None,
    ) -> None:
        """The answer and its capture are written together, or neither is."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
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

    def captures(self, reference: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT id, reference, amount_cents, currency, created_at FROM captures"
        args: tuple[str, ...] = ()
        if reference is not None:
            query, args = query + " WHERE reference = ?", (reference,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at", args).fetchall()
        names = ("id", "reference", "amount_cents", "currency", "created_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            total, count = self._db.execute(
                "SELECT coalesce(sum(amount_cents), 0), count(*) FROM captures"
            ).fetchone()
            doubles = self._db.execute(
                "SELECT reference, count(*) FROM captures GROUP BY reference HAVING count(*) > 1"
            ).fetchall()
        return {
            "captures": count,
            "captured_cents": total,
            "references_charged_more_than_once": {ref: n for ref, n in doubles},
        }
