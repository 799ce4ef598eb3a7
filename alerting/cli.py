"""Alerting subcommands.

* ``hazmon alerting [--http-port N] [--routes FILE]`` — run the service (events → SMS, 四单 timers)
  and its inbound HTTP (receipts, replies) on ``inbound.port``;
* ``hazmon report --period 2026-11 | --from DATE --to DATE [--csv FILE] [--out DIR [--format docx,pdf,xlsx]]``
  — the bulletin (通报) as text, CSV, and the official files (alerting/bulletin/);
* ``hazmon silence add|list|expire`` — silences (维保 windows), audited;
* ``hazmon broadcast --body TEXT --reason TEXT [--township ID ...]`` — 安全公益短信;
* ``hazmon routes check [FILE]`` — validate routes.yaml and show the registry warnings.

(``hazmon sms-sim``, the SMS gateway simulator, is a tool: :mod:`sim.cli`.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from alerting.config import parse_duration
from alerting.kpi_cli import register_kpi
from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.runner import run_until_signalled
from hazmon.settings import Settings, override

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("alerting", help="run the alerting service (events → notifications, escalation)")
    p.add_argument("--routes", type=Path, default=None, help="routes.yaml (default: settings routes_file)")
    p.add_argument("--http-port", type=int, default=None,
                   help="receipts/replies port (default: settings inbound.port, 18091; 0 = off)")
    p.add_argument("--http-host", default=None,
                   help="interface of that port (default: settings inbound.host, 127.0.0.1)")
    p.add_argument("--tick", type=float, default=None,
                   help="seconds between timer passes (default: alerting.tick_s)")
    p.set_defaults(handler=_run)

    r = sub.add_parser("report", help="print the KPI bulletin (通报); write CSV, or DOCX/PDF/XLSX with --out")
    r.add_argument("--period", help="YYYY-MM, YYYY-Qn or YYYY (China time)")
    r.add_argument("--from", dest="start", help="start date YYYY-MM-DD (China time)")
    r.add_argument("--to", dest="end", help="end date YYYY-MM-DD, exclusive")
    r.add_argument("--csv", type=Path, help="write every KPI row to this CSV file")
    r.add_argument("--out", type=Path, help="write the official 通报 files into this directory")
    r.add_argument("--format", default="docx,pdf,xlsx", help="with --out: docx,pdf,xlsx (default all three)")
    r.set_defaults(handler=_report)
    register_kpi(sub)  # hazmon kpi snapshot (alerting/kpi_cli.py)

    s = sub.add_parser("silence", help="silences (静默, e.g. 维保 windows)")
    ssub = s.add_subparsers(dest="silence_command", metavar="ACTION")
    ssub.required = True
    a = ssub.add_parser(
        "add", help='add a silence: hazmon silence add site_id="S001" kind=~"elevator.*" --for 2h ...')
    a.add_argument("matchers", nargs="+", help='matchers like site_id="S001"')
    a.add_argument("--for", dest="duration", help="duration (e.g. 2h); or --until")
    a.add_argument("--until", help="ISO timestamp with offset")
    a.add_argument("--reason", required=True)
    a.add_argument("--by", dest="actor", required=True, help="who creates it")
    a.set_defaults(handler=_silence_add)
    ls = ssub.add_parser("list", help="list pending/active silences")
    ls.add_argument("--all", action="store_true", help="include expired")
    ls.set_defaults(handler=_silence_list)
    ex = ssub.add_parser("expire", help="end a silence now")
    ex.add_argument("id")
    ex.add_argument("--by", dest="actor", required=True)
    ex.add_argument("--reason", default="")
    ex.set_defaults(handler=_silence_expire)

    b = sub.add_parser("broadcast", help="安全公益短信 to businesses (rate-limited, audited)")
    b.add_argument("--body", required=True)
    b.add_argument("--reason", required=True)
    b.add_argument("--by", dest="actor", required=True)
    b.add_argument("--township", action="append", default=[])
    b.add_argument("--industry", action="append", default=[])
    b.add_argument("--domain", action="append", default=[])
    b.add_argument("--key-period")
    b.add_argument("--id", default=None, help="broadcast id (re-running with the same id queues nothing new)")
    b.set_defaults(handler=_broadcast)

    rc = sub.add_parser("routes", help="alert routing configuration")
    rsub = rc.add_subparsers(dest="routes_command", metavar="ACTION")
    rsub.required = True
    chk = rsub.add_parser("check", help="validate routes.yaml (and show registry warnings)")
    chk.add_argument("file", nargs="?", type=Path)
    chk.set_defaults(handler=_routes_check)
    from alerting.replay_cli import register as register_replay  # hazmon replay (what-if, 模拟回放)
    register_replay(sub)
    from alerting.risk_cli import register as register_risk  # hazmon risk grade|check (企业风险分级)
    register_risk(sub)
    from alerting.area_warning_cli import register as register_warnings  # hazmon warnings, hazmon accident
    register_warnings(sub)


def _now() -> datetime:
    return datetime.now(UTC)


async def _pool(settings: Settings) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(settings.postgres.dsn, min_size=1,
                                         max_size=settings.postgres.pool_max)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None


def _run(args: argparse.Namespace, settings: Settings) -> int:
    settings = override(settings, "alerting", {"tick_s": args.tick} if args.tick is not None else {})

    async def body(stop: asyncio.Event) -> int:
        import uvicorn

        from alerting.area_warning import enable_timers
        from alerting.inbound import InboundConfig, build_app
        from alerting.service import build
        from hazmon.metrics import serve_metrics

        svc = await build(settings, routes=args.routes)
        enable_timers(args.routes or settings.routes_file)  # 三色区域预警: area_warnings.yaml beside routes.yaml
        serve_metrics(settings.metrics_port)
        server = None
        server_task = None
        inbound = None
        http_port = settings.inbound.port if args.http_port is None else args.http_port
        try:
            if http_port:
                # receipts are written on their own connection, never one of the service's pool
                inbound_config = InboundConfig.from_settings(settings)
                if not inbound_config.secret:
                    raise ConfigError("HAZMON_INBOUND__CALLBACK_SECRET: empty (and no "
                                      "HAZMON_SMS__ACCESS_KEY_SECRET): callbacks could not be "
                                      "authenticated; set it or run with --http-port 0")
                inbound = build_app(svc.pool, svc.clock, config=inbound_config, dsn=settings.postgres.dsn)
                host = args.http_host or settings.inbound.host
                # X-Forwarded-For is trusted only from inbound.trusted_proxies, not by uvicorn
                server = uvicorn.Server(uvicorn.Config(inbound, host=host, port=http_port,
                                                       log_level="warning", lifespan="off",
                                                       access_log=False, proxy_headers=False))
                server_task = asyncio.create_task(server.serve())
            await svc.start()
            print(f"alerting running: routes={svc.config.file} sms={settings.sms.provider}"
                  f" http_port={http_port} warnings={len(svc.warnings)}", flush=True)
            await svc.run(stop, tick_s=settings.alerting.tick_s)
        finally:
            if server is not None:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await server_task  # type: ignore[misc]
            if inbound is not None:
                await inbound.aclose()
            await svc.aclose()
        return 0

    return run_until_signalled(body)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.bulletin import load_targets, make_files, parse_formats, write_files
    from alerting.kpi import CST, bulletin, period_bounds

    if args.period:
        start, end = period_bounds(args.period)
    elif args.start and args.end:
        try:
            start = datetime.fromisoformat(args.start).replace(tzinfo=CST).astimezone(UTC)
            end = datetime.fromisoformat(args.end).replace(tzinfo=CST).astimezone(UTC)
        except ValueError as exc:
            raise ConfigError(f"--from/--to: {exc}") from None
    else:
        raise ConfigError("report: give --period or both --from and --to")
    # the 通报 files: formats and 考核目标 checked before anything is read
    formats = parse_formats(args.format) if args.out else ()
    targets = load_targets() if args.out else None

    async def go() -> int:
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                b = await bulletin(conn, start=start, end=end, now=_now())
        finally:
            await pool.close()
        # every file rendered in memory first: nothing is written when one cannot be made
        files = make_files(b, targets, formats) if targets is not None else {}
        print(b.text())
        if args.csv:
            b.write_csv(args.csv)
            print(f"\nCSV: {args.csv} ({len(b.rows)} rows)")
        for p in write_files(files, args.out) if files else ():
            print(f"通报文件：{p}（{p.stat().st_size // 1024 + 1} KB）")
        return 0

    return run_async(go())


def _silence_add(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.silence import create_silence

    now = _now()
    if args.duration:
        ends = now + parse_duration(args.duration)
    elif args.until:
        ends = datetime.fromisoformat(args.until)
    else:
        raise ConfigError("silence add: give --for DURATION or --until TIMESTAMP (a silence must expire)")

    async def go() -> int:
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                s = await create_silence(conn, actor=args.actor, now=now, matchers=args.matchers,
                                         ends_at=ends, reason=args.reason)
        finally:
            await pool.close()
        print(f"{s.id} until {s.ends_at.isoformat()} {' '.join(map(str, s.matchers))}")
        return 0

    return run_async(go())


def _silence_list(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.silence import list_silences

    async def go() -> int:
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                items = await list_silences(conn, now=_now(), include_expired=args.all)
        finally:
            await pool.close()
        for s in items:
            print(f"{s.id}\t{s.status(_now())}\t"
                  f"{s.starts_at:%Y-%m-%d %H:%M}→{s.effective_end:%Y-%m-%d %H:%M}\t{s.created_by}\t"
                  f"{' '.join(map(str, s.matchers))}\t{s.reason}")
        return 0

    return run_async(go())


def _silence_expire(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.silence import expire_silence

    async def go() -> int:
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                s = await expire_silence(conn, args.id, actor=args.actor, now=_now(), reason=args.reason)
        finally:
            await pool.close()
        print(f"{s.id} ends {s.effective_end.isoformat()}")
        return 0

    return run_async(go())


def _broadcast(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.broadcast import broadcast

    async def go() -> int:
        pool = await _pool(settings)
        try:
            async with pool.acquire() as conn:
                r = await broadcast(conn, actor=args.actor, now=_now(),
                                    broadcast_id=args.id or f"bc-{uuid.uuid4().hex[:10]}",
                                    body=args.body, reason=args.reason, township_ids=args.township,
                                    industries=args.industry, domains=args.domain,
                                    key_period_id=args.key_period, sign_name=settings.sms.sign_name)
        finally:
            await pool.close()
        print(f"broadcast {r.id}: {r.recipients} recipients, {r.queued} queued, "
              f"{r.skipped_invalid} invalid numbers (sent by the running alerting service, "
              "rate-limited per phone)")
        return 0

    return run_async(go())


def _routes_check(args: argparse.Namespace, settings: Settings) -> int:
    from alerting.config import load_config

    config = load_config(args.file or settings.routes_file)
    routes = list(config.route.walk())
    print(f"{config.file}: OK — {len(routes)} routes, {len(config.receivers)} receivers, "
          f"{len(config.inhibit_rules)} inhibit rules, "
          f"ladders for {', '.join(s.value for s in config.escalation)}, "
          f"{len(config.key_periods)} key periods")
    for w in config.warnings:
        print(f"warning: {w}")
    return 0

