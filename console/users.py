"""Console user accounts: creation with scope checks, and the demo accounts of each role."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from alerting.matrix import normalize_phone
from console.auth import hash_password
from console.scope import Role
from hazmon.errors import HazmonError

__all__ = ["UserError", "NewUser", "create_user", "create_demo_accounts", "USERNAME_RE", "MIN_PASSWORD"]

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
MIN_PASSWORD = 10


class UserError(HazmonError):
    """A user could not be created; the message names the field and the problem."""


@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    role: Role
    display_name: str = ""
    department_id: str | None = None
    township_id: str | None = None
    site_ids: tuple[str, ...] = ()
    vendor_id: str | None = None
    #: grid member: its 村/社区; maintainer: its 维保单位 (registry ``maintainers``)
    village_ids: tuple[str, ...] = ()
    maintainer_id: str | None = None
    #: the mobile it signs in with by SMS code (field roles: console/otp.py)
    phone: str | None = None


async def _exists(conn: Any, table: str, ids: list[str]) -> list[str]:
    rows = await conn.fetch(f"SELECT id FROM {table} WHERE id = ANY($1::text[])", ids)  # noqa: S608 (fixed names)
    found = {r["id"] for r in rows}
    return [i for i in ids if i not in found]


async def create_user(conn: Any, user: NewUser, *, actor: str) -> None:
    """Validate and insert one user; :class:`UserError` names what is wrong."""
    if not USERNAME_RE.match(user.username):
        raise UserError("username: 3–32 of a-z 0-9 _ . - starting with a letter or digit")
    if len(user.password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")
    role = Role(user.role)
    need = {
        Role.DEPARTMENT: ("department_id", "departments", [user.department_id] if user.department_id else []),
        Role.TOWNSHIP: ("township_id", "townships", [user.township_id] if user.township_id else []),
        Role.BUSINESS: ("site_ids", "sites", list(user.site_ids)),
        Role.VENDOR: ("vendor_id", "vendors", [user.vendor_id] if user.vendor_id else []),
        Role.GRID_MEMBER: ("village_ids", "villages", list(user.village_ids)),
        Role.MAINTAINER: ("maintainer_id", "maintainers", [user.maintainer_id] if user.maintainer_id else []),
    }
    for r, (fname, _t, ids) in need.items():
        if r is role and not ids:
            raise UserError(f"{fname}: required for role {role.value}")
        if r is not role and ids:
            raise UserError(f"{fname}: only for role {r.value}, not {role.value}")
    if role in need:
        fname, table, ids = need[role]
        missing = await _exists(conn, table, ids)
        if missing:
            raise UserError(f"{fname}: unknown {table[:-1]} id(s): {', '.join(missing)}")
    if await conn.fetchval("SELECT 1 FROM console_users WHERE username = $1", user.username):
        raise UserError(f"username: '{user.username}' already exists")
    phone = None
    if user.phone:
        phone = normalize_phone(user.phone)
        if phone is None:
            raise UserError("phone: 11 位手机号码 (a mainland mobile)")
        if await conn.fetchval("SELECT 1 FROM console_users WHERE phone = $1 AND active", phone):
            raise UserError(f"phone: {phone} 已属于另一个账号 (already an active account's)")
    await conn.execute(
        """INSERT INTO console_users (username, display_name, role, password_hash, department_id,
                                      township_id, site_ids, vendor_id, village_ids, maintainer_id, phone)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        user.username, user.display_name, role.value, await asyncio.to_thread(hash_password, user.password),
        user.department_id, user.township_id, list(user.site_ids), user.vendor_id, list(user.village_ids),
        user.maintainer_id, phone,
    )
    await conn.execute(
        "INSERT INTO console_audit (actor, action, target, detail) VALUES ($1, 'user.create', $2, $3::jsonb)",
        actor, user.username, json.dumps({"role": role.value}),
    )


async def create_demo_accounts(conn: Any, *, password: str | None = None) -> list[tuple[str, str, str]]:
    """One account per role, scoped to the first department/township/business/vendor of the
    loaded registry; returns ``(username, password, role)`` for printing. Existing demo
    accounts are replaced (new password), so running the demo twice works."""
    # the department whose matrix domains hold the most devices (住建 for gas in the sample)
    dept = await conn.fetchval(
        """SELECT d.id FROM departments d
           JOIN matrix_rules m ON d.id = ANY(m.department_ids) AND cardinality(m.industries) = 0
           JOIN devices dv ON dv.domain = m.domain
           GROUP BY d.id ORDER BY count(*) DESC, d.id LIMIT 1"""
    ) or await conn.fetchval("SELECT id FROM departments ORDER BY id LIMIT 1")
    township = await conn.fetchval(
        "SELECT township_id FROM sites GROUP BY township_id ORDER BY count(*) DESC, township_id LIMIT 1"
    )
    site = await conn.fetchval(
        "SELECT site_id FROM devices GROUP BY site_id ORDER BY count(*) DESC, site_id LIMIT 1"
    )
    vendor = await conn.fetchval("SELECT vendor_id FROM devices GROUP BY vendor_id ORDER BY count(*) DESC LIMIT 1")
    # the field roles: the village with the most sites, the maintainer of the most lifts
    village = await conn.fetchval(
        "SELECT village_id FROM sites WHERE village_id IS NOT NULL GROUP BY village_id"
        " ORDER BY count(*) DESC, village_id LIMIT 1")
    maintainer = await conn.fetchval(
        "SELECT maintainer_id FROM devices WHERE maintainer_id IS NOT NULL GROUP BY maintainer_id"
        " ORDER BY count(*) DESC, maintainer_id LIMIT 1")
    plans: list[NewUser] = []

    def pw() -> str:
        return password or secrets.token_urlsafe(9)

    plans.append(NewUser("demo-centre", pw(), Role.CENTRE, "中心值班员"))
    plans.append(NewUser("demo-admin", pw(), Role.ADMIN, "系统管理员"))
    if dept:
        plans.append(NewUser("demo-dept", pw(), Role.DEPARTMENT, "行业部门", department_id=dept))
    if township:
        plans.append(NewUser("demo-township", pw(), Role.TOWNSHIP, "镇街值班", township_id=township))
    if site:
        plans.append(NewUser("demo-business", pw(), Role.BUSINESS, "企业负责人", site_ids=(site,)))
    if vendor:
        plans.append(NewUser("demo-vendor", pw(), Role.VENDOR, "设备厂商", vendor_id=vendor))
    if village:
        plans.append(NewUser("demo-grid", pw(), Role.GRID_MEMBER, "网格员", village_ids=(village,)))
    if maintainer:
        plans.append(NewUser("demo-maint", pw(), Role.MAINTAINER, "维保单位", maintainer_id=maintainer))
    out = []
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM console_users WHERE username = ANY($1::text[])", [u.username for u in plans]
        )
        for user in plans:
            await create_user(conn, user, actor="system:demo")
            out.append((user.username, user.password, user.role.value))
    return out
