"""Signed login tokens (HS256 JWT with an expiry)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from jobyard.store.accounts import User

ISSUER = "jobyard"
ALGORITHM = "HS256"
CACHE_SIZE = 4096  # verified tokens kept per API process


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
    """Issues and verifies tokens. A verified token is remembered until it expires: the
    same string carries the same signed claims, and checking the signature again on every
    request of a session costs more than the rest of a small request's own work."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

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

    def verify(self, token: str, now: float | None = None) -> Principal:
        moment = time.time() if now is None else now
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None:
                if hit[1] <= moment:
                    del self._verified[token]
                    raise TokenError("token expired; log in again")
                self._verified.move_to_end(token)
                return hit[0]
        principal, expires = self._decode(token)
        with self._lock:
            self._verified[token] = (principal, expires)
            while len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
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
        principal = Principal(
            user_id=claims["sub"],
            org=claims["org"],
            name=claims.get("name", ""),
            email=claims.get("email", ""),
            is_admin=bool(claims.get("adm")),
        )
        return principal, float(claims["exp"])
