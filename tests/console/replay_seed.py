"""A scripted morning for the console's 模拟回放 tests: G1 (艾克美 GD-1 at 老王饭店) one gas reading a
minute 09:00–10:30 China time on 2026-11-03, written through the detectors' storage writer, with
two peaks — 21 23 24 23 %LEL from 09:13 (a 低报 at the live 20, none at a proposed 25) and
16 17 18 17 from 09:43 (none at 20, a 低报 at a proposed 15) — and the live alert of the first peak
judged 误报 (tests/alerting/test_replay.py computes the same script by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from console_district import make_alert

from alerting import lifecycle as lc
from detectors.batch import BatchOutput
from detectors.storage import Storage
from hazmon.contracts import Severity, Verdict

__all__ = ["T9", "START", "END", "minute", "seed_replay", "proposed"]

T9 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
START, END = T9, T9 + timedelta(minutes=91)
_PEAKS = {
    10: 4,
    11: 8,
    12: 12,
    13: 21,
    14: 23,
    15: 24,
    16: 23,
    17: 12,
    18: 8,
    19: 4,
    40: 4,
    41: 8,
    42: 12,
    43: 16,
    44: 17,
    45: 18,
    46: 17,
    47: 12,
    48: 8,
    49: 4,
}


def minute(m: int) -> datetime:
    return T9 + timedelta(minutes=m)


async def seed_replay(conn: Any) -> str:
    """The readings and the judged alert; returns the alert's id."""
    rows = [
        ("G1", "gas_lel", minute(m), float(_PEAKS.get(m, 0)), "%LEL", None, minute(m) + timedelta(seconds=1))
        for m in range(91)
    ]
    storage = Storage(conn)
    await storage.prepare()
    await storage.write(BatchOutput(readings=rows))
    await storage.flush()
    aid = await make_alert(
        conn,
        "G1",
        "S1",
        "gas",
        "gas.low",
        Severity.ORANGE,
        now=minute(13),
        township_id="T1",
        department_ids=("D-ZJ",),
        summary="老王饭店 燃气浓度 23%LEL",
    )
    await lc.verify(
        conn, aid, actor="centre1", now=minute(20), verdict=Verdict.FALSE, reason="误报：炒菜油烟"
    )
    return aid


def proposed(live: str, model: str, low: float) -> str:
    """The live thresholds file with a 低报 set point for one model."""
    import yaml

    raw = yaml.safe_load(live)
    raw.setdefault("models", {})[model] = {"gas": {"low_lel": low}}
    return yaml.safe_dump(raw, allow_unicode=True)
