"""What-if replay of a fire panel's own alarm codes (stored device events, no readings): the
幸福商场 panel P2 (消防主机), heard every minute, reports 火警 from three detectors — 3F
1-1/40/1-001 at 10:00:00, and in 5F 1-1/40/1-010 at 10:20:00 and 1-1/40/1-011 at 10:20:30 — and
复位 at 10:40.

* live (``fire.confirm: none``): every detector alarm is an alarm → three fire.alarm, one per part,
  starting 10:00:00, 10:20:00 and 10:20:30;
* proposed ``models.消防主机.fire.confirm: two_in_zone`` (GB 50116-2013 §4.1.6: two independent
  signals in one zone within 300 s): 3F's single detector raises nothing; 5F's two make one alarm
  of the zone (component ``zone:5F``) starting at the first, 10:20:00.

So: removed exactly the three part alarms, added exactly the zone's one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml
from alerting_helpers import ROUTES

from alerting.config import load_config as load_routes
from alerting.replay import Proposal, detectors_from_text, replay
from alerting.replay_data import ReplayScope
from detectors.batch import BatchOutput
from detectors.config import load_config
from detectors.storage import Storage

pytestmark = pytest.mark.asyncio(loop_scope="session")

DETECTORS = Path(__file__).resolve().parents[2] / "data" / "detectors.yaml"
T10 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 China time
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T10 + timedelta(minutes=minutes)


async def test_two_in_zone_replaces_three_part_alarms_by_the_zone_alarm(pool: asyncpg.Pool) -> None:
    events = [
        ("P2", at(m), code, comp, True, zone, json.dumps({}), at(m) + timedelta(seconds=1))
        for m, code, comp, zone in (
            (0, "fire_alarm", "1-1/40/1-001", "3F"),
            (20, "fire_alarm", "1-1/40/1-010", "5F"),
            (20.5, "fire_alarm", "1-1/40/1-011", "5F"),
            (40, "reset", "", ""),
        )
    ]
    async with pool.acquire() as conn:
        storage = Storage(conn)
        await storage.prepare()
        beats = [
            (
                "P2",
                at(m) + timedelta(seconds=5),
                "heartbeat",
                "online",
                None,
                None,
                None,
                at(m) + timedelta(seconds=6),
            )
            for m in range(60)
        ]  # the panel's heartbeat: never 离线
        await storage.write(BatchOutput(device_events=events, statuses=beats))
        raw = yaml.safe_load(DETECTORS.read_text(encoding="utf-8"))
        raw.setdefault("models", {})["消防主机"] = {"fire": {"confirm": "two_in_zone"}}
        proposal = Proposal(
            load_config(DETECTORS),
            load_routes(ROUTES),
            detectors_from_text(yaml.safe_dump(raw, allow_unicode=True), "two-in-zone.yaml"),
        )
        r = await replay(conn, proposal, start=T10, end=at(60), now=NOW, scope=ReplayScope(model="消防主机"))
    assert r.rows == 64  # four stored device events and sixty heartbeats, no readings
    assert [(d.device_id, d.kind, d.component, d.starts_at) for d in r.removed] == [
        ("P2", "fire.alarm", "1-1/40/1-001", at(0)),
        ("P2", "fire.alarm", "1-1/40/1-010", at(20)),
        ("P2", "fire.alarm", "1-1/40/1-011", at(20.5)),
    ]
    assert [(d.device_id, d.site_name, d.kind, d.component, d.starts_at, d.ends_at) for d in r.added] == [
        ("P2", "幸福商场", "fire.alarm", "zone:5F", at(20), at(40))
    ]
    assert (r.live_alerts, r.proposed_alerts) == (3, 1)
    assert r.sms_proposed < r.sms_live
