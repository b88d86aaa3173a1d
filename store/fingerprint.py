"""Fingerprints that make "an identical job/workspace already exists" atomic.

The fingerprint is stored under a unique (org, fingerprint) index, so two
identical requests at the same instant create one document; no
read-then-write check can race. It is an HMAC (keyed with the deployment's
encryption key) so that a workspace's fingerprint reveals nothing about its
credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any


def fingerprint(kind: str, fields: Mapping[str, Any], key: str) -> str:
    canonical = json.dumps(
        {"kind": kind, **fields}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hmac.new(key.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def forced() -> str:
    """A fingerprint no other document shares: ``force_create`` was asked for."""
    return "forced-" + uuid.uuid4().hex
