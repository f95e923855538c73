"""Idempotency-Key for POST /orders: the first complete answer under a key is stored and
replayed for the same request; another request under the same key is refused; while the
first is still being handled, a second gets 409.

A request holds the key as one *attempt*, with a fresh order id that also fences it: the
answer is stored (with the order, in one transaction) only if the hold is still that
attempt's, and an attempt that fails gives up only its own hold. A hold older than
`hold_seconds` (its instance crashed or froze) is taken over by a new attempt, and the old
attempt is recorded as abandoned, so whatever stock it reserved is released and it can
never record an order, however late it wakes up.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from kit import Postgres
from orders.errors import CheckoutInterrupted, IdempotencyKeyReused, RequestInProgress


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Hold:
    user_id: uuid.UUID
    key: str
    attempt: uuid.UUID  # the order id this attempt reserves and records under


class IdempotencyKeys:
    def __init__(self, db: Postgres, *, hold_seconds: float) -> None:
        self.db = db
        self.hold_seconds = hold_seconds

    async def claim(
        self, *, user_id: uuid.UUID, key: str, digest: str
    ) -> Hold | tuple[int, dict[str, Any]]:
        """Hold the key for a new attempt; or return the stored answer to replay."""
        attempt = uuid.uuid4()
        async with self.db.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                """INSERT INTO idempotency_keys (user_id, key, request_hash, state, attempt)
                   VALUES (%s, %s, %s, 'IN_FLIGHT', %s) ON CONFLICT (user_id, key) DO NOTHING""",
                (user_id, key, digest, attempt),
            )
            if cursor.rowcount == 1:
                return Hold(user_id, key, attempt)
            row = await (
                await conn.execute(
                    """SELECT request_hash, state, status_code, body, attempt,
                              updated_at < now() - make_interval(secs => %s)
                       FROM idempotency_keys WHERE user_id = %s AND key = %s FOR UPDATE""",
                    (self.hold_seconds, user_id, key),
                )
            ).fetchone()
            if row is None:  # released between our insert and our read: the client retries
                raise RequestInProgress("A request with this Idempotency-Key just ended.")
            stored_hash, state, status_code, body, previous, stale = row
            if stored_hash != digest:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used for a different request; use a new key."
                )
            if state == "DONE":
                return int(status_code), dict(body)
            if not stale:
                raise RequestInProgress("A request with this Idempotency-Key is still in progress.")
            await _abandon(conn, previous)
            await conn.execute(
                """UPDATE idempotency_keys SET attempt = %s, updated_at = now()
                   WHERE user_id = %s AND key = %s""",
                (attempt, user_id, key),
            )
        return Hold(user_id, key, attempt)

    async def abandon(self, hold: Hold) -> bool:
        """Give up this attempt's hold (its request failed without an answer), so the key
        can be retried, and record the attempt as abandoned; True if it was. A hold already
        taken over, or answered (a commit whose acknowledgement was lost), is left as it
        is: False."""
        async with self.db.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                """DELETE FROM idempotency_keys WHERE user_id = %s AND key = %s
                   AND attempt = %s AND state = 'IN_FLIGHT'""",
                (hold.user_id, hold.key, hold.attempt),
            )
            if cursor.rowcount != 1:
                return False
            await _abandon(conn, hold.attempt)
        return True

    async def abandon_stale(self, *, limit: int) -> int:
        """Holds that nobody came back for: abandoned, as a retry would have done."""
        async with self.db.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                """DELETE FROM idempotency_keys WHERE (user_id, key) IN (
                       SELECT user_id, key FROM idempotency_keys
                       WHERE state = 'IN_FLIGHT'
                         AND updated_at < now() - make_interval(secs => %s)
                       LIMIT %s FOR UPDATE SKIP LOCKED)
                   RETURNING attempt""",
                (self.hold_seconds, limit),
            )
            attempts = [row[0] for row in await cursor.fetchall()]
            for attempt in attempts:
                await _abandon(conn, attempt)
        return len(attempts)


async def _abandon(conn: AsyncConnection, attempt: uuid.UUID | None) -> None:
    if attempt is not None:
        await conn.execute(
            "INSERT INTO abandoned_attempts (order_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (attempt,),
        )


async def store_answer(
    conn: AsyncConnection, hold: Hold, *, status_code: int, body: dict[str, Any]
) -> None:
    """Inside the transaction that made the answer true; refused (and so that transaction
    with it) if the hold is no longer this attempt's."""
    cursor = await conn.execute(
        """UPDATE idempotency_keys SET state = 'DONE', status_code = %s, body = %s,
               updated_at = now()
           WHERE user_id = %s AND key = %s AND attempt = %s AND state = 'IN_FLIGHT'""",
        (status_code, Jsonb(body), hold.user_id, hold.key, hold.attempt),
    )
    if cursor.rowcount != 1:
        raise CheckoutInterrupted(
            "This request was overtaken by a newer one with the same Idempotency-Key; "
            "send it again to get that one's answer."
        )
