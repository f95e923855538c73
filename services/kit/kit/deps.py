"""Dependencies routes declare with `Annotated[...]`; each is defined once, here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from kit.errors import ShopError
from kit.tokens import Principal, TokenVerifier, Unauthorized


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency giving `app.state.<name>`, the service object a route works with.
    Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
    hop per request for one attribute read."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = f"state_{name}"
    return dependency


class Forbidden(ShopError):
    status = 403
    type = "forbidden"
    title = "Forbidden"


async def current_user(request: Request) -> Principal:
    verifier: TokenVerifier | None = request.app.state.verifier
    if verifier is None:
        raise RuntimeError("this service was created without token verification")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send an access token: `Authorization: Bearer <token>`.")
    return await verifier.verify(token.strip())


async def current_admin(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.has_role("admin"):
        raise Forbidden("This needs the admin role.")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
CurrentAdmin = Annotated[Principal, Depends(current_admin)]
