"""Demo-like data for the words walker (test_console_words_browser.py): the console's small test
district, then alarms taken through alerting itself — placed and grouped (intake), flushed
(outbox rows to every matrix recipient on their channels, the ``notify`` audit rows), escalated
(四单), acknowledged by 回复码 and refused an early 办结 — so the pages show what a demo shows,
including the elevator detector's own summary of a device-reported alarm ("设备上报 trapped")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from alerting import lifecycle
from alerting.compose import ComposeContext
from alerting.config import load_config
from alerting.flush import flush_due
from alerting.intake import place, store_round
from alerting.notices import escalate
from hazmon.contracts import Event, EventState, Evidence, Severity, event_id
from hazmon.registry import load_registry

__all__ = ["seed_words"]

DISPLAY_NAMES = [
    ("centre1", "李值班"),
    ("admin1", "王管理"),
    ("dept-zj", "住建值班员"),
    ("town-t1", "城关镇值班员"),
    ("town-t2", "新河街道值班员"),
    ("biz-s1", "王老板"),
    ("vendor-acme", "艾克美运维"),
    ("grid-v1", "陈网格"),
    ("maint-m1", "钱江电梯值班"),
]
ROUTES = Path(__file__).resolve().parents[2] / "data" / "routes.yaml"


def _event(
    device: str,
    site: str,
    domain: str,
    kind: str,
    severity: Severity,
    at: datetime,
    summary: str,
    metric: str,
    value: float,
) -> Event:
    return Event(
        id=event_id(device, kind, at),
        kind=kind,
        domain=domain,
        severity=severity,
        state=EventState.FIRING,
        device_id=device,
        site_id=site,
        starts_at=at,
        detected_at=at,
        summary=summary,
        evidence=(Evidence(ts=at, metric=metric, value=value, note="设备上报"),),
    )


async def seed_words(dsn: str) -> dict[str, str]:
    """Alarms through alerting over the seeded district; returns name → alert id."""
    now = datetime.now(UTC)
    config = load_config(ROUTES)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            registry = await load_registry(conn)
            # people's names, as `hazmon demo`'s accounts have (the test district names them by login)
            await conn.executemany(
                "UPDATE console_users SET display_name = $2 WHERE username = $1", DISPLAY_NAMES
            )
            await conn.executemany(  # the gas curve the alert page charts
                "INSERT INTO readings (device_id, metric, ts, value, unit, received_at)"
                " VALUES ($1,$2,$3,$4,$5,$3)",
                [
                    ("G4", "gas_lel", now - timedelta(minutes=m), 3.0 + max(0, 10 - m) * 3.8, "%LEL")
                    for m in range(30, -1, -1)
                ],
            )
        events = {
            "trapped": _event(
                "E1",
                "S2",
                "elevator",
                "elevator.trapped",
                Severity.RED,
                now - timedelta(minutes=6),
                "设备上报 trapped",
                "code:trapped",
                1.0,
            ),
            "gas_s4": _event(
                "G4",
                "S4",
                "gas",
                "gas.high",
                Severity.RED,
                now - timedelta(minutes=2),
                "河西面馆 燃气浓度 41%LEL",
                "gas_lel",
                41.0,
            ),
        }
        placed = [place(ev, registry, config, [], now=ev.detected_at) for ev in events.values()]
        await store_round(pool, config, placed, now - timedelta(minutes=1))
        ctx = ComposeContext(registry, config, ack_base_url="http://console.test")
        await flush_due(pool, ctx, now + timedelta(minutes=5), [])
        for ev in events.values():
            await escalate(pool, ctx, ev.id, now + timedelta(hours=3))
        async with pool.acquire() as conn:
            gas = events["gas_s4"].id
            await lifecycle.acknowledge(
                conn, gas, actor="sms_reply:site:S4:contact", now=now, via="sms_reply"
            )
            await lifecycle.close(
                conn, gas, actor="centre:centre1", now=now, reason="现场已处置"
            )  # refused: 未研判
    finally:
        await pool.close()
    return {name: ev.id for name, ev in events.items()}
