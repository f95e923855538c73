"""Verifying access tokens locally, in every service, without asking auth per request.

Following RFC 8725: one pinned algorithm (EdDSA), the key chosen by `kid` among keys
fetched from auth's JWKS (never from the token), `iss`, `aud`, `exp`, `iat`, `sub` and
`jti` required, and the access-token type (`typ: at+jwt`, RFC 9068) checked so that no
other kind of token passes. Keys are cached and auth being unreachable changes nothing for
known keys. An unknown `kid` triggers a refresh, so a rotation is learnt on first sight;
floods of made-up kids cannot turn into floods of fetches: refreshes are at least
`min_refresh_seconds` apart, and a kid still unknown after a refresh is remembered as
unknown for `unknown_kid_seconds`. The keys are also fetched again every
`refresh_seconds` in the background, and a fresh non-empty set replaces the cached one:
a key auth stopped publishing (retired long enough, or withdrawn after a leak) stops
verifying within that interval, not at the next restart.

A token verified once is remembered until it expires (a shopper sends the same token
with every request for its lifetime): the repeat costs a lookup, not a signature check.
The memory is keyed by the whole token, so only the very bytes that were checked pass,
and it is dropped whenever the key set changes, so a withdrawn key's tokens are checked
(and refused) again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from kit.errors import DependencyUnavailable, ShopError
from kit.service_client import ServiceClient

log = logging.getLogger("kit.tokens")

ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]
# Tokens remembered as verified; past this many (a flood of distinct tokens), forgotten.
MAX_VERIFIED = 20_000

# Fetches the current JWKS document: {"keys": [...]}.
KeySource = Callable[[], Awaitable[Mapping[str, Any]]]


JWKS_PATH = "/auth/.well-known/jwks.json"


def jwks_from(client: ServiceClient) -> KeySource:
    """Auth's published keys, fetched through discovery like any service call."""

    async def fetch() -> Mapping[str, Any]:
        response = await client.request("auth", "GET", JWKS_PATH)
        if response.status_code != 200:
            raise DependencyUnavailable("auth")
        document: Mapping[str, Any] = response.json()
        return document

    return fetch


class Unauthorized(ShopError):
    status = 401
    type = "unauthorized"
    title = "Unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: tuple[str, ...]
    token_id: str

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _usable_keys(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The document's keys for our algorithm, by kid; one malformed entry is skipped
    rather than costing the others (or the background refresh)."""
    entries = document.get("keys") if isinstance(document, Mapping) else None
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("alg") != ALGORITHM:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            keys[kid] = jwt.PyJWK(dict(entry), algorithm=ALGORITHM)
        except jwt.PyJWTError as exc:
            log.warning("skipping a malformed signing key", extra={"error": repr(exc)})
    return keys


class TokenVerifier:
    def __init__(
        self,
        fetch_keys: KeySource,
        *,
        issuer: str,
        audience: str,
        refresh_seconds: float = 300.0,
        min_refresh_seconds: float = 1.0,
        unknown_kid_seconds: float = 60.0,
        leeway_seconds: int = 5,
    ) -> None:
        self.fetch_keys = fetch_keys
        self.issuer = issuer
        self.audience = audience
        self.refresh_seconds = refresh_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.unknown_kid_seconds = unknown_kid_seconds
        self._unknown_until: dict[str, float] = {}
        self.leeway_seconds = leeway_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        # token -> (its exp claim, who it names); see the module's doc.
        self._verified: dict[str, tuple[float, Principal]] = {}
        self._last_refresh = -float("inf")
        self._refresh_lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._background = asyncio.create_task(self._keep_fresh())

    @property
    def loaded(self) -> bool:
        """Has keys to verify tokens with (none yet: every token is refused with a 503)."""
        return bool(self._keys)

    async def _keep_fresh(self) -> None:
        pause = 0.1  # at start-up the caller's discovery may not know auth for a moment
        while not self._keys:
            await self.refresh(force=True)
            if not self._keys:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
        while True:
            await asyncio.sleep(self.refresh_seconds)
            # A failed fetch keeps the cached keys (see `refresh`): auth being away for a
            # while must not log every user out.
            await self.refresh(force=True)

    async def stop(self) -> None:
        if self._background:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the published keys; True when a fresh set was fetched."""
        async with self._refresh_lock:
            if not force and time.monotonic() - self._last_refresh < self.min_refresh_seconds:
                return False
            self._last_refresh = time.monotonic()
            try:
                document = await self.fetch_keys()
            except Exception as exc:
                log.warning(
                    "could not fetch signing keys; keeping cached ones", extra={"error": repr(exc)}
                )
                return False
            keys = _usable_keys(document)
            if keys:
                if set(keys) != set(self._keys) or any(
                    keys[kid].key != self._keys[kid].key for kid in keys
                ):
                    self._verified.clear()
                self._keys = keys
            return bool(keys)

    def _forget_stale_unknowns(self) -> None:
        now = time.monotonic()
        for kid in [k for k, until in self._unknown_until.items() if until < now]:
            del self._unknown_until[kid]

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            expires, principal = known
            if time.time() <= expires + self.leeway_seconds:
                return principal
            del self._verified[token]
        return await self._check(token)

    async def _check(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"Access tokens are signed with {ALGORITHM} only.")
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthorized("This is not an access token.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("The access token names no signing key.")
        if kid not in self._keys and self._unknown_until.get(kid, 0.0) < time.monotonic():
            fetched = await self.refresh()
            # Only a kid that a fresh key set lacks is known to be unknown.
            if fetched and kid not in self._keys:
                self._forget_stale_unknowns()
                self._unknown_until[kid] = time.monotonic() + self.unknown_kid_seconds
        if not self._keys:
            # Never reached auth yet (just started, or auth away since): we cannot tell a
            # good token from a bad one, which is our fault, not the caller's.
            raise DependencyUnavailable("auth signing keys")
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("The access token's signing key is unknown.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired; refresh it.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"The access token is not valid: {exc}.") from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("The access token's roles are malformed.")
        principal = Principal(
            user_id=str(claims["sub"]), roles=tuple(roles), token_id=str(claims["jti"])
        )
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[token] = (float(claims["exp"]), principal)
        return principal
