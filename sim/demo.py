"""``hazmon demo``: the whole system on an embedded stack, with a simulated district.

Every run starts from a clean demo state unless ``--keep`` (:mod:`sim.demo_state`), so
every run tells the same story. Starts the stack (external services when reachable, else
embedded ones), migrates, imports
the sample district, creates the topics, starts every pipeline stage that exists as its own
process (SMS gateway simulator, bridge, detectors, alerting, console), starts the device
simulator with its scripted incidents (a gas leak, a trapped passenger, a fire alarm, a device
going silent) and prints live progress: readings seen on Kafka, rows stored, events, alerts and
SMS. At the end (``--duration`` or Ctrl-C) the incidents clear as the devices would report it
and the demo waits for the alarms to resolve and the 恢复 notices to go out, then prints what
this run did — incidents → alerts → who was told what — and what was still open, and stops
everything in reverse order; no process is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import yaml
from aiokafka import AIOKafkaConsumer

from alerting.templates.words import KIND_ZH
from hazmon.cli import run_async, subcommands
from hazmon.contracts import NoticeLevel
from hazmon.db import migrate
from hazmon.logs import kv
from hazmon.procs import HazmonProcess
from hazmon.runner import stop_on_signals
from hazmon.settings import Settings
from hazmon.stack import Stack, create_topics_async, free_port, port_is_free
from sim.demo_state import DemoState, free_ports_or_explain, prepare_state

__all__ = ["register", "run_demo"]

log = logging.getLogger(__name__)

SAMPLE_DISTRICT = Path(__file__).resolve().parent.parent / "data" / "sample"


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on an embedded stack with a simulated district")
    p.add_argument("--duration", type=float, default=None, help="stop after SECONDS (default: until Ctrl-C)")
    p.add_argument("--console-port", type=int, default=None, help="console HTTP port (default: settings)")
    p.add_argument("--no-console", action="store_true", help="do not start the operator console")
    p.add_argument("--keep", action="store_true",
                   help="reuse the previous run's state (database, logs) instead of starting clean")
    p.add_argument("--summary-json", type=Path, default=None, metavar="FILE",
                   help="write this run's summary (incidents, alerts, who was told what) as JSON")
    p.add_argument("--wind-down", type=float, default=60.0, metavar="SECONDS",
                   help="at the end, wait up to SECONDS for the cleared incidents to resolve and the 恢复 "
                        "notices to go out (default %(default)s; 0: stop at once)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.log_level is None:
        # the demo prints its own progress; service chatter goes to the stages' log files
        logging.getLogger().setLevel(logging.WARNING)
    return run_async(run_demo(settings, duration=args.duration, console_port=args.console_port,
                              console=not args.no_console, keep=args.keep, summary_json=args.summary_json,
                              wind_down_s=args.wind_down))


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
        # in words: the kind as the SMS names it; the detector's summary only where it is Chinese
        # (火警 火灾报警系统1号 3F 东侧走廊, not 设备上报 trapped)
        what = KIND_ZH.get(r["kind"], "报警")
        said = r["summary"] if r["summary"] and not re.search(r"[A-Za-z]{2,}", r["summary"]) else ""
        lines.append(
            f"  [{zh.get(r['severity'], r['severity'])}] {state} {what} · {r['site'] or '?'} / {r['device_id']}"
            + (f" — {said}" if said else "")
        )
    return lines


#: the demo's scripted incidents: kind → (candidate devices, in order of preference; start, s)
_INCIDENT_SQL: dict[str, str] = {
    # a gas leak at a restaurant (any gas device when the district has no restaurant)
    "gas_leak": "SELECT d.id FROM devices d JOIN sites s ON s.id = d.site_id WHERE d.domain = 'gas' "
                "ORDER BY (s.industry LIKE '%餐饮%') DESC, d.id LIMIT 50",
    "trapped": "SELECT id FROM devices WHERE domain = 'elevator' ORDER BY id LIMIT 50",
    # a panel with detectors under it
    "fire_alarm": "SELECT d.id FROM devices d WHERE d.domain = 'fire' AND d.parent_id IS NULL "
                  "AND EXISTS (SELECT 1 FROM devices c WHERE c.parent_id = d.id) ORDER BY d.id LIMIT 50",
    # an elevator box going silent: its 30 s interval makes the offline episode show within minutes
    "silence": "SELECT id FROM devices WHERE domain = 'elevator' ORDER BY id OFFSET 1 LIMIT 50",
}
_INCIDENT_START_S = {"gas_leak": 5, "silence": 10, "trapped": 15, "fire_alarm": 20}
_INCIDENT_ZH = {"gas_leak": "燃气泄漏", "trapped": "电梯困人", "fire_alarm": "火灾报警", "silence": "设备离线"}


@dataclass(frozen=True)
class DemoIncident:
    kind: str
    device_id: str
    start_s: int

    @property
    def arg(self) -> str:
        return f"{self.kind}:{self.device_id}:{self.start_s}"


async def _pick_incidents(dsn: str) -> tuple[list[DemoIncident], list[str]]:
    """The demo's scripted incidents on devices chosen deterministically from the registry —
    a gas leak at a restaurant, a trapped passenger, a fire alarm on a panel, a device going
    silent — each on the first candidate that is not already in alarm (a ``--keep`` state may
    hold alarms still firing), with a line for every incident moved or skipped."""
    conn = await asyncpg.connect(dsn)
    try:
        firing = {r["device_id"]: r["kind"] for r in await conn.fetch(
            "SELECT device_id, kind FROM events WHERE state = 'firing' ORDER BY updated_at")}
        chosen: list[DemoIncident] = []
        lines: list[str] = []
        taken: set[str] = set()
        for kind, sql in _INCIDENT_SQL.items():
            candidates = [r["id"] for r in await conn.fetch(sql)]
            free = [d for d in candidates if d not in firing and d not in taken]
            if not candidates:
                lines.append(f"scripted incident {kind} ({_INCIDENT_ZH[kind]}) skipped: no such device in the registry")
                continue
            if not free:
                lines.append(f"scripted incident {kind} ({_INCIDENT_ZH[kind]}) skipped: every candidate device is in alarm")
                continue
            device = free[0]
            if device != candidates[0] and candidates[0] in firing:
                lines.append(f"scripted incident {kind}: {candidates[0]} is still in alarm ({firing[candidates[0]]} firing "
                             f"from an earlier run); placed on {device} instead")
            taken.add(device)
            chosen.append(DemoIncident(kind, device, _INCIDENT_START_S[kind]))
    finally:
        await conn.close()
    return chosen, lines


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


async def _start_watchdog(settings: Settings, env: dict[str, str], stages: list[HazmonProcess],
                          run_dir: Path) -> HazmonProcess:
    """``hazmon watchdog`` over the demo's stages, paging the routes' duty operator (unless
    ``HAZMON_WATCHDOG__*`` says otherwise): its state is what the console's 监测系统运行状态 shows."""
    from alerting.config import load_config

    port = free_port()
    duty = load_config(settings.routes_file).duty_operator
    wd_env = {"HAZMON_WATCHDOG__INSTANCE": "demo", "HAZMON_WATCHDOG__DUTY_SMS_PHONE": duty.phone or "",
              "HAZMON_WATCHDOG__STAGES": json.dumps({p.name: f"http://127.0.0.1:{p.metrics_port}/metrics"
                                                     for p in stages if p.name != "sms-sim"}),
              "HAZMON_WATCHDOG__HTTP_PORT": str(port)}
    proc = HazmonProcess("watchdog", ["watchdog"], run_dir / "stages", {**wd_env, **env},
                         ready_url=f"http://127.0.0.1:{port}/healthz")
    await asyncio.to_thread(proc.start)
    print(f"stage {'watchdog':<9} pid {proc.pid}  log {proc.log_path}  心跳 http://127.0.0.1:{port}/healthz")
    return proc


_ROLE_ZH = {"business": "企业", "grid_member": "网格员", "township": "镇街值班", "department": "行业部门",
            "leader": "责任领导", "covering_leader": "包保领导", "maintainer": "维保单位",
            "duty_operator": "中心值班员"}
_CHANNEL_ZH = {"sms": "短信", "voice": "语音电话", "wecom": "企业微信群", "dingtalk": "钉钉群", "console": "平台"}
_STATUS_ZH = {"pending": "待发", "sending": "发送中", "sent": "已发送", "delivered": "已送达", "failed": "失败",
              "suppressed": "已抑制", "undeliverable": "未送达",
              "held": "夜间暂缓"}
_TEMPLATE_ZH = {"undelivered": "未送达提醒",
                "alarm": "告警", "alarm_repeat": "再次提醒", "resolved": "恢复", "notice": "四单", "broadcast": "公益短信",
                "outcome": "办结告知", "digest": "晨间汇总"}


def _mask(phone: str | None) -> str:
    if not phone:
        return "-"
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 11 else phone[:2] + "****"


async def _wind_down(conn: asyncpg.Connection, incidents: list[DemoIncident], settings: Settings, env: dict[str, str],
                     since: datetime, timeout_s: float) -> list[str]:
    """End every scripted incident the way the devices report it (:meth:`Simulator.all_clear`),
    then wait until this run's alarms of those devices resolved and the 恢复 notices of the
    routes that send them went out. Returns lines on what is still open (empty: all closed)."""
    from ingest.mqtt import MqttClient
    from sim.cli import INCIDENT_KINDS
    from sim.devices import SimDevice, Simulator

    if not incidents:
        return []
    rows = await conn.fetch(
        "SELECT d.id, d.vendor_id, v.adapter, d.domain, d.expected_interval_s FROM devices d "
        "JOIN vendors v ON v.id = d.vendor_id WHERE d.id = ANY($1::text[])", [i.device_id for i in incidents])
    devices = [SimDevice(r["id"], r["vendor_id"], r["adapter"], r["domain"], float(r["expected_interval_s"])) for r in rows]
    sim = Simulator(devices, topic_root=settings.mqtt.topic_root, start=since.timestamp(),
                    incidents=[INCIDENT_KINDS[i.kind](i.device_id, float(i.start_s)) for i in incidents])
    messages = sim.all_clear()
    m = settings.mqtt
    async with MqttClient(m.host, m.port, client_id="", username=env.get("HAZMON_MQTT__USERNAME"),
                          password=env.get("HAZMON_MQTT__PASSWORD")) as client:
        for msg in messages:
            await client.publish(msg.topic, msg.payload, 1)
    print(f"wind-down: the scripted incidents clear ({len(messages)} messages: normal readings, 困人解除, 复位); "
          f"waiting up to {timeout_s:.0f} s for the alarms to resolve and the 恢复 notices to go out …", flush=True)
    send_resolved = _send_resolved_routes(settings)
    ids = [i.device_id for i in incidents]
    deadline = time.monotonic() + timeout_s
    while True:
        open_events = await conn.fetch(
            "SELECT kind, device_id FROM events WHERE device_id = ANY($1::text[]) AND state = 'firing' "
            "AND updated_at >= $2 ORDER BY kind", ids, since)
        untold = await conn.fetch(
            """SELECT a.kind, a.device_id FROM alerts a
                WHERE a.device_id = ANY($1::text[]) AND a.state = 'resolved' AND a.received_at >= $2
                  AND a.route_id = ANY($3::text[])
                  AND EXISTS (SELECT 1 FROM notifications n WHERE n.group_key = a.group_key AND n.template <> 'resolved'
                              AND n.channel = 'sms' AND n.created_at >= $2)
                  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.group_key = a.group_key
                                  AND n.template = 'resolved' AND n.status IN ('sent', 'delivered')
                                  AND n.created_at >= $2)""",
            ids, since, sorted(send_resolved))
        # the detectors resolve an event before alerting has read it: until then its alert is
        # still firing, and no 恢复 notice can have been composed yet
        unresolved = await conn.fetch(
            "SELECT kind, device_id FROM alerts WHERE device_id = ANY($1::text[]) AND state = 'firing' "
            "AND received_at >= $2 ORDER BY kind", ids, since)
        if (not open_events and not unresolved and not untold) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    return ([f"  still firing: {r['kind']} {r['device_id']}" for r in open_events]
            + [f"  alert not yet resolved: {r['kind']} {r['device_id']}" for r in unresolved]
            + [f"  恢复 notice not yet sent: {r['kind']} {r['device_id']}" for r in untold])


async def _close_as_test(conn: asyncpg.Connection, incidents: list[DemoIncident], since: datetime,
                         timeout_s: float = 30.0) -> list[str]:
    """The centre's duty operator 研判 the scripted fire alarm as a test (消防维保测试) and closes
    it (办结), as on the console; the business is then told the verdict and the close in one SMS
    (alerting/followup.py). Waits for that SMS to go out; returns what is still open."""
    from alerting import lifecycle
    from hazmon.contracts import Verdict

    fire = [i.device_id for i in incidents if i.kind == "fire_alarm"]
    rows = await conn.fetch(
        "SELECT id, site_id FROM alerts WHERE device_id = ANY($1::text[]) AND kind = 'fire.alarm' "
        "AND received_at >= $2 AND phase <> 'closed' ORDER BY starts_at", fire, since)
    if not rows:
        return []
    now = datetime.now(UTC)
    for r in rows:
        await lifecycle.verify(conn, r["id"], actor="centre1", now=now, verdict=Verdict.TEST,
                               reason="消防维保单位联动测试（演示）")
        await lifecycle.close(conn, r["id"], actor="centre1", now=now, reason="测试结束，设备已复位")
    print(f"研判与办结: 中心值班员将{len(rows)}条火灾报警研判为测试并办结；企业将收到一条办结短信 …", flush=True)
    ids = [r["id"] for r in rows]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        told = await conn.fetchval(
            "SELECT count(DISTINCT alert_id) FROM notifications WHERE alert_id = ANY($1::text[]) "
            "AND template = 'outcome' AND channel = 'sms' AND status IN ('sent', 'delivered')", ids)
        if told >= len(ids):
            return []
        await asyncio.sleep(1.0)
    return [f"  办结短信 not yet sent: fire.alarm {r['site_id']}" for r in rows]


def _demo_routes(routes_file: Path, into: Path) -> Path:
    """The routes the demo's alerting runs: the sample's, quiet hours off (alerting/quiet.py)."""
    raw = yaml.safe_load(routes_file.read_text(encoding="utf-8"))
    raw["route"]["quiet_hours"] = False
    into.mkdir(parents=True, exist_ok=True)
    out = into / "routes.yaml"
    out.write_text("# written by hazmon demo from " + str(routes_file) + "\n"
                   + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def _send_resolved_routes(settings: Settings) -> set[str]:
    try:
        from alerting.config import load_config
    except ModuleNotFoundError:
        return set()
    cfg = load_config(settings.routes_file)
    return {r.id for r in cfg.route.walk() if (rc := cfg.receivers.get(r.receiver)) is not None and rc.send_resolved}


async def _summary(conn: asyncpg.Connection, incidents: list[DemoIncident], since: datetime, sms: int) -> dict[str, Any]:
    """This run's story: incidents → events → alerts → who was told what; 四单 notices; leftovers."""
    events = await conn.fetch(
        """SELECT e.id, e.kind, e.severity, e.state, e.device_id, s.name AS site
             FROM events e LEFT JOIN sites s ON s.id = e.site_id
            WHERE e.updated_at >= $1 ORDER BY e.starts_at, e.id""", since)
    event_ids = [r["id"] for r in events]
    alerts = await conn.fetch(
        "SELECT id, kind, severity, state, device_id, group_key FROM alerts WHERE id = ANY($1::text[]) ORDER BY starts_at, id",
        event_ids) if await _table_exists(conn, "alerts") else []
    out_alerts = []
    for a in alerts:
        told = await conn.fetch(
            """SELECT recipient_role, recipient_name, recipient_unit, recipient_phone, template, notice_level, status, channel,
                      body, rule, last_error
                 FROM notifications WHERE (alert_id = $1 OR (group_key = $2 AND $2 <> '')) AND created_at >= $3
                ORDER BY created_at, recipient_role, recipient_name""", a["id"], a["group_key"], since)
        out_alerts.append({
            "id": a["id"], "kind": a["kind"], "severity": a["severity"], "state": a["state"], "device_id": a["device_id"],
            "messages": [{"role": t["recipient_role"], "name": t["recipient_name"], "unit": t["recipient_unit"],
                          "phone": _mask(t["recipient_phone"]), "template": t["template"],
                          "notice_level": t["notice_level"], "status": t["status"], "channel": t["channel"],
                          "body": t["body"], "rule": t["rule"], "error": t["last_error"]} for t in told],
        })
    notices = await conn.fetch(
        "SELECT alert_id, level, issued_at FROM notices WHERE issued_at >= $1 ORDER BY issued_at", since) \
        if await _table_exists(conn, "notices") else []
    this_run = {a["id"] for a in alerts}
    return {
        "since": since.isoformat(),
        "incidents": [{"kind": i.kind, "device_id": i.device_id, "start_s": i.start_s} for i in incidents],
        "events": [{"kind": r["kind"], "severity": r["severity"], "state": r["state"], "device_id": r["device_id"],
                    "site": r["site"]} for r in events],
        "alerts": out_alerts,
        "notices": [{"alert_id": n["alert_id"], "level": n["level"], "issued_at": n["issued_at"].isoformat()} for n in notices],
        "leftover_notices": sum(1 for n in notices if n["alert_id"] not in this_run),
        "sms_received_by_gateway": sms,
    }


def _print_summary(doc: dict[str, Any], counts: _Counts, still_open: list[str]) -> None:
    zh = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}
    print(f"\ndemo summary: {counts.kafka_readings:,} readings on Kafka, {counts.stored_readings:,} stored, "
          f"{len(doc['events'])} events, {len(doc['alerts'])} alerts, {doc['sms_received_by_gateway']} SMS (this run)")
    for inc in doc["incidents"]:
        print(f"  incident {inc['kind']:<10} {inc['device_id']:<12} at {inc['start_s']:>3} s ({_INCIDENT_ZH.get(inc['kind'], '')})")
    for a in doc["alerts"]:
        state = "已恢复" if a["state"] == "resolved" else "仍在告警"
        what = KIND_ZH.get(a["kind"], a["kind"])
        print(f"  alert [{zh.get(a['severity'], a['severity'])}] {what} · {a['device_id']} · {state}")
        # one line per delivery: a recipient over one channel, with what it was sent and how it went
        seen: dict[tuple[str, str, str, str, str], list[str]] = {}
        for m in a["messages"]:
            key = (m["role"], m["name"], m["unit"], m["channel"], m["phone"])
            what = _TEMPLATE_ZH.get(m["template"], m["template"]) if m["template"] != "notice" \
                else (NoticeLevel(m["notice_level"]).zh if m["notice_level"] else "四单")
            status = "已接听" if m["channel"] == "voice" and m["status"] == "delivered" else \
                _STATUS_ZH.get(m["status"], m["status"])
            seen.setdefault(key, []).append(f"{what}（{status}" + (f"：{m['error']}" if m["error"] else "") + "）")
        for (role, name, unit, channel, phone), what in seen.items():
            to = f" {phone}" if channel in ("sms", "voice") else ""
            print(f"      → {_ROLE_ZH.get(role, role)} {unit} {name} · {_CHANNEL_ZH.get(channel, channel)}{to}: "
                  f"{'、'.join(what)}")
    if doc["notices"]:
        print(f"  四单 notices issued this run: {len(doc['notices'])} "
              f"({doc['leftover_notices']} for alerts of earlier runs)")
    if still_open:
        print("  still open at the end:")
        for line in still_open:
            print("  " + line)
    else:
        print("  still open at the end: nothing (every scripted incident cleared and resolved)")


def _leftover_ports(settings: Settings) -> dict[str, int]:
    """The embedded services' ports this run will bind (those whose configured service is not reachable)."""
    from hazmon.stack import kafka_reachable, postgres_reachable

    ports: dict[str, int] = {}
    if not postgres_reachable(settings.postgres.dsn):
        ports["postgres"] = settings.postgres.embedded_port
    if not kafka_reachable(settings.kafka.bootstrap):
        ports["kafka"] = settings.kafka.embedded_port
    if not ({"host", "port"} & settings.mqtt.model_fields_set):
        ports["mqtt"] = settings.mqtt.embedded_port
    return ports


async def _isolate_external(settings: Settings, state: DemoState) -> tuple[Settings, list[str]]:
    """On an external PostgreSQL or Kafka the demo keeps to its own database (``<db>_demo``,
    recreated for a clean start) and topics (``<prefix>-demo-<run>``)."""
    from hazmon.stack import kafka_reachable, postgres_reachable
    from hazmon.stack.postgres import with_database

    lines: list[str] = []
    pg, kafka = settings.postgres, settings.kafka
    if postgres_reachable(pg.dsn):
        db = (urlsplit(pg.dsn).path.lstrip("/") or "hazmon") + "_demo"
        if state.fresh:
            conn = await asyncpg.connect(with_database(pg.dsn, "postgres"))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            finally:
                await conn.close()
        pg = pg.model_copy(update={"dsn": with_database(pg.dsn, db)})
        lines.append(f"demo state: external PostgreSQL — the demo uses its own database {db}"
                     + (" (recreated)" if state.fresh else " (kept)"))
    if kafka_reachable(kafka.bootstrap):
        prefix = f"{kafka.topic_prefix}-demo-{state.run_tag}"
        kafka = kafka.model_copy(update={"topic_prefix": prefix})
        lines.append(f"demo state: external Kafka — the demo uses its own topics {prefix}.*")
    return settings.model_copy(update={"postgres": pg, "kafka": kafka}), lines


async def run_demo(
    settings: Settings,
    *,
    duration: float | None = None,
    console_port: int | None = None,
    console: bool = True,
    keep: bool = False,
    summary_json: Path | None = None,
    wind_down_s: float = 60.0,
) -> int:
    available = subcommands()
    run_dir = Path(settings.run_dir).resolve() / "demo"
    state = prepare_state(run_dir, keep=keep)
    for line in state.lines:
        print(line, flush=True)
    settings, lines = await _isolate_external(settings, state)
    for line in lines:
        print(line)
    port_lines: list[str] = []
    free_ports_or_explain(_leftover_ports(settings), run_dir, port_lines)
    for line in port_lines:
        print(line)
    since = datetime.now(UTC)
    state.write(clean_stop=False)
    print("hazmon demo: starting the stack …", flush=True)
    stack = Stack(settings, run_dir)
    await asyncio.to_thread(stack.start)
    procs: list[HazmonProcess] = []
    stop = asyncio.Event()

    def wind_down() -> None:  # a first Ctrl-C
        print("\nstopping (Ctrl-C again to skip the wind-down) …", flush=True)
        stop.set()

    def skip_wind_down() -> None:  # a second one
        raise KeyboardInterrupt

    signals = contextlib.ExitStack()
    # an event of its own: the demo sets ``stop`` itself when it ends, which is no Ctrl-C
    signals.enter_context(stop_on_signals(asyncio.Event(), on_first=wind_down, on_second=skip_wind_down))
    clean = False
    try:
        for line in stack.describe():
            print("  " + line)
        s = stack.settings
        report = await migrate(s.postgres.dsn, timescale=s.postgres.timescaledb)
        print(f"schema: applied {len(report.applied)}, already {len(report.already)}; "
              f"timescaledb {'on' if report.timescale else 'off'} ({report.timescale_reason})")
        from hazmon.registry import import_registry

        imported = await import_registry(s.postgres.dsn, SAMPLE_DISTRICT, actor="hazmon demo")
        print(f"registry: sample district {imported.summary()}")
        await create_topics_async(s.kafka.bootstrap, s.kafka.topics, s.kafka.partitions)

        env = stack.env()
        env["HAZMON_KAFKA__TOPIC_PREFIX"] = s.kafka.topic_prefix
        env["HAZMON_ROUTES_FILE"] = str(_demo_routes(s.routes_file, s.run_dir / "demo"))
        print("quiet hours (夜间免扰): off in the demo, so every run tells the same story at any hour "
              f"({s.routes_file.name} holds yellow and blue SMS and calls at night for a morning digest)")
        sms_port = free_port()
        sms_messages_url: str | None = None
        env["HAZMON_SMS__URL"] = f"http://127.0.0.1:{sms_port}/webhook/sms"
        # the gateway answers as the providers do: delivery receipts and call outcomes come back
        # to alerting's inbound port, so a message reads 已送达 and a call 已接听 when they were
        inbound_port = free_port()
        env["HAZMON_INBOUND__PORT"] = str(inbound_port)
        plan: list[tuple[str, list[str], str | None]] = []
        if "sms-sim" in available:
            plan.append(("sms-sim", ["sms-sim", "--host", "127.0.0.1", "--port", str(sms_port),
                                     "--callback-url", f"http://127.0.0.1:{inbound_port}"],
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
        if "watchdog" in available:  # out of band (docs/operations.md): pages the routes' duty operator
            procs.append(await _start_watchdog(settings, env, procs, run_dir))
        missing = [n for n in ("bridge", "detect", "alerting", "console") if n not in available]
        if missing:
            print(f"stages not built yet: {', '.join(missing)}")
        if console_url:
            print(f"console: {console_url}")
            await _print_demo_accounts(s.postgres.dsn)
        incidents: list[DemoIncident] = []
        sim_env = dict(env)
        sim: HazmonProcess | None = None
        if "simulate" in available:
            sim_env["HAZMON_MQTT__USERNAME"] = "hazmon-sim"
            sim_env["HAZMON_MQTT__PASSWORD"] = stack.mqtt_users.get("hazmon-sim", "")
            # the simulator outlives the demo's own clock; the demo stops it
            sim_args = ["simulate", "--devices", "1000000", "--duration", str((duration or 10 * 365 * 86400) + 60)]
            incidents, lines = await _pick_incidents(s.postgres.dsn)
            for line in lines:
                print(line)
            for incident in incidents:
                sim_args += ["--incident", incident.arg]
                print(f"scripted incident: {incident.arg}")
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
        still_open: list[str] = []
        try:
            while (duration is None or time.monotonic() - started < duration) and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 3.0)
                await _progress(conn, counts, since, sms_messages_url, started, last, procs)
                last = (time.monotonic(), counts.kafka_readings)
            if sim is not None and sim in procs:
                await asyncio.to_thread(sim.stop)
                procs.remove(sim)
            if wind_down_s > 0:
                still_open = await _wind_down(conn, incidents, s, sim_env, since, wind_down_s)
                if not still_open:
                    still_open = await _close_as_test(conn, incidents, since)
                await _progress(conn, counts, since, sms_messages_url, started, last, procs)
            stop.set()
            await watcher
            counts.sms = await asyncio.to_thread(_sms_count, sms_messages_url)
            doc = await _summary(conn, incidents, since, counts.sms)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await watcher
            await conn.close()
        doc["still_open"] = still_open
        doc["readings"] = {"kafka": counts.kafka_readings, "stored": counts.stored_readings}
        _print_summary(doc, counts, still_open)
        if summary_json is not None:
            summary_json.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
            print(f"summary written to {summary_json}")
        clean = True
        return 0 if counts.kafka_readings > 0 or "simulate" not in available else 1
    finally:
        signals.close()
        for proc in reversed(procs):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(proc.stop)
        await asyncio.to_thread(stack.stop)
        if clean:
            state.write(clean_stop=True)
        log.info("demo stopped %s", kv(run_dir=str(run_dir)))


async def _progress(conn: asyncpg.Connection, counts: _Counts, since: datetime, sms_url: str | None,
                    started: float, last: tuple[float, int], procs: list[HazmonProcess]) -> None:
    """One live progress line (and a line for every event seen for the first time)."""
    for line in await _poll_db(conn, counts, since):
        print(line)
    counts.sms = await asyncio.to_thread(_sms_count, sms_url)
    now = time.monotonic()
    rate_now = (counts.kafka_readings - last[1]) / max(now - last[0], 1e-6)
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
