"""Core subcommands: ``hazmon db migrate``."""

from __future__ import annotations

import argparse
from typing import Any

from aiokafka.errors import KafkaConnectionError

from hazmon.cli import run_async
from hazmon.db import migrate
from hazmon.errors import StackError
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    mig = dbsub.add_parser("migrate", help="apply pending schema migrations (safe to run twice)")
    mig.set_defaults(handler=_migrate)

    topics = sub.add_parser("topics", help="Kafka topics")
    tsub = topics.add_subparsers(dest="topics_command", metavar="ACTION")
    tsub.required = True
    create = tsub.add_parser("create", help="create the hazmon topics (idempotent)")
    create.set_defaults(handler=_create_topics)


def _create_topics(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.stack.kafka import create_topics_async

    async def go() -> int:
        topics = settings.kafka.topics
        try:
            created = await create_topics_async(settings.kafka.bootstrap, topics, settings.kafka.partitions)
        except KafkaConnectionError:
            raise StackError(f"cannot reach Kafka at {settings.kafka.bootstrap} (HAZMON_KAFKA__BOOTSTRAP)") from None
        for name in topics.all():
            print(f"{name}: {'created' if name in created else 'exists'}")
        return 0

    return run_async(go())


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> int:
        report = await migrate(settings.postgres.dsn, timescale=settings.postgres.timescaledb,
                               directory=settings.postgres.migrations_dir)
        print(f"applied: {', '.join(report.applied) or 'none'}; already: {', '.join(report.already) or 'none'}")
        print(f"timescaledb: {'on' if report.timescale else 'off'} ({report.timescale_reason})")
        return 0

    return run_async(go())
