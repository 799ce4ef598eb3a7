"""Ingest fixtures; the helpers live in ingest_helpers.py (importable from the tests)."""

from ingest_helpers import ingest_env

__all__ = ["ingest_env"]
