"""Where the CLI finds its server, key and org: flags, then ``JOBYARD_URL`` /
``NGC_API_KEY`` / ``NGC_ORG_NAME`` (seed 000's names), then the file ``jobyard login``
wrote (``$JOBYARD_CLIENT_CONFIG``, else ``~/.config/jobyard/client.json``, mode 0600:
it holds the key)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FIELDS = {"url": "JOBYARD_URL", "key": "NGC_API_KEY", "org": "NGC_ORG_NAME"}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    url: str
    key: str
    org: str


def path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("JOBYARD_CLIENT_CONFIG"):
        return Path(env["JOBYARD_CLIENT_CONFIG"])
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "jobyard" / "client.json"


def resolve(flags: Mapping[str, str | None], env: Mapping[str, str] | None = None) -> Target:
    env = os.environ if env is None else env
    stored: dict[str, str] = {}
    file = path(env)
    if file.is_file():
        try:
            stored = json.loads(file.read_text())
        except ValueError as e:
            raise ConfigError(f"{file} is not JSON: {e}; run `jobyard login` again") from e
    found = {k: flags.get(k) or env.get(var) or stored.get(k) for k, var in FIELDS.items()}
    missing = [f"--{k} (or {FIELDS[k]})" for k, v in found.items() if not v]
    if missing:
        raise ConfigError("no " + ", ".join(missing) + "; or run `jobyard login` first")
    return Target(str(found["url"]), str(found["key"]), str(found["org"]))


def save(target: Target, env: Mapping[str, str] | None = None) -> Path:
    """Write the file readable by its owner only, created so from the start."""
    file = path(env)
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"url": target.url, "key": target.key, "org": target.org}, out)
    os.chmod(file, 0o600)  # an existing file keeps its mode through O_CREAT
    return file
