"""A Lepton workspace's connection details, parsed once from the decrypted workspace.

The token lives only in ``LeptonConfig.token`` (kept out of ``repr``) and in the
``Authorization`` header; no message built here or elsewhere in the backend includes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobyard.backends.errors import SubmitRejected

GATEWAY = "https://gateway.dgxc-lepton.nvidia.com/api/v2/workspaces/{workspace}"
DEFAULT_IMAGE = "jobyard:latest"
# Where the container sees the job's results: a shared volume (``mounts``) so a resumed
# run finds the checkpoints of the run before it.
DEFAULT_RESULTS_ROOT = "/jobyard"
DEFAULT_TTL_SECONDS = 7 * 24 * 3600  # long enough for reconcile to drain the last log bytes


@dataclass(frozen=True)
class LeptonConfig:
    workspace_id: str
    token: str = field(repr=False)
    api_url: str
    image: str = DEFAULT_IMAGE
    results_root: str = DEFAULT_RESULTS_ROOT
    node_group: str | None = None
    mounts: tuple[Mapping[str, Any], ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    ttl_seconds_after_finished: int = DEFAULT_TTL_SECONDS
    storage: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_workspace(cls, details: Mapping[str, Any]) -> LeptonConfig:
        """From a ``lepton`` workspace's details; the optional ``lepton_*`` keys beyond
        the three TAO defines are read when present (the workspace schema may add them)."""
        workspace_id = _text(details, "lepton_workspace_id")
        token = _text(details, "lepton_auth_token")
        api_url = str(details.get("lepton_api_url") or GATEWAY.format(workspace=workspace_id))
        node_group = details.get("lepton_node_group")
        return cls(
            workspace_id=workspace_id,
            token=token,
            api_url=api_url.rstrip("/"),
            image=str(details.get("lepton_image") or DEFAULT_IMAGE),
            results_root=str(details.get("lepton_results_root") or DEFAULT_RESULTS_ROOT),
            node_group=str(node_group) if node_group else None,
            mounts=tuple(_mappings(details.get("lepton_mounts"))),
            image_pull_secrets=tuple(
                str(s) for s in details.get("lepton_image_pull_secrets") or ()
            ),
            storage=dict(details.get("storage_backend") or {}),
        )


def _text(details: Mapping[str, Any], key: str) -> str:
    value = details.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SubmitRejected(f"the lepton workspace has no {key}")
    return value.strip()


def _mappings(value: Any) -> Sequence[Mapping[str, Any]]:
    if not value:
        return []
    if not isinstance(value, list) or not all(isinstance(m, Mapping) for m in value):
        raise SubmitRejected("lepton_mounts must be a list of Lepton mount objects")
    return [dict(m) for m in value]
