"""``hazards`` and ``hazard_transitions``: the rows of the hazards ledger (隐患台账).

The decisions (which phase may follow which) are :mod:`alerting.ledger`'s; these are its
reads and writes, each inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from alerting.store.alerts import Transition

__all__ = [
    "HazardRecord",
    "site_township",
    "site_departments",
    "insert_hazard",
    "fetch_hazard",
    "lock_hazard",
    "update_hazard",
    "insert_hazard_transition",
    "hazard_transitions",
    "lock_due_hazards",
    "hazard_due",
    "set_overdue",
]


@dataclass(frozen=True, slots=True)
class HazardRecord:
    """One row of ``hazards``."""

    id: str
    site_id: str
    township_id: str
    domain: str
    department_ids: tuple[str, ...]
    title: str
    description: str
    grade: str
    source_alert_id: str | None
    phase: str
    found_at: datetime
    found_by: str
    deadline: datetime | None
    supervisor: str
    rectified_at: datetime | None
    struck_off_at: datetime | None
    version: int
    updated_at: datetime
    #: 五落实 (责任人、措施、资金、预案; 时限 is ``deadline``), 整改 and 复查 (migration 031)
    owner: str = ""
    measures: str = ""
    funds: str = ""
    plan: str = ""
    rectify_note: str = ""
    attachment_ids: tuple[str, ...] = ()
    reviewed_at: datetime | None = None
    reviewed_by: str = ""
    review_note: str = ""
    overdue_level: int = 0
    overdue_due_at: datetime | None = None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> HazardRecord:
        return cls(
            id=r["id"], site_id=r["site_id"], township_id=r["township_id"], domain=r["domain"],
            department_ids=tuple(r["department_ids"] or ()), title=r["title"], description=r["description"],
            grade=r["grade"], source_alert_id=r["source_alert_id"], phase=r["phase"], found_at=r["found_at"],
            found_by=r["found_by"], deadline=r["deadline"], supervisor=r["supervisor"],
            rectified_at=r["rectified_at"], struck_off_at=r["struck_off_at"], version=r["version"],
            updated_at=r["updated_at"], owner=r["owner"], measures=r["measures"], funds=r["funds"],
            plan=r["plan"], rectify_note=r["rectify_note"], attachment_ids=tuple(r["attachment_ids"] or ()),
            reviewed_at=r["reviewed_at"], reviewed_by=r["reviewed_by"], review_note=r["review_note"],
            overdue_level=r["overdue_level"], overdue_due_at=r["overdue_due_at"],
        )

    def overdue(self, now: datetime) -> bool:
        """逾期: past its 限期 and not yet rectified."""
        return (self.deadline is not None and now > self.deadline
                and self.phase in ("registered", "supervised"))


async def site_township(conn: asyncpg.Connection, site_id: str) -> str:
    return await conn.fetchval("SELECT township_id FROM sites WHERE id=$1", site_id) or ""


async def site_departments(conn: asyncpg.Connection, site_id: str, domain: str) -> list[str]:
    """The departments the responsibility matrix names for a ``domain`` hazard at ``site_id``
    (sorted, distinct): the domain's rules without an industry filter plus those naming the site's
    industry, as :meth:`hazmon.registry.Registry.rules_for` chooses them for alarms (三管三必须:
    gas at a 养老院 concerns 民政 as well as 住建, gas at a restaurant 住建 only). A site not in the
    registry has no industry: only the unfiltered rules apply."""
    rows = await conn.fetch(
        """SELECT m.department_ids FROM matrix_rules m
           WHERE m.domain = $1
             AND (cardinality(m.industries) = 0
                  OR (SELECT s.industry FROM sites s WHERE s.id = $2) = ANY (m.industries))
           ORDER BY m.id""",
        domain, site_id)
    return sorted({d for r in rows for d in r[0]})


async def insert_hazard(
    conn: asyncpg.Connection, hazard_id: str, *, site_id: str, township_id: str, domain: str,
    department_ids: Sequence[str], title: str, description: str, grade: str, source_alert_id: str | None,
    now: datetime, actor: str,
) -> HazardRecord | None:
    """The new ``found`` hazard, or None when ``hazard_id`` is already on record."""
    row = await conn.fetchrow(
        """INSERT INTO hazards (id, site_id, township_id, domain, department_ids, title, description, grade,
               source_alert_id, phase, found_at, found_by, updated_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'found',$10,$11,$10) ON CONFLICT (id) DO NOTHING RETURNING *""",
        hazard_id, site_id, township_id, domain, list(department_ids), title, description, grade,
        source_alert_id, now, actor,
    )
    return None if row is None else HazardRecord.from_row(row)


async def fetch_hazard(conn: asyncpg.Connection, hazard_id: str) -> HazardRecord | None:
    row = await conn.fetchrow("SELECT * FROM hazards WHERE id=$1", hazard_id)
    return None if row is None else HazardRecord.from_row(row)


async def lock_hazard(conn: asyncpg.Connection, hazard_id: str) -> HazardRecord | None:
    """The hazard, its row locked for a decision (inside the caller's transaction)."""
    row = await conn.fetchrow("SELECT * FROM hazards WHERE id=$1 FOR UPDATE", hazard_id)
    return None if row is None else HazardRecord.from_row(row)


async def update_hazard(conn: asyncpg.Connection, hazard_id: str, cols: Mapping[str, Any]) -> HazardRecord:
    """Set ``cols`` (trusted column names) and bump the version; the new state."""
    assigns = ", ".join(f"{k}=${i + 2}" for i, k in enumerate(cols))
    row = await conn.fetchrow(f"UPDATE hazards SET {assigns}, version=version+1 WHERE id=$1 RETURNING *",
                              hazard_id, *cols.values())
    assert row is not None
    return HazardRecord.from_row(row)


async def insert_hazard_transition(
    conn: asyncpg.Connection, hazard_id: str, action: str, from_phase: str, to_phase: str, outcome: str,
    actor: str, at: datetime, reason: str, *, version: int, photo_ref: str = "",
    detail: Mapping[str, Any] | None = None,
) -> int:
    """One audit row of ``hazard_transitions``; its id."""
    return int(await conn.fetchval(
        """INSERT INTO hazard_transitions (hazard_id, action, from_phase, to_phase, outcome, actor, at,
               reason, photo_ref, detail, version)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10::jsonb,$11) RETURNING id""",
        hazard_id, action, from_phase, to_phase, outcome, actor, at, reason, photo_ref,
        json.dumps(dict(detail or {}), ensure_ascii=False), version,
    ))


async def hazard_transitions(conn: asyncpg.Connection, hazard_id: str) -> list[Transition]:
    """Every recorded action on the hazard, oldest first."""
    rows = await conn.fetch(
        "SELECT *, ''::text AS note, NULL::text AS verdict FROM hazard_transitions"
        " WHERE hazard_id=$1 ORDER BY id",
        hazard_id)
    return [Transition.from_row(r) for r in rows]


async def hazard_due(conn: asyncpg.Connection, now: datetime) -> bool:
    """Whether any hazard's overdue step is due: one probe of ``hazards_overdue_due``, no lock."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hazards WHERE overdue_due_at IS NOT NULL AND overdue_due_at <= $1)", now))


async def lock_due_hazards(conn: asyncpg.Connection, now: datetime, limit: int) -> list[HazardRecord]:
    """The hazards whose overdue step is due at ``now``, locked (skipping those another pass
    holds); the partial index ``hazards_overdue_due`` makes this free when none is due."""
    rows = await conn.fetch(
        """SELECT * FROM hazards WHERE overdue_due_at IS NOT NULL AND overdue_due_at <= $1
           ORDER BY overdue_due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now, limit)
    return [HazardRecord.from_row(r) for r in rows]


async def set_overdue(conn: asyncpg.Connection, hazard_id: str, level: int, due_at: datetime | None) -> None:
    """Record the overdue step told (not a phase change: the version stays)."""
    await conn.execute("UPDATE hazards SET overdue_level=$2, overdue_due_at=$3 WHERE id=$1",
                       hazard_id, level, due_at)
