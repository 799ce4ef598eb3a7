"""What-if replay of the scripted month (tests/alerting/kpi_month.py, issue 15's golden month) with
one threshold changed: exactly the alert differences computed by hand below, the month's 误报率
(1 of 7 judged, the KPI's own figure) beside them, nothing live changed.

The month stores its four gas alarms (gas.high 红) but no readings; this test adds the readings
that make them, through the detectors' storage writer, plus every gas detector's heartbeat every
two minutes (so none goes 离线). One reading a minute around each alarm's time t, rising and
falling by 8 %LEL a minute (no rate-of-rise alarm):

* 老王饭店 A1-G (AG-200), t = 3 Nov 10:00 (研判 real):
  8 16 24 32 40 48 | **55 63 70 70 62 54** 46 38 30 22 14 6 0
* 李记面馆 A2-G (AG-200), t = 5 Nov 14:00 (研判 误报):
  8 16 24 32 40 48 | **55 56 55** 47 39 31 23 15 7 0
* 张家菜馆 B1-G (AG-300), t = 18 Nov 11:00, and 刘记小吃 C1-G (AG-300), t = 28 Nov 19:00: as A1-G.

Live thresholds (no override for AG-200/AG-300: 高报 50, 低报 20, confirm 2): each peak makes a
gas.low starting at t − 4 min (24) and a gas.high starting at t (the first ≥ 50) — 8 alerts, the
4 gas.high the very alerts the month stored. Proposed ``models.AG-200.gas.confirm_n: 4``: A1-G's
peak stays ≥ 50 for 6 readings (gas.high still starts at t), A2-G's for only 3 → its gas.high is
gone; every gas.low stays (≥ 20 for 11 readings or more). Removed: exactly A2-G's gas.high at
5 Nov 14:00, the month's one 误报. Added: none.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml
from kpi_month import END, NOW, START, cst, load_district, month_service, script_month
from test_replay import checksum

from alerting.clock import ManualClock
from alerting.config import load_config as load_routes
from alerting.replay import Proposal, detectors_from_text, replay
from alerting.replay_data import ReplayScope
from detectors.batch import BatchOutput
from detectors.config import load_config
from detectors.storage import Storage

pytestmark = pytest.mark.asyncio(loop_scope="session")

DETECTORS = Path(__file__).resolve().parents[2] / "data" / "detectors.yaml"
ROUTES = Path(__file__).resolve().parents[2] / "data" / "routes.yaml"
M = timedelta(minutes=1)
RISE = [8, 16, 24, 32, 40, 48]
FULL = [*RISE, 55, 63, 70, 70, 62, 54, 46, 38, 30, 22, 14, 6, 0]
SHORT = [*RISE, 55, 56, 55, 47, 39, 31, 23, 15, 7, 0]
PEAKS = {
    "A1-G": (cst(2026, 11, 3, 10), FULL),
    "A2-G": (cst(2026, 11, 5, 14), SHORT),
    "B1-G": (cst(2026, 11, 18, 11), FULL),
    "C1-G": (cst(2026, 11, 28, 19), FULL),
}


@pytest.fixture
async def month(pg_dsn: str, tmp_path: Path):
    await load_district(pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    clock = ManualClock(START)
    svc = await month_service(pool, clock)
    try:
        await script_month(pool, svc, clock)
        async with pool.acquire() as conn:
            storage = Storage(conn)
            await storage.prepare()
            rows = [
                (
                    dev,
                    "gas_lel",
                    t + (i - len(RISE)) * M,
                    float(v),
                    "%LEL",
                    None,
                    t + (i - len(RISE)) * M + timedelta(seconds=1),
                )
                for dev, (t, values) in PEAKS.items()
                for i, v in enumerate(values)
            ]
            beats = [
                (
                    dev,
                    START + i * 2 * M + timedelta(seconds=30),
                    "heartbeat",
                    "online",
                    None,
                    None,
                    None,
                    START + i * 2 * M + timedelta(seconds=31),
                )
                for dev in PEAKS
                for i in range(int((END - START) / (2 * M)))
            ]
            await storage.write(BatchOutput(readings=rows, statuses=beats))
            await storage.flush()
        yield pool
    finally:
        await svc.stop()
        await pool.close()


async def test_the_month_with_one_threshold_changed(month: asyncpg.Pool) -> None:
    pool = month
    raw = yaml.safe_load(DETECTORS.read_text(encoding="utf-8"))
    raw.setdefault("models", {})["AG-200"] = {"gas": {"confirm_n": 4}}
    proposal = Proposal(
        load_config(DETECTORS),
        load_routes(ROUTES),
        detectors_from_text(yaml.safe_dump(raw, allow_unicode=True), "ag200-confirm4.yaml"),
    )
    before = await checksum(pool)
    async with pool.acquire() as conn:
        r = await replay(conn, proposal, start=START, end=END, now=NOW)
    assert [(d.device_id, d.site_name, d.kind, d.starts_at, d.verdict) for d in r.removed] == [
        ("A2-G", "李记面馆", "gas.high", cst(2026, 11, 5, 14), "false")
    ]
    assert r.added == ()
    assert (r.live_alerts, r.proposed_alerts, r.live_in_store) == (8, 7, 4)
    assert (r.removed_judged, r.removed_false) == (1, 1)
    # the month's 误报率, as the KPI computes it: 研判 7 (real 4, false 1, test 1, fault 1), 误报 1
    assert (r.stored_alerts, r.judged, r.false_alarms) == (8, 7, 1) and r.false_alarm_rate == pytest.approx(
        1 / 7
    )
    assert r.sms_proposed < r.sms_live
    # the 四单 by what people did to the stored alarms (kpi_month.py's timeline), each gas.low (not
    # stored, nobody acted) climbing the whole 橙 ladder within the month (15 min, 1 h, 4 h, 24 h):
    # A1 acknowledged at +3 and 到场 at +20 → none; A2 acknowledged only at +10 → 工作提醒单 at +5,
    # then 误报 ends it; B1 acknowledged at +4, 到场 only at +60 → 问题督办单 at +30; C1 nobody → all four
    assert r.notices_live == {
        "reminder": 4 + 1 + 1,
        "warning": 4 + 1,
        "supervision": 4 + 1 + 1,
        "accountability": 4 + 1,
    }
    assert r.notices_proposed == {**r.notices_live, "reminder": 5}  # A2's gas.high gone with its 工作提醒单
    # per vendor model, beside its 误报率: AG-200 (A1-G, A2-G) 4 → 3, its stored two judged, one 误报
    models = {m.model: (m.vendor, m.live, m.proposed, m.stored, m.judged, m.false_alarms) for m in r.models}
    assert models["AG-200"] == ("安可燃气安全科技有限公司", 4, 3, 2, 2, 1)
    assert models["AG-300"] == ("安可燃气安全科技有限公司", 4, 4, 2, 1, 0)  # B1-G real, C1-G never judged
    assert "按厂商型号" in r.text() and "50.0%" in r.text()
    assert await checksum(pool) == before

    async with pool.acquire() as conn:  # the same per vendor model: AG-200's alarms only
        m = await replay(conn, proposal, start=START, end=END, now=NOW, scope=ReplayScope(model="AG-200"))
    assert [(d.device_id, d.kind) for d in m.removed] == [("A2-G", "gas.high")] and m.added == ()
    assert (m.live_alerts, m.stored_alerts, m.judged, m.false_alarms) == (4, 2, 2, 1)
