"""Encryption of credentials at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Secrets are encrypted before they reach MongoDB and decrypted only where a
backend needs them; no response, log line or error message carries them.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from jobyard.store.errors import StoreError


class CipherError(StoreError):
    """A stored secret cannot be decrypted (wrong or rotated key)."""


class Cipher:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)
        self.key_text = key.decode() if isinstance(key, bytes) else key

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken as e:
            raise CipherError("stored credentials cannot be decrypted with this key") from e
        value = json.loads(plain)
        assert isinstance(value, dict)
        return value


def valid_key(key: str) -> bool:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True
