"""Idempotency-Key for POST /orders: the first complete answer under a key is stored and
replayed for the same request; another request under the same key is refused; while the
first is still being handled, a second gets 409. A hold left by a crashed instance is
taken over after `hold_seconds`."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from kit import Postgres
from orders.errors import IdempotencyKeyReused, RequestInProgress


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, db: Postgres, *, hold_seconds: float) -> None:
        self.db = db
        self.hold_seconds = hold_seconds

    async def claim(
        self, *, user_id: uuid.UUID, key: str, digest: str
    ) -> tuple[int, dict[str, Any]] | None:
        """Hold the key for this request; or return the stored answer to replay."""
        async with self.db.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                """INSERT INTO idempotency_keys (user_id, key, request_hash, state)
                   VALUES (%s, %s, %s, 'IN_FLIGHT')
                   ON CONFLICT (user_id, key) DO UPDATE SET updated_at = now()
                       WHERE idempotency_keys.state = 'IN_FLIGHT'
                         AND idempotency_keys.request_hash = excluded.request_hash
                         AND idempotency_keys.updated_at
                             < now() - make_interval(secs => %s)
                   RETURNING state""",
                (user_id, key, digest, self.hold_seconds),
            )
            if await cursor.fetchone() is not None:
                return None  # ours now: a new key, or a stale hold taken over
            row = await (
                await conn.execute(
                    """SELECT request_hash, state, status_code, body FROM idempotency_keys
                       WHERE user_id = %s AND key = %s""",
                    (user_id, key),
                )
            ).fetchone()
        assert row is not None
        stored_hash, state, status_code, body = row
        if stored_hash != digest:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for a different request; use a new key."
            )
        if state == "IN_FLIGHT":
            raise RequestInProgress("A request with this Idempotency-Key is still in progress.")
        return int(status_code), dict(body)

    async def release(self, *, user_id: uuid.UUID, key: str) -> None:
        """Forget a hold whose request failed without an answer, so it can be retried."""
        async with self.db.connection() as conn:
            await conn.execute(
                """DELETE FROM idempotency_keys
                   WHERE user_id = %s AND key = %s AND state = 'IN_FLIGHT'""",
                (user_id, key),
            )


async def store_answer(
    conn: Any, *, user_id: uuid.UUID, key: str, status_code: int, body: dict[str, Any]
) -> None:
    """Inside the transaction that made the answer true."""
    await conn.execute(
        """UPDATE idempotency_keys SET state = 'DONE', status_code = %s, body = %s,
               updated_at = now() WHERE user_id = %s AND key = %s""",
        (status_code, Jsonb(body), user_id, key),
    )
