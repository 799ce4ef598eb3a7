"""三色区域预警 and 事故 commands.

* ``hazmon warnings evaluate [--rules FILE] [--check]`` — check the rules (``--check``: only that)
  or run the pass now: count, decide, record, tell the units of new and raised warnings;
* ``hazmon warnings list [--all]`` — the warnings in force (``--all``: lifted ones too) with reasons;
* ``hazmon accident add --township T --domain D --level L --title TEXT --by WHO [--site S]
  [--deaths N] [--injuries N] [--at ISO]`` — enter a 生产安全事故 (alerting/accidents.py).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from alerting.errors import InvalidAction
from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    w = sub.add_parser("warnings", help="三色区域预警 by 片/线/点 (area warnings)")
    wsub = w.add_subparsers(dest="warnings_command", metavar="ACTION")
    wsub.required = True
    ev = wsub.add_parser("evaluate", help="run the area-warning pass now (or --check the rules)")
    ev.add_argument(
        "--rules", type=Path, default=None, help="area_warnings.yaml (default: data/area_warnings.yaml)"
    )
    ev.add_argument("--routes", type=Path, default=None, help="routes.yaml (default: settings routes_file)")
    ev.add_argument("--check", action="store_true", help="only validate the rules file")
    ev.set_defaults(handler=_evaluate)
    ls = wsub.add_parser("list", help="the area warnings in force, with their reasons")
    ls.add_argument("--all", action="store_true", help="lifted warnings too")
    ls.set_defaults(handler=_list)

    a = sub.add_parser("accident", help="生产安全事故 records (counted by the area warnings)")
    asub = a.add_subparsers(dest="accident_command", metavar="ACTION")
    asub.required = True
    add = asub.add_parser("add", help="enter an accident")
    add.add_argument("--township", required=True, help="township id (镇街)")
    add.add_argument("--domain", required=True, help="行业领域: the matrix's domain (gas, fire, elevator …)")
    add.add_argument(
        "--level",
        required=True,
        choices=["general", "larger", "major", "especially_major"],
        help="一般 / 较大 / 重大 / 特别重大",
    )
    add.add_argument("--title", required=True)
    add.add_argument("--site", default=None, help="site id, where it happened at a registered site")
    add.add_argument("--deaths", type=int, default=0)
    add.add_argument("--injuries", type=int, default=0)
    add.add_argument("--at", dest="occurred", default=None, help="when (ISO with offset; default now)")
    add.add_argument("--description", default="")
    add.add_argument("--by", dest="actor", required=True, help="who enters it")
    add.set_defaults(handler=_accident_add)


async def _connect(settings: Settings) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(settings.postgres.dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.area_warning import LEVEL_ZH, SCOPE_ZH, run_pass
    from alerting.area_warning_rules import DEFAULT_RULES_FILE, load_rules
    from alerting.compose import ComposeContext
    from alerting.config import load_config
    from hazmon.registry import load_registry

    rules = load_rules(args.rules or DEFAULT_RULES_FILE)  # RulesFileError: file: path: problem, exit 2
    if args.check:
        print(f"{args.rules or DEFAULT_RULES_FILE}: 规则有效（{len(rules.measures)} 项指标）")
        return 0
    config = load_config(args.routes or settings.routes_file)

    async def go() -> int:
        try:
            pool = await asyncpg.create_pool(settings.postgres.dsn, min_size=1, max_size=2)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None
        try:
            sms = settings.sms
            ctx = ComposeContext(
                await load_registry(pool),
                config,
                sms.sign_name,
                sms.ack_base_url,
                sms.provider,
                sms.duty_phone,
                settings.lift.emergency_phone,
            )
            res = await run_pass(pool, ctx, rules, datetime.now(UTC), actor="cli:warnings")
        finally:
            await pool.close()
        if not res.evaluated:
            print("另一进程正在研判区域预警，本次未执行")
            return 1
        for action, scope, name, level in res.changes:
            verb = {"new": "发布", "raise": "升为", "lower": "降为", "lift": "解除"}[action]
            print(f"{SCOPE_ZH[scope]} {name}：{verb}{LEVEL_ZH[level]}预警")
        print(
            f"新发布 {res.new}，升级 {res.raised}，降级 {res.lowered}，解除 {res.lifted}，维持 {res.kept}；"
            f"待发通知 {res.queued} 条"
        )
        return 0

    return run_async(go())


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.area_warning import LEVEL_ZH, SCOPE_ZH
    from alerting.store.area_warning import warnings_with_history

    async def go() -> int:
        conn = await _connect(settings)
        try:
            rows = await warnings_with_history(conn, active_only=not args.all)
        finally:
            await conn.close()
        if not rows:
            print("当前没有区域预警")
        for r in rows:
            state = "已解除" if r["lifted_at"] else "生效中"
            print(
                f"[{SCOPE_ZH[r['scope']]}] {r['name']} {LEVEL_ZH[r['level']]}预警（{state}）："
                + "；".join(r["reasons"])
            )
        return 0

    return run_async(go())


def _accident_add(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.accidents import ACCIDENT_LEVEL_ZH, NewAccident, add_accident

    now = datetime.now(UTC)
    try:
        at = datetime.fromisoformat(args.occurred) if args.occurred else now
    except ValueError:
        raise InvalidAction(
            f"--at {args.occurred!r}：时间须写成 ISO 格式，例如 2026-12-01T09:30+08:00"
        ) from None
    if at.tzinfo is None:
        raise InvalidAction("--at 须带时区，例如 2026-12-01T09:30+08:00")
    acc = NewAccident(
        occurred_at=at,
        township_id=args.township,
        domain=args.domain,
        level=args.level,
        title=args.title,
        site_id=args.site,
        deaths=args.deaths,
        injuries=args.injuries,
        description=args.description,
    )

    async def go() -> int:
        conn = await _connect(settings)
        try:
            aid = await add_accident(conn, acc, actor=args.actor, now=now)
        finally:
            await conn.close()
        print(f"已登记{ACCIDENT_LEVEL_ZH[acc.level]} {aid}：{acc.title}（下次区域预警研判时计入）")
        return 0

    return run_async(go())
