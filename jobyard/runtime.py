"""Fill in what an embedded deployment may leave unset.

With no ``JOBYARD_JWT_SECRET`` / ``JOBYARD_ENCRYPTION_KEY`` the keys are
generated once into ``<data dir>/secrets.json`` (mode 0600) so every process
sharing the data dir (api, worker, admin commands) agrees on them and a
restart keeps every token and credential readable.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from jobyard.schemas.settings import Settings, SettingsError
from jobyard.store.crypto import Cipher, valid_key

SECRETS_FILE = "secrets.json"
SERVICES_FILE = "services.json"


def _load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / SECRETS_FILE
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {"jwt_secret": secrets.token_urlsafe(48), "encryption_key": Cipher.generate_key()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    return values


def with_secrets(settings: Settings) -> Settings:
    if settings.jwt_secret and settings.encryption_key:
        resolved = settings
    else:
        stored = _load_or_create_secrets(settings.data_dir)
        resolved = settings.replace(
            jwt_secret=settings.jwt_secret or stored["jwt_secret"],
            encryption_key=settings.encryption_key or stored["encryption_key"],
        )
    if not valid_key(resolved.encryption_key or ""):
        raise SettingsError(
            "JOBYARD_ENCRYPTION_KEY", "must be a Fernet key (32 url-safe base64 bytes)"
        )
    return resolved


def read_services(data_dir: Path) -> dict[str, str] | None:
    """Where a running ``jobyard up`` on this data dir serves, if one does."""
    path = data_dir / SERVICES_FILE
    if not path.exists():
        return None
    info: dict[str, str] = json.loads(path.read_text())
    try:
        os.kill(int(info["pid"]), 0)
    except (ProcessLookupError, ValueError, KeyError):
        return None
    return info


def write_services(data_dir: Path, info: dict[str, str]) -> None:
    path = data_dir / SERVICES_FILE
    path.write_text(json.dumps({**info, "pid": str(os.getpid())}, indent=2))


def clear_services(data_dir: Path) -> None:
    (data_dir / SERVICES_FILE).unlink(missing_ok=True)


def metrics_dir(settings: Settings, name: str) -> None:
    """Prometheus' multiprocess mode for a forking server (``workers.telemetry``): a fresh
    directory for its children's samples, named before ``prometheus_client`` is imported
    (it reads the variable once, at import)."""
    import shutil

    directory = settings.data_dir / "metrics" / f"{name}-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
