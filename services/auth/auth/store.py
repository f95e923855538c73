"""SQL for the auth domain: users, refresh tokens and signing keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from auth.keys import SigningKey

# Serialises key creation across instances (any fixed number unique to this purpose).
KEY_CREATION_LOCK = 0x4B455953


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    password_hash: str
    roles: list[str]


@dataclass(frozen=True)
class RefreshToken:
    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


async def insert_user(
    conn: AsyncConnection, *, email: str, password_hash: str, roles: list[str]
) -> uuid.UUID | None:
    cursor = await conn.execute(
        """INSERT INTO users (id, email, password_hash, roles) VALUES (%s, %s, %s, %s)
           ON CONFLICT (email) DO NOTHING RETURNING id""",
        (uuid.uuid4(), email, password_hash, roles),
    )
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def user_by_email(conn: AsyncConnection, email: str) -> User | None:
    async with conn.cursor(row_factory=class_row(User)) as cursor:
        await cursor.execute(
            "SELECT id, email, password_hash, roles FROM users WHERE email = %s", (email,)
        )
        return await cursor.fetchone()


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> User | None:
    async with conn.cursor(row_factory=class_row(User)) as cursor:
        await cursor.execute(
            "SELECT id, email, password_hash, roles FROM users WHERE id = %s", (user_id,)
        )
        return await cursor.fetchone()


async def insert_refresh_token(
    conn: AsyncConnection,
    *,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    token_hash: bytes,
    ttl_seconds: int,
) -> None:
    await conn.execute(
        """INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
           VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))""",
        (uuid.uuid4(), family_id, user_id, token_hash, ttl_seconds),
    )


async def lock_refresh_token(conn: AsyncConnection, token_hash: bytes) -> RefreshToken | None:
    """The token's row, locked until the transaction ends: two concurrent uses of one
    token are serialised, so exactly one of them can rotate it."""
    async with conn.cursor(row_factory=class_row(RefreshToken)) as cursor:
        await cursor.execute(
            """SELECT id, family_id, user_id, expires_at, used_at, revoked_at
               FROM refresh_tokens WHERE token_hash = %s FOR UPDATE""",
            (token_hash,),
        )
        return await cursor.fetchone()


async def mark_used(conn: AsyncConnection, token_id: uuid.UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (token_id,))


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = %s AND revoked_at IS NULL",
        (family_id,),
    )


async def current_signing_key(conn: AsyncConnection) -> SigningKey | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """SELECT kid, private_key_pem, public_jwk FROM signing_keys
               WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"""
        )
        row = await cursor.fetchone()
    return None if row is None else SigningKey(**row)


async def published_jwks(conn: AsyncConnection, *, token_ttl_seconds: int) -> list[dict[str, Any]]:
    """Every key that signs now or signed a token that may still be unexpired."""
    cursor = await conn.execute(
        """SELECT public_jwk FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => %s)
           ORDER BY created_at DESC""",
        (token_ttl_seconds,),
    )
    return [row[0] for row in await cursor.fetchall()]


async def add_signing_key(conn: AsyncConnection, key: SigningKey, *, retire_others: bool) -> None:
    if retire_others:
        await conn.execute("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL")
    await conn.execute(
        "INSERT INTO signing_keys (kid, private_key_pem, public_jwk) VALUES (%s, %s, %s)",
        (key.kid, key.private_key_pem, Jsonb(key.public_jwk)),
    )


async def lock_key_creation(conn: AsyncConnection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (KEY_CREATION_LOCK,))
