"""Payload adapters, registered by name (the ``vendors.adapter`` column of the registry).

Each module holds one format; :func:`get_adapter` finds it by name. A new vendor format is one
new module ``ingest/adapters/<name>.py`` plus its name in
:data:`hazmon.registry.KNOWN_ADAPTERS` — the one list, which the registry import checks
vendors against (the spine cannot import this stage, so the list lives there and this table is
built from it).
"""

from __future__ import annotations

import importlib

from hazmon.errors import ConfigError
from hazmon.registry import KNOWN_ADAPTERS
from ingest.adapters.base import (
    Adapter,
    AlarmReport,
    Checked,
    Item,
    MessageContext,
    RawSample,
    Refusal,
    SampleSet,
    StatusReport,
)

__all__ = [
    "Adapter",
    "AlarmReport",
    "Item",
    "MessageContext",
    "RawSample",
    "Refusal",
    "SampleSet",
    "StatusReport",
    "adapter_names",
    "get_adapter",
    "register_adapter",
]

_BUILTIN = {name: f"ingest.adapters.{name}" for name in KNOWN_ADAPTERS}
_REGISTRY: dict[str, Adapter] = {}


def register_adapter(adapter: Adapter) -> Adapter:
    """Add (or replace) an adapter under ``adapter.name``; what it decodes passes the contracts'
    storage rules (:func:`~ingest.adapters.base.check_items`) before the bridge sees it."""
    checked = adapter if isinstance(adapter, Checked) else Checked(adapter)
    _REGISTRY[adapter.name] = checked
    return checked


def get_adapter(name: str) -> Adapter:
    adapter = _REGISTRY.get(name)
    if adapter is None and name in _BUILTIN:
        module = importlib.import_module(_BUILTIN[name])
        adapter = register_adapter(module.ADAPTER)
    if adapter is None:
        raise ConfigError(f"unknown payload adapter {name!r} (known: {', '.join(adapter_names())})")
    return adapter


def adapter_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))
