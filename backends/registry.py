"""Backend names -> dotted paths, imported only when first used, so a missing
optional SDK is a clear message instead of an ImportError at start-up."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from backends.base import Backend
from backends.errors import UnknownBackend
from schemas.settings import Settings

# name -> ("module:factory", pip extra that provides its SDK, or "")
BACKENDS: dict[str, tuple[str, str]] = {
    "process": ("backends.process.backend:ProcessBackend.from_settings", ""),
}


def available() -> list[str]:
    return sorted(BACKENDS)


def load(name: str) -> Callable[..., Backend]:
    try:
        path, extra = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"no backend {name!r}; available: {', '.join(available())}") from None
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as e:
        hint = f"; install jobyard[{extra}]" if extra else ""
        raise UnknownBackend(f"backend {name!r} cannot be loaded ({e}){hint}") from e
    for part in attr.split("."):
        target = getattr(target, part)
    factory: Callable[..., Backend] = target
    return factory


def create(name: str, settings: Settings) -> Backend:
    return load(name)(settings)
