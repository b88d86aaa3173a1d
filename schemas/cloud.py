"""Cloud types a workspace can point at, as data, and the pure validation of
their ``cloud_specific_details`` (seed 000, "Workspaces").

``split_details`` separates what may be shown (region, bucket, hostnames)
from credentials, which the store encrypts and responses mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MASK = "********"
MAX_VALUE_LENGTH = 4096
MAX_KEY_LENGTH = 16384  # SSH private keys and known_hosts files are long


@dataclass(frozen=True)
class CloudType:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    secrets: frozenset[str] = field(default_factory=frozenset)
    string_lists: frozenset[str] = field(default_factory=frozenset)
    integers: frozenset[str] = field(default_factory=frozenset)
    nested_storage: frozenset[str] = field(default_factory=frozenset)
    object_lists: frozenset[str] = field(default_factory=frozenset)  # lists of JSON objects
    # other spellings seen in TAO's documents -> the canonical field name
    aliases: dict[str, str] = field(default_factory=dict)
    holds_results: bool = True

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


_S3_OPTIONAL = ("endpoint_url", "prefix")

CLOUD_TYPES: dict[str, CloudType] = {
    t.name: t
    for t in (
        CloudType(
            "aws",
            ("access_key", "secret_key", "region", "bucket_name"),
            _S3_OPTIONAL,
            secrets=frozenset({"access_key", "secret_key"}),
            aliases={"cloud_bucket_name": "bucket_name", "cloud_region": "region"},
        ),
        CloudType(
            "azure",
            ("account_name", "access_key", "region", "container_name"),
            ("prefix",),
            secrets=frozenset({"access_key"}),
        ),
        CloudType("huggingface", ("token",), secrets=frozenset({"token"}), holds_results=False),
        CloudType(
            "slurm",
            ("slurm_user", "slurm_hostname"),
            ("base_results_dir", "ssh_private_key", "known_hosts", "ssh_port", "slurm_python"),
            secrets=frozenset({"ssh_private_key"}),
            string_lists=frozenset({"slurm_hostname"}),
            integers=frozenset({"ssh_port"}),
        ),
        CloudType(
            "lepton",
            ("lepton_workspace_id", "lepton_auth_token", "storage_backend"),
            (
                "lepton_api_url",
                "lepton_image",
                "lepton_results_root",
                "lepton_node_group",
                "lepton_mounts",
                "lepton_image_pull_secrets",
            ),
            secrets=frozenset({"lepton_auth_token"}),
            nested_storage=frozenset({"storage_backend"}),
            string_lists=frozenset({"lepton_image_pull_secrets"}),
            object_lists=frozenset({"lepton_mounts"}),
        ),
        CloudType(
            "seaweedfs",
            ("access_key", "secret_key", "endpoint_url", "cloud_bucket_name"),
            ("region", "prefix"),
            secrets=frozenset({"access_key", "secret_key"}),
        ),
        CloudType("local", (), ("path",)),
    )
}

# In TAO's enum but without a documented set of details: refused, not guessed.
NOT_SUPPORTED = frozenset({"gcp", "self_hosted"})
LEPTON_STORAGE = ("aws", "azure", "seaweedfs")
# seed 000's Lepton example names the nested type ``storage_type``
NESTED_TYPE_KEYS = ("cloud_type", "storage_type")


def canonical(cloud_type: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """``details`` with alias spellings renamed; an alias never overrides the real name."""
    aliases = CLOUD_TYPES[cloud_type].aliases
    out: dict[str, Any] = {}
    for key, value in details.items():
        name = aliases.get(key, key)
        if name != key and name in details:
            out[key] = value  # both spellings given: leave the alias to be reported
        else:
            out[name] = value
    return out


def _nested_type(value: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    inner = dict(value)
    found = [inner.pop(k) for k in NESTED_TYPE_KEYS if k in inner]
    return (found[0] if len(found) == 1 else None), inner


def _check_value(ctype: CloudType, key: str, value: Any) -> str | None:
    if key in ctype.string_lists:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            return "must be a non-empty list of strings"
        if not all(isinstance(v, str) and v.strip() for v in value):
            return "must be a non-empty list of strings"
        return None
    if key in ctype.integers:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            return "must be an integer between 1 and 65535"
        return None
    if key in ctype.nested_storage:
        return None  # validated recursively by the caller
    if key in ctype.object_lists:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            return "must be a list of objects"
        return None
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    limit = MAX_KEY_LENGTH if key in {"ssh_private_key", "known_hosts"} else MAX_VALUE_LENGTH
    if len(value) > limit:
        return f"must be at most {limit} characters"
    return None


def validate_details(cloud_type: str, details: Mapping[str, Any]) -> dict[str, list[str]]:
    """Field errors for ``details`` of ``cloud_type``; empty when valid."""
    ctype = CLOUD_TYPES[cloud_type]
    details = canonical(cloud_type, details)
    errors: dict[str, list[str]] = {}
    for key in ctype.required:
        if key not in details or details[key] in (None, ""):
            errors[key] = [f"required for cloud_type {cloud_type}"]
    for key, value in details.items():
        if key not in ctype.fields:
            allowed = ", ".join(ctype.fields) or "none"
            errors[key] = [f"unknown field for cloud_type {cloud_type} (allowed: {allowed})"]
            continue
        if key in errors or value is None:
            continue
        problem = _check_value(ctype, key, value)
        if problem:
            errors[key] = [problem]
        elif key in ctype.nested_storage:
            errors.update(_nested_errors(key, value))
    return errors


def _nested_errors(key: str, value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {key: ["must be an object with a storage_type and its details"]}
    inner_type, inner = _nested_type(value)
    if inner_type not in LEPTON_STORAGE:
        return {f"{key}.storage_type": [f"must be one of {', '.join(LEPTON_STORAGE)}"]}
    return {f"{key}.{k}": v for k, v in validate_details(str(inner_type), inner).items()}


def normalise(cloud_type: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical form of valid details (a single hostname becomes a list)."""
    ctype = CLOUD_TYPES[cloud_type]
    out: dict[str, Any] = {}
    for key, value in canonical(cloud_type, details).items():
        if value is None:
            continue
        if key in ctype.string_lists and isinstance(value, str):
            value = [value]
        elif key in ctype.nested_storage:
            inner_type, inner = _nested_type(value)
            value = {"storage_type": inner_type, **normalise(inner_type, inner)}
        out[key] = value
    return out


def split_details(
    cloud_type: str, details: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public, secret) parts of normalised details; nesting is kept in both."""
    ctype = CLOUD_TYPES[cloud_type]
    public: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for key, value in details.items():
        if key in ctype.secrets:
            secret[key] = value
        elif key in ctype.nested_storage:
            inner_type, inner = _nested_type(value)
            pub, sec = split_details(inner_type, inner)
            public[key] = {"storage_type": inner_type, **pub}
            if sec:
                secret[key] = sec
        else:
            public[key] = value
    return public, secret


def merge_details(public: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of ``split_details``."""
    out = dict(public)
    for key, value in secret.items():
        if isinstance(value, Mapping):
            out[key] = merge_details(out.get(key, {}), value)
        else:
            out[key] = value
    return out


def mask(public: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, Any]:
    """What a response shows: every credential replaced by ``MASK``."""
    out = dict(public)
    for key, value in secret.items():
        if isinstance(value, Mapping):
            out[key] = mask(out.get(key, {}), value)
        else:
            out[key] = MASK
    return out


def patch_details(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` updated by ``patch``; a masked value sent back keeps the secret.

    Clients commonly GET a workspace, edit one field and send it back: the
    ``MASK`` placeholders must not overwrite the real credentials.
    """
    out = dict(current)
    for key, value in patch.items():
        if value == MASK:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = patch_details(out[key], value)
        else:
            out[key] = value
    return out
