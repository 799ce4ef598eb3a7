"""The sample district (data/sample, with its boundaries.geojson) in a fresh database for the map
tests: imported by the registry importer, demo accounts, and a few open alarms of each colour
taken through alerting's own record_events (console_district.make_alert)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from console_district import make_alert

from console.users import create_demo_accounts
from hazmon.contracts import Severity
from hazmon.registry import import_registry

__all__ = ["PASSWORD", "seed_sample"]

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
PASSWORD = "map-demo-密码-1"
# (how many gas sites, the colour) of the alarms the map shows
_ALARMS = ((3, Severity.RED), (3, Severity.ORANGE), (4, Severity.YELLOW), (2, Severity.BLUE))


async def seed_sample(dsn: str) -> dict[str, str]:
    """Import the sample, make the demo accounts; returns role → username."""
    await import_registry(dsn, SAMPLE)
    conn = await asyncpg.connect(dsn)
    try:
        accounts = await create_demo_accounts(conn, password=PASSWORD)
        rows = await conn.fetch(
            """SELECT DISTINCT ON (d.site_id) d.id, d.site_id, s.township_id FROM devices d
               JOIN sites s ON s.id = d.site_id WHERE d.domain = 'gas' ORDER BY d.site_id, d.id""")
        now, i = datetime.now(UTC), 0
        for n, severity in _ALARMS:
            for _ in range(n):
                r = rows[(i * 17) % len(rows)]
                i += 1
                await make_alert(conn, r["id"], r["site_id"], "gas", "gas.high", severity, now=now,
                                 township_id=r["township_id"], department_ids=("zj",),
                                 summary="可燃气体浓度超过报警值")
    finally:
        await conn.close()
    return {role: username for username, _pw, role in accounts}
