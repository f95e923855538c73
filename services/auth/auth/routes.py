"""The auth API: thin routes over `AuthService`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from auth.schemas import LoginIn, MeRead, RefreshIn, RegisterIn, TokenPairRead, UserRead
from auth.service import AuthService, TokenPair
from kit.deps import CurrentUser, from_state
from kit.openapi import problems


async def _client_address(request: Request) -> str:
    # Behind the gateway this is X-Forwarded-For, believed only from the proxies in
    # `forwarded_allow_ips` (uvicorn's proxy headers), so callers cannot pick their own.
    return request.client.host if request.client else "unknown"


Service = Annotated[AuthService, Depends(from_state("auth"))]
ClientAddress = Annotated[str, Depends(_client_address)]

router = APIRouter(prefix="/auth", tags=["auth"])
internal = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


def _pair(pair: TokenPair) -> TokenPairRead:
    return TokenPairRead(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, responses=problems(409, 422, 429))
async def register(body: RegisterIn, address: ClientAddress, auth: Service) -> UserRead:
    user_id, email = await auth.register(
        email=body.email, password=body.password, client_address=address
    )
    return UserRead(id=user_id, email=email)


@router.post("/login", responses=problems(401, 422, 429))
async def login(body: LoginIn, address: ClientAddress, auth: Service) -> TokenPairRead:
    return _pair(await auth.login(email=body.email, password=body.password, client_address=address))


@router.post("/refresh", responses=problems(401, 422))
async def refresh(body: RefreshIn, auth: Service) -> TokenPairRead:
    return _pair(await auth.refresh(refresh_token=body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 422))
async def logout(body: RefreshIn, user: CurrentUser, auth: Service) -> Response:
    await auth.logout(user_id=user.user_id, refresh_token=body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses=problems(401))
async def me(user: CurrentUser, auth: Service) -> MeRead:
    found = await auth.profile(user_id=user.user_id)
    return MeRead(id=found.id, email=found.email, roles=found.roles)


@router.get("/.well-known/jwks.json")
async def jwks(auth: Service, response: Response) -> dict[str, Any]:
    # Verifiers cache keys themselves and refetch on an unknown kid.
    response.headers["Cache-Control"] = "public, max-age=60"
    return await auth.jwks()


@internal.post("/keys/rotate")
async def rotate_key(auth: Service) -> dict[str, str]:
    return {"kid": await auth.rotate_signing_key()}
