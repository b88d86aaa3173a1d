"""Orgs, users and API keys.

An API key is ``jyk_<key id>_<secret>``; only a SHA-256 of the secret is
stored (the secret is 192 random bits, so a slow hash adds nothing), and the
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.store.errors import NotFound
from jobyard.store.guard import guarded
from jobyard.store.timeutil import utcnow

KEY_PREFIX = "jyk"
_NO_KEY = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class User:
    id: str
    org: str
    name: str
    email: str
    is_admin: bool

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> User:
        return cls(doc["_id"], doc["org"], doc["name"], doc["email"], bool(doc["is_admin"]))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The key id of a well-formed key: what failed logins are counted against."""
    parts = split_key(key)
    return parts[0][:32] if parts else None


def split_key(key: str) -> tuple[str, str] | None:
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@guarded
class Accounts:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._orgs = db["orgs"]
        self._users = db["users"]
        self._keys = db["api_keys"]

    def ensure_org(self, org: str) -> None:
        try:
            self._orgs.insert_one({"_id": org, "created_on": utcnow()})
        except DuplicateKeyError:
            pass

    def org_exists(self, org: str) -> bool:
        return self._orgs.count_documents({"_id": org}, limit=1) > 0

    def ensure_user(self, org: str, name: str, email: str = "", is_admin: bool = False) -> User:
        """The user called ``name`` in ``org``, created (or promoted to admin) if needed."""
        self.ensure_org(org)
        doc = {
            "_id": str(uuid.uuid4()),
            "org": org,
            "name": name,
            "email": email,
            "is_admin": is_admin,
            "created_on": utcnow(),
        }
        try:
            self._users.insert_one(doc)
        except DuplicateKeyError:
            update: dict[str, Any] = {"$set": {"is_admin": True}} if is_admin else {}
            if update:
                self._users.update_one({"org": org, "name": name}, update)
            found = self._users.find_one({"org": org, "name": name})
            if found is None:  # deleted between the two calls
                raise NotFound("user", name) from None
            doc = found
        return User.from_doc(doc)

    def create_key(self, user: User) -> str:
        key_id = secrets.token_hex(8)
        secret = secrets.token_hex(24)
        self._keys.insert_one(
            {
                "_id": key_id,
                "org": user.org,
                "user_id": user.id,
                "digest": _digest(secret),
                "created_on": utcnow(),
            }
        )
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    def authenticate(self, key: str, org: str) -> User | None:
        """The user owning ``key`` in ``org``, or None for any mismatch."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        doc = self._keys.find_one({"_id": key_id, "org": org, "revoked": {"$ne": True}})
        # compared whether or not the key exists, so timing says nothing about which part
        # of a guess was right
        stored = doc["digest"] if doc is not None else _NO_KEY
        if not hmac.compare_digest(stored, _digest(secret)) or doc is None:
            return None
        user = self._users.find_one({"_id": doc["user_id"], "org": org})
        return User.from_doc(user) if user else None

    def revoke_key(self, key_id: str) -> bool:
        result = self._keys.update_one({"_id": key_id}, {"$set": {"revoked": True}})
        return result.modified_count == 1

    def get_user(self, org: str, user_id: str) -> User:
        doc = self._users.find_one({"_id": user_id, "org": org})
        if doc is None:
            raise NotFound("user", user_id)
        return User.from_doc(doc)
