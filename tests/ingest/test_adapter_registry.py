"""One list of shipped adapters: the spine's :data:`hazmon.registry.KNOWN_ADAPTERS` (the
registry import warns about any other name), which ingest's adapter registry is built from.
These fail when an adapter module is added or renamed without the list following."""

from __future__ import annotations

from pathlib import Path

import pytest

import ingest.adapters
from hazmon.registry import KNOWN_ADAPTERS
from ingest.adapters import adapter_names, get_adapter

#: modules of ingest/adapters/ that hold no vendor format
_NOT_FORMATS = {"__init__", "base", "common"}


def test_every_adapter_module_is_a_known_adapter() -> None:
    here = Path(ingest.adapters.__file__).parent
    # a format is a module or a package (ingest/adapters/gbt26875/)
    modules = {p.stem for p in here.glob("*.py")} | {p.parent.name for p in here.glob("*/__init__.py")}
    modules -= _NOT_FORMATS
    assert modules == set(KNOWN_ADAPTERS)


def test_ingest_finds_every_known_adapter() -> None:
    assert set(KNOWN_ADAPTERS) <= set(adapter_names())


@pytest.mark.parametrize("name", sorted(KNOWN_ADAPTERS))
def test_known_adapter_loads_under_its_name(name: str) -> None:
    assert get_adapter(name).name == name
