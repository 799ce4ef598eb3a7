"""生产安全事故 records (migration 037): what the 三色区域预警 counts beside alarms and hazards.

An accident is entered by the centre (``hazmon accident add``, or the console's form) with its
township, its 行业领域 (the matrix's domain), the site where known, its grade by
《生产安全事故报告和调查处理条例》第三条 and its deaths and injuries. A grade that contradicts the
deaths (3 deaths is at least 较大) is refused: the figure the bulletins count must be one. Each
record has its audit row; the SQL is :mod:`alerting.store.area_warning`'s.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alerting.errors import InvalidAction
from alerting.store import area_warning as store

__all__ = ["ACCIDENT_LEVEL_ZH", "NewAccident", "add_accident", "level_for_deaths"]

ACCIDENT_LEVEL_ZH = {
    "general": "一般事故",
    "larger": "较大事故",
    "major": "重大事故",
    "especially_major": "特别重大事故",
}
_ORDER = ("general", "larger", "major", "especially_major")


def level_for_deaths(deaths: int) -> str:
    """The least grade ``deaths`` make (条例第三条: 3 较大, 10 重大, 30 特别重大)."""
    return (
        "especially_major"
        if deaths >= 30
        else "major"
        if deaths >= 10
        else "larger"
        if deaths >= 3
        else "general"
    )


@dataclass(frozen=True, slots=True)
class NewAccident:
    occurred_at: datetime
    township_id: str
    domain: str
    level: str
    title: str
    site_id: str | None = None
    deaths: int = 0
    injuries: int = 0
    description: str = ""


async def add_accident(
    conn: asyncpg.Connection, a: NewAccident, *, actor: str, now: datetime, accident_id: str | None = None
) -> str:
    """Check and store one accident; InvalidAction (Chinese) names what is wrong, nothing written."""
    problems = []
    if not a.title.strip():
        problems.append("请填写事故名称")
    if a.level not in ACCIDENT_LEVEL_ZH:
        problems.append(
            f"事故等级 {a.level!r} 无效（可选：{'、'.join(f'{k} {v}' for k, v in ACCIDENT_LEVEL_ZH.items())}）"
        )
    elif _ORDER.index(a.level) < _ORDER.index(least := level_for_deaths(a.deaths)):
        problems.append(f"死亡{a.deaths}人至少为{ACCIDENT_LEVEL_ZH[least]}，与所填等级不符")
    if a.deaths < 0 or a.injuries < 0:
        problems.append("死亡、受伤人数不能为负数")
    if a.occurred_at > now:
        problems.append("事故发生时间不能晚于现在")
    if not await conn.fetchval("SELECT 1 FROM townships WHERE id = $1", a.township_id):
        problems.append(f"镇街 {a.township_id!r} 未登记")
    if not await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", a.domain):
        problems.append(f"行业领域 {a.domain!r} 未登记")
    if a.site_id:
        town = await conn.fetchval("SELECT township_id FROM sites WHERE id = $1", a.site_id)
        if town is None:
            problems.append(f"场所 {a.site_id!r} 未登记")
        elif town != a.township_id:
            problems.append(f"场所 {a.site_id!r} 不在所填镇街内")
    if problems:
        raise InvalidAction("；".join(problems))
    aid = accident_id or f"acc-{a.occurred_at:%Y%m%d}-{secrets.token_hex(3)}"
    async with conn.transaction():
        done = await store.insert_accident(
            conn,
            accident_id=aid,
            occurred_at=a.occurred_at,
            township_id=a.township_id,
            site_id=a.site_id or None,
            domain=a.domain,
            level=a.level,
            deaths=a.deaths,
            injuries=a.injuries,
            title=a.title.strip(),
            description=a.description.strip(),
            actor=actor,
            now=now,
        )
    if not done:
        raise InvalidAction(f"事故编号 {aid} 已存在，未重复登记")
    return aid
