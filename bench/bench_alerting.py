"""Alerting throughput and storm latency: events → alerts → groups → outbox → SMS simulator, against raw baselines.

    .venv/bin/python bench/bench_alerting.py [--sites 500] [--events-per-site 4] [--storm 100] [--tick 0.2]
                                             [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database (dropped at the end), a district of N sites (one contact, one village
and township each) and plays ``sites × events-per-site`` red events (each site's events form one
group). Prints, measured in the same run:

* ``handle_events`` (store alerts + groups, matrix resolution, routing) in events/s, against a
  bare asyncpg ``executemany`` INSERT of the same number of rows into a plain table;
* one ``tick`` (flush every group, render, enqueue, send through the simulator over HTTP) in
  SMS/s, against bare aiohttp POSTs (one message each) of the same number of messages to the simulator;
* the ratios;
* **storm latency** (own scratch database): the service running as ``hazmon alerting`` runs it
  (:meth:`AlertingService.run`, real clock, ``--tick`` like the pipeline benchmark's 0.2 s,
  default :class:`OutboxPolicy`, tests/e2e/routes_e2e.yaml: fire alarms ``group_wait: 0s``), the
  SMS simulator in its own process; ``--storm`` 火警 events on as many panels are handed to
  ``handle_events`` at once (what one Kafka batch does). Prints stored (handle_events returned)
  and SMS request latencies (the simulator's receive time − the hand-over), p50/p99/max, all SMS
  and the first SMS of each alert. Kafka is not in this figure (bench/bench_pipeline.py has it).

Figures vary with the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import httpx

from alerting.clock import ManualClock, SystemClock
from alerting.config import load_config
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_webhook import WebhookSms, webhook_signature
from alerting.outbox import OutboxPolicy
from alerting.service import AlertingOptions, AlertingService, TickReport
from hazmon.contracts import Event, EventState, Severity, event_id
from hazmon.db import migrate
from hazmon.stack import free_port
from sim.gateway import SimulatorConfig, SmsSimulator

ROUTES = Path(__file__).resolve().parent.parent / "data" / "routes.yaml"
E2E_ROUTES = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "routes_e2e.yaml"
T0 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


async def _towns_and_sites(conn: asyncpg.Connection, sites: int, *, industry: str, name: str, contact: str,
                           gas_alarm_required: bool = False) -> None:
    """The vendor, 10 townships with duty phones, and ``sites`` sites with one contact each."""
    await conn.execute("INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ('v','v','json','v')")
    await conn.executemany("INSERT INTO townships (id, name, duty_name, duty_phone) VALUES ($1,$1,'值班',$2)",
                           [(f"T{i}", f"1360{i:07d}") for i in range(10)])
    await conn.executemany(
        "INSERT INTO sites (id, name, industry, township_id, gas_alarm_required) VALUES ($1,$2,$3,$4,$5)",
        [(f"S{i}", f"{name}{i}", industry, f"T{i % 10}", gas_alarm_required) for i in range(sites)])
    await conn.executemany("INSERT INTO site_contacts (site_id, name, phone) VALUES ($1,$2,$3)",
                           [(f"S{i}", contact, f"1390{i:07d}") for i in range(sites)])


async def _district(conn: asyncpg.Connection, sites: int) -> None:
    await conn.execute("INSERT INTO domains (name, name_zh) VALUES ('gas','燃气') ON CONFLICT DO NOTHING")
    await conn.execute("INSERT INTO departments (id, name, duty_name, duty_phone) VALUES ('zj','住建','值班','13700000001')")
    await conn.execute("INSERT INTO matrix_rules (id, domain, department_ids) VALUES ('R-gas','gas','{zj}')")
    await _towns_and_sites(conn, sites, industry="餐饮", name="饭店", contact="老板", gas_alarm_required=True)
    await conn.executemany(  # one gateway per site; its detectors hang off it (same panel → one group)
        "INSERT INTO devices (id, vendor_id, domain, site_id, expected_interval_s) VALUES ($1,'v','gas',$2,60)",
        [(f"S{i}-GW", f"S{i}") for i in range(sites)])
    await conn.executemany(
        "INSERT INTO devices (id, vendor_id, domain, site_id, expected_interval_s, parent_id)"
        " VALUES ($1,'v','gas',$2,60,$3)",
        [(f"S{i}-G{j}", f"S{i}", f"S{i}-GW") for i in range(sites) for j in range(4)])


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))] if v else float("nan")


def _sim_process(port: int) -> None:
    async def go() -> None:
        sim = SmsSimulator(SimulatorConfig(webhook_secret="s"))
        await sim.start("127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(go())


async def _fire_district(conn: asyncpg.Connection, sites: int) -> None:
    await conn.execute("INSERT INTO domains (name, name_zh) VALUES ('fire','消防') ON CONFLICT DO NOTHING")
    await conn.execute("INSERT INTO departments (id, name, duty_name, duty_phone) VALUES"
                       " ('yj','应急','值班','13700000002'), ('xf','消防救援','值班','13700000003')")
    await conn.execute("INSERT INTO matrix_rules (id, domain, department_ids) VALUES ('R-fire','fire','{yj,xf}')")
    await _towns_and_sites(conn, sites, industry="商场", name="商场", contact="经理")
    await conn.executemany(
        "INSERT INTO devices (id, vendor_id, model, domain, site_id, expected_interval_s) VALUES ($1,'v','消防主机','fire',$2,60)",
        [(f"S{i}-P", f"S{i}") for i in range(sites)])


async def storm(admin: asyncpg.Connection, base_dsn: str, n: int, tick_s: float) -> None:
    """The storm-latency phase (see the module docstring)."""
    name = f"bench_alerting_storm_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = base_dsn.rsplit("/", 1)[0] + f"/{name}"
    port = free_port()
    proc = mp.get_context("spawn").Process(target=_sim_process, args=(port,), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await migrate(dsn, timescale=False)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)  # the CLI's pool (postgres.pool_max 8)
        async with pool.acquire() as conn:
            await _fire_district(conn, n)
        async with httpx.AsyncClient() as c:
            for _ in range(200):
                try:
                    await c.get(f"{url}/messages")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        sms = SmsNotifier(WebhookSms(f"{url}/webhook/sms", "s", "区应急指挥中心"))
        svc = AlertingService(pool=pool, config=load_config(E2E_ROUTES), clock=SystemClock(),
                              notifiers={"sms": sms, "console": ConsoleNotifier()})
        await svc.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(svc.run(stop, tick_s=tick_s))
        await asyncio.sleep(1.0)  # past the start-up pass
        now = datetime.now(UTC)
        events = [Event(id=event_id(f"S{i}-P", "fire.alarm", now), kind="fire.alarm", domain="fire",
                        severity=Severity.RED, state=EventState.FIRING, device_id=f"S{i}-P", site_id=f"S{i}",
                        starts_at=now, detected_at=now, summary="火警") for i in range(n)]
        t0 = time.time()
        await svc.handle_events(events)
        t_stored = time.time() - t0
        # wait on the database only (cheap), then read the simulator once: polling its growing
        # message list would take CPU from the service being measured
        for _ in range(1200):
            await asyncio.sleep(0.05)
            done = await pool.fetchrow(
                "SELECT count(*) AS total, count(*) FILTER (WHERE status IN ('pending','sending')) AS left"
                " FROM notifications WHERE channel='sms'")
            if done["total"] and not done["left"]:
                break
        async with httpx.AsyncClient() as c:
            msgs: list[dict[str, object]] = (await c.get(f"{url}/messages")).json()
        stop.set()
        await runner
        alert_of = {r["id"]: r["alert_id"] for r in await pool.fetch("SELECT id, alert_id FROM notifications")}
        lat = [datetime.fromisoformat(str(m["at"])).timestamp() - t0 for m in msgs]
        first: dict[str, float] = {}
        for m, x in zip(msgs, lat, strict=True):
            a = alert_of.get(str(m["client_ref"]), "")
            first[a] = min(first.get(a, x), x)
        f = list(first.values())
        print(f"storm: {n} fire alarms → {len(msgs)} SMS (tick {tick_s} s, OutboxPolicy() defaults, simulator in "
              f"its own process); handle_events returned after {t_stored:.3f} s")
        print(f"  hand-over→SMS request    p50 {_pct(lat, 50):.3f}  p99 {_pct(lat, 99):.3f}  max {max(lat):.3f} s"
              f"  (n={len(lat)}; {len(lat) / max(max(lat) - min(lat), 1e-3):,.0f} SMS/s first→last)")
        print(f"  first SMS request {min(lat):.3f} s after the hand-over")
        print(f"  hand-over→first SMS/alert p50 {_pct(f, 50):.3f}  p99 {_pct(f, 99):.3f}  max {max(f):.3f} s"
              f"  (n={len(f)})")
        await svc.stop()
        await sms.aclose()
        await pool.close()
    finally:
        proc.terminate()
        proc.join(5)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=500)
    ap.add_argument("--events-per-site", type=int, default=4)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--storm", type=int, default=100, help="fire alarms at once in the latency phase (0 = skip)")
    ap.add_argument("--tick", type=float, default=0.2, help="alerting tick in the latency phase (s)")
    ap.add_argument("--storm-only", action="store_true", help="skip the throughput phase")
    args = ap.parse_args()
    admin = await asyncpg.connect(args.dsn)
    try:
        if not args.storm_only:
            await throughput(admin, args)
        if args.storm:
            await storm(admin, args.dsn, args.storm, args.tick)
    finally:
        await admin.close()


async def throughput(admin: asyncpg.Connection, args: argparse.Namespace) -> None:
    name = f"bench_alerting_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = args.dsn.rsplit("/", 1)[0] + f"/{name}"
    sim = SmsSimulator(SimulatorConfig(webhook_secret="s"))
    await sim.start()
    try:
        await migrate(dsn, timescale=False)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
        async with pool.acquire() as conn:
            await _district(conn, args.sites)
        n = args.sites * args.events_per_site
        events = [Event(id=event_id(f"S{i}-G{j}", "gas.high", T0), kind="gas.high", domain="gas",
                        severity=Severity.RED, state=EventState.FIRING, device_id=f"S{i}-G{j}", site_id=f"S{i}",
                        starts_at=T0, detected_at=T0)
                  for i in range(args.sites) for j in range(args.events_per_site)]
        clock = ManualClock(T0)
        sms = SmsNotifier(WebhookSms(f"{sim.url}/webhook/sms", "s", "区应急指挥中心"))
        svc = AlertingService(pool=pool, config=load_config(ROUTES), clock=clock,
                              notifiers={"sms": sms, "console": ConsoleNotifier()},
                              options=AlertingOptions(outbox_policy=OutboxPolicy(batch=200, concurrency=16)))
        await svc.start()

        t = time.perf_counter()
        await svc.handle_events(events)
        t_handle = time.perf_counter() - t

        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE raw_alerts (id text PRIMARY KEY, site text, body jsonb)")
            t = time.perf_counter()
            await conn.executemany("INSERT INTO raw_alerts VALUES ($1,$2,$3)",
                                   [(e.id, e.site_id, e.model_dump_json()) for e in events])
            t_raw_db = time.perf_counter() - t

        clock.advance(timedelta(seconds=10))
        t = time.perf_counter()
        t_flush = None
        if hasattr(svc, "send_due"):  # the tick's two halves, timed apart
            rep = TickReport()
            await svc.flush_and_escalate(clock.now(), rep)
            t_flush = time.perf_counter() - t
            await svc.send_due(clock.now(), rep)
        else:
            rep = await svc.tick()
        t_tick = time.perf_counter() - t
        n_sms = len([m for m in sim.messages])

        sim.messages.clear()
        # raw baseline: one bare aiohttp POST per message (the client the channels use), 32 at once
        body = b'{"id":"x","phone":"13900000001","body":"test","template":"alarm","params":{}}'
        headers = {"content-type": "application/json", "x-hazmon-signature": webhook_signature("s", body)}
        sem = asyncio.Semaphore(32)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
            async def post() -> None:
                async with sem, session.post(f"{sim.url}/webhook/sms", data=body, headers=headers) as resp:
                    await resp.read()

            t = time.perf_counter()
            await asyncio.gather(*(post() for _ in range(n_sms)))
            t_raw_http = time.perf_counter() - t

        print(f"events: {n} ({args.sites} sites × {args.events_per_site}); groups flushed: {rep.flushed}; "
              f"SMS sent: {n_sms} ({n / max(rep.flushed, 1):.0f} events per group → one message per recipient)")
        print(f"handle_events: {n / t_handle:,.0f} events/s  | raw asyncpg executemany: {n / t_raw_db:,.0f} rows/s"
              f"  | ratio {t_raw_db / t_handle:.2f}")
        print(f"tick (flush+render+outbox+HTTP): {n_sms / t_tick:,.0f} SMS/s  | raw aiohttp POST, one message "
              f"each: {n_sms / t_raw_http:,.0f} req/s  | ratio {t_raw_http / t_tick:.2f} (the tick also flushes, "
              "renders, enqueues and writes outcomes; its requests carry a group message's numbers together)")
        if t_flush is not None:
            print(f"  of which flush+render+enqueue {t_flush:.2f} s ({rep.flushed / t_flush:,.0f} groups/s), "
                  f"outbox+HTTP {t_tick - t_flush:.2f} s ({n_sms / (t_tick - t_flush):,.0f} SMS/s; "
                  f"simulator in this process)")
        await svc.stop()
        await sms.aclose()
        await pool.close()
    finally:
        await sim.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
