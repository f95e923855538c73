"""Auth use cases: register, log in, rotate refresh tokens, log out, publish keys.
No FastAPI here; every function takes keyword arguments."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auth import store
from auth.config import AuthSettings
from auth.errors import EmailTaken, InvalidCredentials, InvalidRefreshToken
from auth.keys import new_signing_key, sign_access_token
from auth.passwords import Passwords
from auth.ratelimit import LoginLimiter
from kit import DependencyUnavailable, Postgres

log = logging.getLogger("auth.service")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AuthService:
    def __init__(
        self, *, db: Postgres, limiter: LoginLimiter, passwords: Passwords, settings: AuthSettings
    ) -> None:
        self.db = db
        self.limiter = limiter
        self.passwords = passwords
        self.settings = settings

    # -- start-up: a signing key and the admin account exist -------------------------

    async def bootstrap(self) -> None:
        await self.ensure_signing_key()
        await self.ensure_admin()

    async def ensure_signing_key(self) -> None:
        async with self.db.connection() as conn, conn.transaction():
            await store.lock_key_creation(conn)
            if await store.current_signing_key(conn) is None:
                await store.add_signing_key(conn, new_signing_key(), retire_others=False)

    async def rotate_signing_key(self) -> str:
        """A new key signs from now on; the old ones stay published until their last
        token has expired."""
        key = new_signing_key()
        async with self.db.connection() as conn, conn.transaction():
            await store.lock_key_creation(conn)
            await store.add_signing_key(conn, key, retire_others=True)
        log.info("signing key rotated", extra={"kid": key.kid})
        return key.kid

    async def ensure_admin(self) -> None:
        password_hash = await self.passwords.hash(self.settings.admin_password.get_secret_value())
        async with self.db.connection() as conn:
            await store.insert_user(
                conn,
                email=normalise_email(self.settings.admin_email),
                password_hash=password_hash,
                roles=["customer", "admin"],
            )

    # -- accounts ---------------------------------------------------------------------

    async def register(
        self, *, email: str, password: str, client_address: str
    ) -> tuple[uuid.UUID, str]:
        email = normalise_email(email)
        # Counted before hashing: a refused flood costs a Redis call, no argon2 time.
        await self.limiter.check_signup_address(client_address)
        password_hash = await self.passwords.hash(password)
        async with self.db.connection() as conn:
            user_id = await store.insert_user(
                conn, email=email, password_hash=password_hash, roles=["customer"]
            )
        if user_id is None:
            raise EmailTaken(f"{email} already has an account; log in instead.")
        return user_id, email

    async def profile(self, *, user_id: str) -> store.User:
        async with self.db.connection() as conn:
            user = await store.user_by_id(conn, uuid.UUID(user_id))
        if user is None:
            raise InvalidRefreshToken("The account no longer exists.")
        return user

    # -- tokens -----------------------------------------------------------------------

    async def login(self, *, email: str, password: str, client_address: str) -> TokenPair:
        email = normalise_email(email)
        await self.limiter.check_address(client_address)
        await self.limiter.take_failure_slot(email)
        user = await self._check_password(email=email, password=password)
        if user is None:
            raise InvalidCredentials()  # the slot taken stays counted as a failure
        await self.limiter.clear(email)
        async with self.db.connection() as conn, conn.transaction():
            return await self._issue(conn, user=user, family_id=uuid.uuid4())

    async def _check_password(self, *, email: str, password: str) -> store.User | None:
        """The user when the password matches; the failure slot is given back when the
        password could not be checked at all."""
        try:
            async with self.db.connection() as conn:
                user = await store.user_by_email(conn, email)
            # An unknown email still costs one hash, so both failures take the same time.
            matched = await self.passwords.verify(user.password_hash if user else None, password)
        except DependencyUnavailable:
            await self.limiter.give_back(email)
            raise
        return user if matched else None

    async def refresh(self, *, refresh_token: str) -> TokenPair:
        async with self.db.connection() as conn:
            async with conn.transaction():
                row = await store.lock_refresh_token(conn, _hash_refresh_token(refresh_token))
                if row is None or row.revoked_at is not None:
                    raise InvalidRefreshToken("The refresh token is not valid; log in again.")
                if row.expires_at <= datetime.now(UTC):
                    raise InvalidRefreshToken("The refresh token has expired; log in again.")
                if row.used_at is None:
                    await store.mark_used(conn, row.id)
                    user = await store.user_by_id(conn, row.user_id)
                    if user is None:
                        raise InvalidRefreshToken("The account no longer exists.")
                    return await self._issue(conn, user=user, family_id=row.family_id)
                # Reuse of a rotated token means it leaked: end the whole session.
                await store.revoke_family(conn, row.family_id)
            log.warning(
                "refresh token reused; family revoked", extra={"family": str(row.family_id)}
            )
            raise InvalidRefreshToken("The refresh token was already used; log in again.")

    async def logout(self, *, user_id: str, refresh_token: str) -> None:
        async with self.db.connection() as conn, conn.transaction():
            row = await store.lock_refresh_token(conn, _hash_refresh_token(refresh_token))
            if row is None or str(row.user_id) != user_id:
                raise InvalidRefreshToken("That refresh token is not one of yours.")
            await store.revoke_family(conn, row.family_id)

    async def _issue(self, conn: Any, *, user: store.User, family_id: uuid.UUID) -> TokenPair:
        key = await store.current_signing_key(conn)
        if key is None:
            raise DependencyUnavailable("signing key")
        refresh_token = secrets.token_urlsafe(32)
        await store.insert_refresh_token(
            conn,
            family_id=family_id,
            user_id=user.id,
            token_hash=_hash_refresh_token(refresh_token),
            ttl_seconds=self.settings.refresh_token_ttl_seconds,
        )
        access_token = sign_access_token(
            key,
            user_id=str(user.id),
            roles=user.roles,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            ttl_seconds=self.settings.access_token_ttl_seconds,
        )
        return TokenPair(access_token, refresh_token, self.settings.access_token_ttl_seconds)

    async def jwks(self) -> dict[str, Any]:
        async with self.db.connection() as conn:
            keys = await store.published_jwks(
                conn, token_ttl_seconds=self.settings.access_token_ttl_seconds
            )
        return {"keys": keys}
