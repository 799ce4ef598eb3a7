"""``hazmon kpi snapshot [--date YYYY-MM-DD] [--to YYYY-MM-DD]`` — take the daily KPI snapshot
(alerting/kpi_snapshot.py) of a day, or of each day of a range, to backfill; default yesterday
(China time). A day taken already is left as it is; a day not ended is refused."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from alerting.errors import InvalidAction
from alerting.kpi.periods import CST
from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.settings import Settings

__all__ = ["register_kpi"]


def register_kpi(sub: Any) -> None:
    k = sub.add_parser("kpi", help="KPI snapshots (考核指标的每日快照)")
    ksub = k.add_subparsers(dest="kpi_command", metavar="ACTION")
    ksub.required = True
    s = ksub.add_parser("snapshot", help="take the daily snapshot of a day (default: yesterday, China time)")
    s.add_argument("--date", dest="day", help="the day YYYY-MM-DD (China time)")
    s.add_argument("--to", dest="last", help="backfill every day from --date to this one (inclusive)")
    s.set_defaults(handler=_snapshot)


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidAction(f"{flag} {text!r}：日期须写成 YYYY-MM-DD") from None


def _snapshot(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.kpi_snapshot import take

    now = datetime.now(UTC)
    first = _day(args.day, "--date") if args.day else now.astimezone(CST).date() - timedelta(days=1)
    last = _day(args.last, "--to") if args.last else first
    if last < first:
        raise InvalidAction("--to 须不早于 --date")
    if (last - first).days > 3660:
        raise InvalidAction("一次最多补建十年的快照")

    async def go() -> int:
        try:
            conn = await asyncpg.connect(settings.postgres.dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None
        try:
            day = first
            while day <= last:
                snap = await take(conn, day, now=now)
                print(f"{day:%Y-%m-%d} 快照：场所 {snap.sites} 个，设备 {snap.devices} 台" if snap.taken
                      else f"{day:%Y-%m-%d} 已有快照，未改动")
                day += timedelta(days=1)
        finally:
            await conn.close()
        return 0

    return run_async(go())
