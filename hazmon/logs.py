"""Logging set-up: stdlib logging, one logger per module, key=value fields in messages."""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "kv"]


def kv(**fields: object) -> str:
    """Render structured fields as ``key=value`` pairs for a log line."""
    return " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in fields.items())


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
