"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, EmailStr, Field


class RegisterIn(BaseModel):
    email: EmailStr = Field(max_length=254)
    # A bound on length keeps hashing cost bounded; 12 characters at least (OWASP).
    password: str = Field(min_length=12, max_length=256)


class LoginIn(BaseModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class UserRead(BaseModel):
    id: uuid.UUID
    email: str


class MeRead(UserRead):
    roles: list[str]


class TokenPairRead(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
