"""Fixtures of the registry tests (helpers live in registry_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import write_tiny


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A fresh copy of the tiny valid district (CSV directory)."""
    return write_tiny(tmp_path / "district")
