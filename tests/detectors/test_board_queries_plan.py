"""The board's reads for a long shift (alerting/queries_board.py, issue 14 item 7) on the same
filled database as test_console_queries.py (60,000 alerts, 2,000 sites, 10,000 devices), each
statement EXPLAINed as it is sent: an index on alerts, never a sequential scan of alerting's
tables — the history's count and its search included (alerts has no index on device_id: a
device is searched through its site)."""

from __future__ import annotations

from typing import Any

import asyncpg
from test_console_queries import _FILL_ALERTING, ALERTING_TABLES, CENTRE, OPEN, TOWNSHIP, _explain, _Recording

from alerting import queries_board as qb

#: the closed alerts get their closing time (the history's order), one hour after their start
_FILL = _FILL_ALERTING + """
UPDATE alerts SET closed_at = starts_at + interval '1 hour' WHERE phase = 'closed';
ANALYZE alerts;
"""

READS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "history of a township": (
        lambda c: qb.closed_history(c, TOWNSHIP, qb.HistoryFilter(), limit=20, offset=0),
        ("alerts_township|alerts_closed_at", "alerts_township|alerts_closed_at")),
    "history: the centre searches a site's name": (
        lambda c: qb.closed_history(c, CENTRE, qb.HistoryFilter(text="饭店42"), limit=20, offset=0),
        ("alerts_site", "alerts_site|alerts_closed_at")),
    "history: the centre searches a device": (
        lambda c: qb.closed_history(c, CENTRE, qb.HistoryFilter(device_id="dev-00042"), limit=20, offset=0),
        ("alerts_site", "alerts_site|alerts_closed_at")),
    "overdue marks of the board's 200 alerts": (
        lambda c: qb.overdue_marks(c, [f"{i:032x}" for i in range(200)]), ("alerts_pkey",)),
    "wall of a township": (
        lambda c: qb.wall_summary(c, TOWNSHIP), (OPEN, OPEN, f"{OPEN}|alerts_township", OPEN)),
}


async def test_board_reads_use_indexes(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(_FILL)
        for name, (read, indexes) in READS.items():
            rec = _Recording(conn)
            await read(rec)
            assert len(rec.statements) == len(indexes), f"{name}: {len(rec.statements)} statements"
            for (sql, args), index in zip(rec.statements, indexes, strict=True):
                used, text = await _explain(conn, sql, args)
                assert any(f'"Index Name": "{i}"' in used for i in index.split("|")), (
                    f"{name}: {index}\n{text}")
                seq = [ln for ln in text.splitlines()
                       if "Seq Scan" in ln and any(f" on {t} " in f"{ln} " for t in ALERTING_TABLES)]
                assert not seq, f"{name}: sequential scan\n{text}"
    finally:
        await conn.close()
