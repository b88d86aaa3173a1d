"""Signed login tokens (HS256 JWT with an expiry)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from jobyard.store.accounts import User

ISSUER = "jobyard"
ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is missing, malformed, badly signed or expired."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: decoded from the token, never from the request body."""

    user_id: str
    org: str
    name: str
    email: str
    is_admin: bool


class Tokens:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds

    def issue(self, user: User, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "sub": user.id,
            "org": user.org,
            "name": user.name,
            "email": user.email,
            "adm": user.is_admin,
            "iat": issued,
            "exp": issued + self._ttl,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise TokenError("token expired; log in again") from e
        except jwt.PyJWTError as e:
            raise TokenError("invalid token") from e
        return Principal(
            user_id=claims["sub"],
            org=claims["org"],
            name=claims.get("name", ""),
            email=claims.get("email", ""),
            is_admin=bool(claims.get("adm")),
        )
