"""Core subcommands: ``hazmon db migrate``."""

from __future__ import annotations

import argparse
from typing import Any

from hazmon.cli import run_async
from hazmon.db import migrate
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    mig = dbsub.add_parser("migrate", help="apply pending schema migrations (safe to run twice)")
    mig.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> int:
        report = await migrate(settings.postgres.dsn, timescale=settings.postgres.timescaledb)
        print(f"applied: {', '.join(report.applied) or 'none'}; already: {', '.join(report.already) or 'none'}")
        print(f"timescaledb: {'on' if report.timescale else 'off'} ({report.timescale_reason})")
        return 0

    return run_async(go())
