"""Operator console (中文操作台): HTTP API, live alarm board and roles with data scoping."""

from __future__ import annotations

from console.app import create_app
from console.users import create_demo_accounts

__all__ = ["create_app", "create_demo_accounts"]
