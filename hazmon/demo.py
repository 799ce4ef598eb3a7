"""``hazmon demo``: the whole system on an embedded stack, with a simulated district.

Starts the stack (external services when reachable, else embedded ones), migrates, imports
the sample district, creates the topics, starts every pipeline stage that exists as its own
process (SMS gateway simulator, bridge, detectors, alerting, console), starts the device
simulator with its scripted incidents (a gas leak, a trapped passenger, a fire alarm, a device
going silent) and prints live progress: readings seen on Kafka, rows stored, events, alerts and
SMS. Ctrl-C (or ``--duration``) stops everything in reverse order; no process is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from hazmon.cli import run_async, subcommands
from hazmon.db import migrate
from hazmon.logs import kv
from hazmon.procs import HazmonProcess
from hazmon.settings import Settings
from hazmon.stack import Stack, create_topics_async, free_port, port_is_free

__all__ = ["register", "run_demo"]

log = logging.getLogger(__name__)

SAMPLE_DISTRICT = Path(__file__).resolve().parent.parent / "data" / "sample"


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on an embedded stack with a simulated district")
    p.add_argument("--duration", type=float, default=None, help="stop after SECONDS (default: until Ctrl-C)")
    p.add_argument("--console-port", type=int, default=None, help="console HTTP port (default: settings)")
    p.add_argument("--no-console", action="store_true", help="do not start the operator console")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.log_level is None:
        # the demo prints its own progress; service chatter goes to the stages' log files
        logging.getLogger().setLevel(logging.WARNING)
    return run_async(run_demo(settings, duration=args.duration,
                              console_port=args.console_port, console=not args.no_console))


@dataclass
class _Counts:
    kafka_messages: int = 0
    kafka_readings: int = 0
    stored_readings: int = 0
    events: int = 0
    firing: int = 0
    alerts: int = 0
    sms: int = 0
    deadletters: int = 0
    seen_events: set[str] = field(default_factory=set)


async def _count_kafka(bootstrap: str, topic: str, counts: _Counts, stop: asyncio.Event) -> None:
    """Count what reaches the readings topic: the demo's proof that readings flow."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"hazmon-demo-watch-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for rec in records:
                    counts.kafka_messages += 1
                    with contextlib.suppress(Exception):
                        counts.kafka_readings += len(json.loads(rec.value)["samples"])
    finally:
        await consumer.stop()


async def _table_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


async def _poll_db(conn: asyncpg.Connection, counts: _Counts, since: Any) -> list[str]:
    """Refresh this run's counts (rows written since the demo started; the database may hold
    earlier runs); return lines for events seen for the first time."""
    counts.stored_readings = await conn.fetchval("SELECT count(*) FROM readings WHERE received_at >= $1", since)
    counts.events = await conn.fetchval("SELECT count(*) FROM events WHERE updated_at >= $1", since)
    counts.firing = await conn.fetchval(
        "SELECT count(*) FROM events WHERE state = 'firing' AND updated_at >= $1", since
    )
    counts.deadletters = await conn.fetchval("SELECT count(*) FROM deadletters WHERE received_at >= $1", since)
    if await _table_exists(conn, "alerts"):
        counts.alerts = await conn.fetchval(
            "SELECT count(*) FROM alerts WHERE id IN (SELECT id FROM events WHERE updated_at >= $1)", since
        )
    lines = []
    rows = await conn.fetch(
        """SELECT e.id, e.kind, e.severity, e.state, e.device_id, e.summary, s.name AS site
           FROM events e LEFT JOIN sites s ON s.id = e.site_id
           WHERE e.updated_at >= $1
           ORDER BY e.updated_at DESC LIMIT 50""",
        since,
    )
    zh = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}
    for r in reversed(rows):
        key = f"{r['id']}:{r['state']}"
        if key in counts.seen_events:
            continue
        counts.seen_events.add(key)
        state = "告警" if r["state"] == "firing" else "恢复"
        lines.append(
            f"  [{zh.get(r['severity'], r['severity'])}] {state} {r['kind']:<24} {r['site'] or '?'} / {r['device_id']}"
            + (f" — {r['summary']}" if r["summary"] else "")
        )
    return lines


async def _pick_incidents(dsn: str) -> list[str]:
    """The demo's scripted incidents, on devices chosen deterministically from the registry:
    a gas leak at a restaurant, a trapped passenger, a fire alarm on a panel, a device going
    silent (an elevator box: its 30 s interval makes the offline episode show within minutes)."""
    conn = await asyncpg.connect(dsn)
    try:
        pick = {
            "gas_leak": await conn.fetchval(
                "SELECT d.id FROM devices d JOIN sites s ON s.id = d.site_id "
                "WHERE d.domain = 'gas' AND s.industry LIKE '%餐饮%' ORDER BY d.id LIMIT 1"
            ) or await conn.fetchval("SELECT id FROM devices WHERE domain = 'gas' ORDER BY id LIMIT 1"),
            "trapped": await conn.fetchval("SELECT id FROM devices WHERE domain = 'elevator' ORDER BY id LIMIT 1"),
            "fire_alarm": await conn.fetchval(
                "SELECT d.id FROM devices d WHERE d.domain = 'fire' AND d.parent_id IS NULL "
                "AND EXISTS (SELECT 1 FROM devices c WHERE c.parent_id = d.id) ORDER BY d.id LIMIT 1"
            ),
            "silence": await conn.fetchval(
                "SELECT id FROM devices WHERE domain = 'elevator' ORDER BY id OFFSET 1 LIMIT 1"
            ),
        }
    finally:
        await conn.close()
    starts = {"gas_leak": 5, "silence": 10, "trapped": 15, "fire_alarm": 20}
    return [f"{kind}:{device}:{starts[kind]}" for kind, device in pick.items() if device]


async def _print_demo_accounts(dsn: str) -> None:
    """One account per role (centre, department, township, business, vendor, admin)."""
    from console.users import create_demo_accounts

    conn = await asyncpg.connect(dsn)
    try:
        accounts = await create_demo_accounts(conn)
    finally:
        await conn.close()
    print("  demo accounts (role, username, password):")
    for username, password, role in accounts:
        print(f"    {role:<11} {username:<16} {password}")


def _sms_count(url: str | None) -> int:
    if not url:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return 0
    if isinstance(data, dict):
        data = data.get("messages", [])
    return len(data) if isinstance(data, list) else 0


async def run_demo(
    settings: Settings,
    *,
    duration: float | None = None,
    console_port: int | None = None,
    console: bool = True,
) -> int:
    available = subcommands()
    since = datetime.now(UTC)
    run_dir = Path(settings.run_dir).resolve() / "demo"
    print("hazmon demo: starting the stack …", flush=True)
    stack = Stack(settings, run_dir)
    await asyncio.to_thread(stack.start)
    procs: list[HazmonProcess] = []
    stop = asyncio.Event()
    try:
        for line in stack.describe():
            print("  " + line)
        s = stack.settings
        report = await migrate(s.postgres.dsn, timescale=s.postgres.timescaledb)
        print(f"schema: applied {len(report.applied)}, already {len(report.already)}; "
              f"timescaledb {'on' if report.timescale else 'off'} ({report.timescale_reason})")
        from hazmon.registry_import import import_registry

        imported = await import_registry(s.postgres.dsn, SAMPLE_DISTRICT, actor="hazmon demo")
        print(f"registry: sample district {imported.summary()}")
        await create_topics_async(s.kafka.bootstrap, s.kafka.topics, s.kafka.partitions)

        env = stack.env()
        sms_port = free_port()
        sms_messages_url: str | None = None
        env["HAZMON_SMS__URL"] = f"http://127.0.0.1:{sms_port}/webhook/sms"
        plan: list[tuple[str, list[str], str | None]] = []
        if "sms-sim" in available:
            plan.append(("sms-sim", ["sms-sim", "--host", "127.0.0.1", "--port", str(sms_port)],
                         f"http://127.0.0.1:{sms_port}/messages"))
            sms_messages_url = f"http://127.0.0.1:{sms_port}/messages"
        for name in ("bridge", "detect", "alerting"):
            if name in available:
                plan.append((name, [name], None))
        console_url = None
        if console and "console" in available:
            port = console_port or (settings.console.port if port_is_free(settings.console.port) else free_port())
            env["HAZMON_CONSOLE__PORT"] = str(port)
            env["HAZMON_SMS__ACK_BASE_URL"] = f"http://127.0.0.1:{port}/ack"
            plan.append(("console", ["console"], f"http://127.0.0.1:{port}/api/healthz"))
            console_url = f"http://127.0.0.1:{port}/"
        for name, argv, ready_url in plan:
            proc = HazmonProcess(name, argv, run_dir / "stages", env, ready_url=ready_url)
            await asyncio.to_thread(proc.start)
            procs.append(proc)
            print(f"stage {name:<9} pid {proc.pid}  log {proc.log_path}")
        missing = [n for n in ("bridge", "detect", "alerting", "console") if n not in available]
        if missing:
            print(f"stages not built yet: {', '.join(missing)}")
        if console_url:
            print(f"console: {console_url}")
            await _print_demo_accounts(s.postgres.dsn)
        if "simulate" in available:
            sim_env = dict(env)
            sim_env["HAZMON_MQTT__USERNAME"] = "hazmon-sim"
            sim_env["HAZMON_MQTT__PASSWORD"] = stack.mqtt_users.get("hazmon-sim", "")
            # the simulator outlives the demo's own clock; the demo stops it
            sim_args = ["simulate", "--devices", "1000000", "--duration", str((duration or 10 * 365 * 86400) + 60)]
            for incident in await _pick_incidents(s.postgres.dsn):
                sim_args += ["--incident", incident]
                print(f"scripted incident: {incident}")
            sim = HazmonProcess("simulator", sim_args, run_dir / "stages", sim_env, wait_ready=False)
            await asyncio.to_thread(sim.start)
            procs.append(sim)
            print(f"device simulator pid {sim.pid}  log {sim.log_path}")
        else:
            print("device simulator not built yet")

        counts = _Counts()
        watcher = asyncio.create_task(_count_kafka(s.kafka.bootstrap, s.kafka.topics.readings, counts, stop))
        conn = await asyncpg.connect(s.postgres.dsn)
        started = time.monotonic()
        last = (started, 0)
        print("\nlive progress (Ctrl-C to stop):")
        try:
            while duration is None or time.monotonic() - started < duration:
                await asyncio.sleep(3.0)
                for line in await _poll_db(conn, counts, since):
                    print(line)
                counts.sms = await asyncio.to_thread(_sms_count, sms_messages_url)
                now = time.monotonic()
                rate_now = (counts.kafka_readings - last[1]) / max(now - last[0], 1e-6)
                last = (now, counts.kafka_readings)
                print(
                    f"[{now - started:5.0f}s] kafka: {counts.kafka_messages:,} msgs / {counts.kafka_readings:,} readings "
                    f"({rate_now:,.0f}/s) | stored {counts.stored_readings:,} | events {counts.events} "
                    f"({counts.firing} firing) | alerts {counts.alerts} | SMS {counts.sms} | "
                    f"dead-letters {counts.deadletters}",
                    flush=True,
                )
                for proc in procs:
                    if not proc.is_running:
                        print(f"stage {proc.name} exited; see {proc.log_path}")
                        procs.remove(proc)
                        break
        finally:
            stop.set()
            await watcher
            await conn.close()
        print(f"\ndemo summary: {counts.kafka_readings:,} readings on Kafka, {counts.stored_readings:,} stored, "
              f"{counts.events} events, {counts.alerts} alerts, {counts.sms} SMS")
        return 0 if counts.kafka_readings > 0 or "simulate" not in available else 1
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(proc.stop)
        await asyncio.to_thread(stack.stop)
        log.info("demo stopped %s", kv(run_dir=str(run_dir)))
