import asyncio
import time
from typing import Any

import jwt
import pytest

from auth.keys import SigningKey, new_signing_key, sign_access_token
from kit import DependencyUnavailable
from kit.tokens import TokenVerifier, Unauthorized

pytestmark = pytest.mark.unit

ISSUER, AUDIENCE = "https://shopstack.dev/auth", "shopstack"


class KeyServer:
    """A fake of auth's JWKS endpoint: what it publishes, how often it was asked, and
    whether it is down."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False
        self.asked = asyncio.Event()

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        self.asked.set()
        if self.down:
            raise ConnectionError("auth is down")
        return {"keys": [k.public_jwk for k in self.keys]}


def token(key: SigningKey, **overrides: Any) -> str:
    return sign_access_token(
        key,
        user_id=overrides.pop("user_id", "u-1"),
        roles=["customer"],
        issuer=overrides.pop("issuer", ISSUER),
        audience=overrides.pop("audience", AUDIENCE),
        ttl_seconds=overrides.pop("ttl_seconds", 900),
    )


def verifier(server: KeyServer, **kwargs: float) -> TokenVerifier:
    return TokenVerifier(server, issuer=ISSUER, audience=AUDIENCE, **kwargs)  # type: ignore[arg-type]


async def test_a_valid_token_gives_the_principal() -> None:
    key = new_signing_key()
    principal = await verifier(KeyServer(key)).verify(token(key, user_id="u-42"))
    assert principal.user_id == "u-42" and principal.roles == ("customer",)


async def test_cached_keys_keep_working_while_auth_is_down() -> None:
    key = new_signing_key()
    server = KeyServer(key)
    check = verifier(server)
    await check.verify(token(key))
    server.down = True
    for _ in range(3):
        await check.verify(token(key))
    assert server.fetches == 1


async def test_a_rotation_is_learnt_but_made_up_kids_do_not_flood_auth() -> None:
    old, new = new_signing_key(), new_signing_key()
    server = KeyServer(old)
    check = verifier(server, min_refresh_seconds=0.1)
    await check.verify(token(old))
    await asyncio.sleep(0.15)
    server.keys.append(new)  # rotated after our first fetch: learnt on first sight
    await check.verify(token(new))
    assert server.fetches == 2
    await asyncio.sleep(0.15)
    stranger = new_signing_key()
    for _ in range(5):  # the same made-up kid again and again: one fetch
        with pytest.raises(Unauthorized, match="unknown"):
            await check.verify(token(stranger))
    assert server.fetches == 3
    for _ in range(20):  # many different kids at once: the interval holds
        with pytest.raises(Unauthorized, match="unknown"):
            await check.verify(token(new_signing_key()))
    assert server.fetches <= 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"audience": "other"}, "not valid"),
        ({"issuer": "https://evil.example"}, "not valid"),
        ({"ttl_seconds": -60}, "expired"),
    ],
)
async def test_wrong_claims_are_refused(overrides: dict[str, Any], message: str) -> None:
    key = new_signing_key()
    with pytest.raises(Unauthorized, match=message):
        await verifier(KeyServer(key)).verify(token(key, **overrides))


async def test_only_the_pinned_algorithm_and_token_type_pass() -> None:
    key = new_signing_key()
    check = verifier(KeyServer(key))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "iat": now, "exp": now + 60, "jti": "j"}
    hs256 = jwt.encode(
        claims,
        "secret-secret-secret-secret-secret",
        algorithm="HS256",
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    with pytest.raises(Unauthorized, match="EdDSA only"):
        await check.verify(hs256)
    id_token = jwt.encode(
        claims, key.private_key_pem, algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"}
    )
    with pytest.raises(Unauthorized, match="not an access token"):
        await check.verify(id_token)
    with pytest.raises(Unauthorized, match="malformed"):
        await check.verify("not-a-jwt")


async def test_before_any_key_is_known_the_answer_is_503_not_401() -> None:
    key = new_signing_key()
    server = KeyServer(key)
    server.down = True
    check = verifier(server, min_refresh_seconds=0.0)
    with pytest.raises(DependencyUnavailable):
        await check.verify(token(key))
    server.down = False  # auth is back: the same kid is learnt, not remembered as unknown
    assert (await check.verify(token(key))).user_id == "u-1"


async def fetched(server: KeyServer, *, times: int = 1, within: float = 2.0) -> None:
    """Waits until the verifier's background refresh has asked the server `times` more."""
    async with asyncio.timeout(within):
        for _ in range(times):
            server.asked.clear()
            await server.asked.wait()


async def test_keys_no_longer_published_stop_verifying_after_the_refresh_interval() -> None:
    withdrawn, kept = new_signing_key(), new_signing_key()
    server = KeyServer(withdrawn, kept)
    check = verifier(server, refresh_seconds=0.05, min_refresh_seconds=60.0)
    await check.start()
    try:
        await check.verify(token(withdrawn))
        server.keys.remove(withdrawn)
        await fetched(server)
        with pytest.raises(Unauthorized, match="unknown"):
            await check.verify(token(withdrawn))
        assert (await check.verify(token(kept))).user_id == "u-1"

        server.down = True  # refreshes fail from now on: the cached key set stays
        await fetched(server, times=2)
        assert (await check.verify(token(kept))).user_id == "u-1"
    finally:
        await check.stop()


async def test_a_key_set_with_one_malformed_entry_keeps_the_good_ones() -> None:
    key = new_signing_key()

    async def source() -> dict[str, Any]:
        broken = {**new_signing_key().public_jwk, "x": "!!"}
        return {"keys": [broken, "not-a-key", key.public_jwk]}

    check = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
    assert (await check.verify(token(key))).user_id == "u-1"


async def test_a_token_checked_once_is_not_checked_again_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_signing_key()
    check = verifier(KeyServer(key), leeway_seconds=0)
    checks = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal checks
        checks += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    short = token(key, user_id="u-7", ttl_seconds=1)
    for _ in range(5):
        assert (await check.verify(short)).user_id == "u-7"
    assert checks == 1
    # A token that differs by one character is checked, and refused.
    tampered = short[:-2] + ("A" if short[-2] != "A" else "B") + short[-1]
    with pytest.raises(Unauthorized):
        await check.verify(tampered)
    await asyncio.sleep(1.1)  # past its exp: remembered or not, it is refused
    with pytest.raises(Unauthorized, match="expired"):
        await check.verify(short)


async def test_a_remembered_token_of_a_withdrawn_key_is_refused() -> None:
    withdrawn, kept = new_signing_key(), new_signing_key()
    server = KeyServer(withdrawn, kept)
    check = verifier(server, refresh_seconds=0.05, min_refresh_seconds=60.0)
    await check.start()
    try:
        remembered = token(withdrawn)
        assert (await check.verify(remembered)).user_id == "u-1"
        server.keys.remove(withdrawn)
        await fetched(server)
        with pytest.raises(Unauthorized, match="unknown"):
            await check.verify(remembered)
    finally:
        await check.stop()
