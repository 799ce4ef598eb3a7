"""A hazard (隐患) goes to the departments the responsibility matrix names for its domain *and the
site's industry* (三管三必须), the same departments the alarm routing reaches — on the sample
district as `hazmon registry import data/sample` loads it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from alerting import ledger
from alerting.matrix import resolve
from hazmon.registry import import_registry, load_registry

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


async def _find(conn: asyncpg.Connection, site_id: str, domain: str) -> tuple[str, ...]:
    h = await ledger.find_hazard(conn, actor="insp", now=NOW, site_id=site_id, domain=domain, title="隐患",
                                 hazard_id=f"HZ-{site_id}-{domain}")
    return h.department_ids


async def test_hazard_departments_follow_the_sites_industry(pg_dsn: str) -> None:
    await import_registry(pg_dsn, ROOT / "data" / "sample")
    conn = await asyncpg.connect(pg_dsn)
    try:
        reg = await load_registry(conn)
        # 李记饺子馆 (餐饮): gas → 住建 only; the gas-elderly rule (养老 → 民政) is not its business
        assert reg.sites["S00001"].industry == "餐饮"
        assert await _find(conn, "S00001", "gas") == ("zj",)
        # 永安敬老院 (养老): gas → 住建 and 民政; fire → 应急, 消防救援 and 民政 — not 教育/卫健/文化
        assert reg.sites["S00009"].industry == "养老"
        assert await _find(conn, "S00009", "gas") == ("mz", "zj")
        assert await _find(conn, "S00009", "fire") == ("mz", "xf", "yj")
        # 长乐实验学校 (学校): fire → 应急, 消防救援 and 教育
        assert await _find(conn, "S00077", "fire") == ("jy", "xf", "yj")
        # a site the registry does not know: only the rules without an industry filter
        assert await _find(conn, "S-UNKNOWN", "fire") == ("xf", "yj")
        # every site and every domain of its devices: the ledger names the departments its alarms reach
        pairs = sorted({(d.site_id, d.domain) for d in reg.devices.values()})
        assert len({s for s, _ in pairs}) >= 200
        for site_id, domain in pairs:
            routed = tuple(sorted(resolve(reg, site_id=site_id, domain=domain).department_ids))
            assert await _find(conn, site_id, domain) == routed, (site_id, domain)
    finally:
        await conn.close()
