"""Alerting throughput: events → alerts → groups → outbox → SMS simulator, against raw baselines.

    .venv/bin/python bench/bench_alerting.py [--sites 500] [--events-per-site 4] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database (dropped at the end), a district of N sites (one contact, one village
and township each) and plays ``sites × events-per-site`` red events (each site's events form one
group). Prints, measured in the same run:

* ``handle_events`` (store alerts + groups, matrix resolution, routing) in events/s, against a
  bare asyncpg ``executemany`` INSERT of the same number of rows into a plain table;
* one ``tick`` (flush every group, render, enqueue, send through the simulator over HTTP) in
  SMS/s, against bare httpx POSTs of the same number of messages to the simulator;
* the ratios. Figures vary with the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from alerting.clock import ManualClock
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_webhook import WebhookSms, webhook_signature
from alerting.outbox import OutboxPolicy
from alerting.route import load_config
from alerting.service import AlertingService
from alerting.simulator import SimulatorConfig, SmsSimulator
from hazmon.contracts import Event, EventState, Severity, event_id
from hazmon.db import migrate

ROUTES = Path(__file__).resolve().parent.parent / "data" / "routes.yaml"
T0 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


async def _district(conn: asyncpg.Connection, sites: int) -> None:
    await conn.execute("INSERT INTO domains (name, name_zh) VALUES ('gas','燃气') ON CONFLICT DO NOTHING")
    await conn.execute("INSERT INTO departments (id, name, duty_name, duty_phone) VALUES ('zj','住建','值班','13700000001')")
    await conn.execute("INSERT INTO matrix_rules (id, domain, department_ids) VALUES ('R-gas','gas','{zj}')")
    await conn.execute("INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ('v','v','json','v')")
    await conn.executemany("INSERT INTO townships (id, name, duty_name, duty_phone) VALUES ($1,$1,'值班',$2)",
                           [(f"T{i}", f"1360{i:07d}") for i in range(10)])
    await conn.executemany(
        "INSERT INTO sites (id, name, industry, township_id, gas_alarm_required) VALUES ($1,$2,'餐饮',$3,true)",
        [(f"S{i}", f"饭店{i}", f"T{i % 10}") for i in range(sites)])
    await conn.executemany("INSERT INTO site_contacts (site_id, name, phone) VALUES ($1,'老板',$2)",
                           [(f"S{i}", f"1390{i:07d}") for i in range(sites)])
    await conn.executemany(  # one gateway per site; its detectors hang off it (same panel → one group)
        "INSERT INTO devices (id, vendor_id, domain, site_id, expected_interval_s) VALUES ($1,'v','gas',$2,60)",
        [(f"S{i}-GW", f"S{i}") for i in range(sites)])
    await conn.executemany(
        "INSERT INTO devices (id, vendor_id, domain, site_id, expected_interval_s, parent_id)"
        " VALUES ($1,'v','gas',$2,60,$3)",
        [(f"S{i}-G{j}", f"S{i}", f"S{i}-GW") for i in range(sites) for j in range(4)])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=500)
    ap.add_argument("--events-per-site", type=int, default=4)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    name = f"bench_alerting_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.dsn)
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
                              outbox_policy=OutboxPolicy(batch=200, concurrency=16))
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
        rep = await svc.tick()
        t_tick = time.perf_counter() - t
        n_sms = len([m for m in sim.messages])

        sim.messages.clear()
        body = b'{"id":"x","phone":"13900000001","body":"test","template":"alarm","params":{}}'
        sem = asyncio.Semaphore(16)
        async with httpx.AsyncClient() as client:
            async def post() -> None:
                async with sem:
                    await client.post(f"{sim.url}/webhook/sms", content=body,
                                      headers={"x-hazmon-signature": webhook_signature("s", body)})

            t = time.perf_counter()
            await asyncio.gather(*(post() for _ in range(n_sms)))
            t_raw_http = time.perf_counter() - t

        print(f"events: {n} ({args.sites} sites × {args.events_per_site}); groups flushed: {rep.flushed}; "
              f"SMS sent: {n_sms} ({n / max(rep.flushed, 1):.0f} events per group → one message per recipient)")
        print(f"handle_events: {n / t_handle:,.0f} events/s  | raw asyncpg executemany: {n / t_raw_db:,.0f} rows/s"
              f"  | ratio {t_raw_db / t_handle:.2f}")
        print(f"tick (flush+render+outbox+HTTP): {n_sms / t_tick:,.0f} SMS/s  | raw httpx POST: "
              f"{n_sms / t_raw_http:,.0f} req/s  | ratio {t_raw_http / t_tick:.2f}")
        await svc.stop()
        await sms.aclose()
        await pool.close()
    finally:
        await sim.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
