"""``hazmon replay --from --to --detectors FILE [--routes FILE] [--model M] [--vendor V] [--json]``:
the what-if replay (阈值与路由模拟回放, alerting/replay.py) of a stored period, its report as Chinese
tables or JSON. Reads only; the live configuration is the settings' ``detectors_file`` and
``routes_file``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.settings import Settings

__all__ = ["register", "parse_when"]


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="what-if replay of a stored period through changed thresholds/routes")
    p.add_argument(
        "--from", dest="start", required=True, help="start: YYYY-MM-DD or an ISO time (China time)"
    )
    p.add_argument("--to", dest="end", required=True, help="end, exclusive: YYYY-MM-DD or an ISO time")
    p.add_argument("--detectors", type=Path, required=True, help="the proposed detectors.yaml")
    p.add_argument(
        "--routes", type=Path, default=None, help="the proposed routes.yaml (default: the live one)"
    )
    p.add_argument("--model", default="", help="replay only the devices of this model")
    p.add_argument("--vendor", default="", help="replay only the devices of this vendor (id or name)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_replay)


def parse_when(text: str, what: str) -> datetime:
    """A date or an ISO time; without an offset it is China time (as ``hazmon report``)."""
    from alerting.replay_text import CST

    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    return (at if at.tzinfo else at.replace(tzinfo=CST)).astimezone(UTC)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg

    from alerting.replay import Proposal, replay
    from alerting.replay_data import ReplayScope

    start, end = parse_when(args.start, "--from"), parse_when(args.end, "--to")
    proposal = Proposal.from_files(settings.detectors_file, settings.routes_file, args.detectors, args.routes)

    async def go() -> int:
        try:
            conn = await asyncpg.connect(settings.postgres.dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None
        try:
            result = await replay(
                conn,
                proposal,
                start=start,
                end=end,
                now=datetime.now(UTC),
                scope=ReplayScope(model=args.model, vendor=args.vendor),
                limits=settings.replay,
            )
        finally:
            await conn.close()
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2) if args.json else result.text())
        return 0

    return run_async(go())
