"""Issue 5's promises on the real stack, through the gateway: accounts, tokens every
service verifies alone, refresh-token rotation with reuse detection, login limits."""

import asyncio
import base64
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from auth.config import AuthSettings
from shopctl.local import LocalStack
from shopctl.topology import database_url

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


def new_user(gw: httpx.Client) -> str:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = gw.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return email


def login(gw: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = gw.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stack_limit(field: str) -> int:
    """A limit as the stack's auth instances run it: their environment sets none."""
    value: int = AuthSettings.model_fields[field].default
    return value


def assert_too_many(response: httpx.Response, *, window_seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/too-many-attempts")
    assert 0 < int(response.headers["retry-after"]) <= window_seconds


def test_register_login_me_refresh_reuse_and_logout(gw: httpx.Client) -> None:
    email = f"Flow-{uuid.uuid4().hex[:8]}@Example.COM"
    created = gw.post("/auth/register", json={"email": f"  {email} ", "password": PASSWORD})
    assert created.status_code == 201
    assert created.json()["email"] == email.lower()
    again = gw.post("/auth/register", json={"email": email.upper(), "password": PASSWORD})
    assert again.status_code == 409

    tokens = login(gw, email)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    me = gw.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json() == {"id": created.json()["id"], "email": email.lower(), "roles": ["customer"]}

    rotated = gw.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    fresh = rotated.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert gw.get("/auth/me", headers=bearer(fresh["access_token"])).status_code == 200

    # The old refresh token is dead, and presenting it kills the family: the newest too.
    reuse = gw.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["type"].endswith("/invalid-refresh-token")
    assert (
        gw.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 401
    )

    session = login(gw, email)
    out = gw.post(
        "/auth/logout",
        json={"refresh_token": session["refresh_token"]},
        headers=bearer(session["access_token"]),
    )
    assert out.status_code == 204
    after = gw.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert after.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "short@example.com", "password": "elevenchars"}, "password"),
        ({"email": "big@example.com", "password": "x" * 257}, "password"),
        ({"password": PASSWORD}, "email"),
    ],
)
def test_bad_registrations_are_422_and_create_nothing(
    gw: httpx.Client, stack: LocalStack, body: dict[str, str], field: str
) -> None:
    response = gw.post("/auth/register", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]
    if "email" in body:
        with psycopg.connect(_dsn(stack)) as conn:
            count = conn.execute("SELECT count(*) FROM users WHERE email = %s", (body["email"],))
            assert count.fetchone() == (0,)


def test_the_admin_account_exists_with_its_role(stack: LocalStack, gw: httpx.Client) -> None:
    tokens = login(gw, stack.settings["ADMIN_EMAIL"], stack.settings["ADMIN_PASSWORD"])
    me = gw.get("/auth/me", headers=bearer(tokens["access_token"])).json()
    assert me["roles"] == ["customer", "admin"]
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["roles"] == [
        "customer",
        "admin",
    ]


def test_wrong_email_and_wrong_password_get_the_same_answer(gw: httpx.Client) -> None:
    email = new_user(gw)
    wrong_password = gw.post("/auth/login", json={"email": email, "password": "wrong" * 4})
    unknown_email = gw.post(
        "/auth/login",
        json={"email": f"nobody-{uuid.uuid4().hex}@example.com", "password": PASSWORD},
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    strip = ("instance",)
    assert {k: v for k, v in wrong_password.json().items() if k not in strip} == {
        k: v for k, v in unknown_email.json().items() if k not in strip
    }


def _dsn(stack: LocalStack) -> str:
    return database_url("auth", stack.topology.postgres_addresses())


def _current_key(stack: LocalStack) -> tuple[str, str]:
    with psycopg.connect(_dsn(stack)) as conn:
        row = conn.execute(
            "SELECT kid, private_key_pem FROM signing_keys WHERE retired_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _forgeries(stack: LocalStack, gw: httpx.Client) -> dict[str, str]:
    email = new_user(gw)
    tokens = login(gw, email)
    good = tokens["access_token"]
    kid, private_pem = _current_key(stack)
    claims = jwt.decode(good, options={"verify_signature": False})
    public_jwk = gw.get("/auth/.well-known/jwks.json").json()["keys"][0]

    def signed(changes: dict[str, Any], drop: str | None = None, header_kid: str = kid) -> str:
        body = {**claims, **changes}
        if drop:
            body.pop(drop)
        return jwt.encode(
            body, private_pem, algorithm="EdDSA", headers={"kid": header_kid, "typ": "at+jwt"}
        )

    header, payload, signature = good.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["roles"] = ["customer", "admin"]
    now = int(time.time())
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{_b64(claims)}.",
        "HS256 with the public key": _hs256_with_public_key(claims, kid, public_jwk),
        "expired": signed({"exp": now - 60, "iat": now - 960}),
        "wrong aud": signed({"aud": "someone-else"}),
        "wrong iss": signed({"iss": "https://evil.example/auth"}),
        "missing exp": signed({}, drop="exp"),
        "unknown kid": signed({}, header_kid="no-such-key"),
        "tampered payload": f"{header}.{_b64(tampered)}.{signature}",
        "refresh token as access token": tokens["refresh_token"],
    }


def _hs256_with_public_key(claims: dict[str, Any], kid: str, jwk: dict[str, Any]) -> str:
    # The classic confusion attack: a verifier that lets the token pick its algorithm
    # would check this HMAC with the (public) key bytes and accept it.
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "at+jwt", "kid": kid})
    body = _b64(claims)
    secret = base64.urlsafe_b64decode(jwk["x"] + "==")
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_forged_tokens_are_refused_by_another_service(stack: LocalStack, gw: httpx.Client) -> None:
    forgeries = _forgeries(stack, gw)
    email = new_user(gw)
    assert gw.get("/orders", headers=bearer(login(gw, email)["access_token"])).status_code == 200
    answers = {name: gw.get("/orders", headers=bearer(token)) for name, token in forgeries.items()}
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(forgeries, 401)
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in answers.values())


def test_another_service_verifies_tokens_while_auth_is_down(
    stack: LocalStack, gw: httpx.Client
) -> None:
    token = login(gw, new_user(gw))["access_token"]
    assert gw.get("/orders", headers=bearer(token)).status_code == 200
    auth_instances = [i.id for i in stack.topology.instances("auth")]
    for name in auth_instances:
        stack.supervisor.stop(name)
    try:
        assert (
            gw.post("/auth/login", json={"email": "x@example.com", "password": "y"}).status_code
            >= 500
        )
        for _ in range(5):
            assert gw.get("/orders", headers=bearer(token)).status_code == 200
    finally:
        for name in auth_instances:
            stack.supervisor.start(name)
        stack.wait_ready()


def test_rotated_keys_keep_old_tokens_valid(stack: LocalStack, gw: httpx.Client) -> None:
    email = new_user(gw)
    before = login(gw, email)["access_token"]
    auth_1 = stack.topology.instances("auth")[0]
    new_kid = httpx.post(f"http://{auth_1.address}/internal/keys/rotate").json()["kid"]
    published = {k["kid"] for k in gw.get("/auth/.well-known/jwks.json").json()["keys"]}
    assert {new_kid, jwt.get_unverified_header(before)["kid"]} <= published
    after = login(gw, email)["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    # orders learns the new kid on first sight; the retired key still verifies.
    assert gw.get("/orders", headers=bearer(after)).status_code == 200
    assert gw.get("/orders", headers=bearer(before)).status_code == 200
    # The rotation endpoint is internal: never reachable through the gateway.
    assert gw.post("/auth/internal/keys/rotate").status_code == 404
    assert gw.post("/internal/keys/rotate").status_code == 404


def test_repeated_failed_logins_for_one_account_get_429(gw: httpx.Client) -> None:
    email = new_user(gw)
    codes = [
        gw.post("/auth/login", json={"email": email, "password": f"wrong-{n}-password"}).status_code
        for n in range(5)
    ]
    assert codes == [401] * 5
    blocked = gw.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 900
    # Another account from the same address is not blocked by this one's failures.
    assert (
        gw.post("/auth/login", json={"email": new_user(gw), "password": PASSWORD}).status_code
        == 200
    )


def test_one_address_spraying_accounts_gets_429(stack: LocalStack, gw: httpx.Client) -> None:
    from tests.integration.faults import redis_cluster_client  # faults imports this module

    store = redis_cluster_client(stack)
    try:
        codes = [
            gw.post(
                "/auth/login", json={"email": f"spray-{n}@example.com", "password": "guess"}
            ).status_code
            for n in range(40)
        ]
        assert 429 in codes
        assert codes.index(429) <= 30
    finally:
        # Leave the address's budget to the tests that follow.
        for key in store.scan_iter("auth:login:address:*"):
            store.delete(key)
        store.close()


def test_a_burst_of_wrong_passwords_checks_no_more_than_the_limit(gw: httpx.Client) -> None:
    email = new_user(gw)
    limit = stack_limit("login_failures_per_account")
    window = stack_limit("login_failure_window_seconds")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(gw.base_url), timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/auth/login", json={"email": email, "password": f"wrong-{n}-password"}
                    )
                    for n in range(4 * limit)
                )
            )

    answers = asyncio.run(burst())
    codes = Counter(r.status_code for r in answers)
    # Each 401 is one password verified: concurrency must not buy guesses past the limit.
    assert set(codes) == {401, 429} and codes[401] <= limit, codes
    for refused in (r for r in answers if r.status_code == 429):
        assert_too_many(refused, window_seconds=window)
    # The account stays locked for the window, even for its own password.
    assert_too_many(
        gw.post("/auth/login", json={"email": email, "password": PASSWORD}), window_seconds=window
    )


def test_one_address_signing_up_past_the_limit_gets_429_and_no_account(
    stack: LocalStack, gw: httpx.Client
) -> None:
    limit = stack_limit("signup_attempts_per_address")
    window = stack_limit("signup_address_window_seconds")
    existing = new_user(gw)  # the first sign-up of the address's budget
    emails = [f"signup-{uuid.uuid4().hex[:10]}@example.com" for _ in range(limit + 2)]
    answers = [gw.post("/auth/register", json={"email": e, "password": PASSWORD}) for e in emails]
    assert [r.status_code for r in answers] == [201] * (limit - 1) + [429] * 3
    for refused in answers[limit - 1 :]:
        assert_too_many(refused, window_seconds=window)
    with psycopg.connect(_dsn(stack)) as conn:
        rows = conn.execute("SELECT email FROM users WHERE email = ANY(%s)", (emails,)).fetchall()
    assert {email for (email,) in rows} == set(emails[: limit - 1])
    # Signing up and logging in are separate budgets: the address can still log in.
    assert login(gw, existing)["access_token"]
