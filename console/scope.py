"""Roles and what each may see (数据权限).

Every list and every read by id goes through a :class:`Scope`, so a township user who edits an
id in the address bar gets a 404, never another township's alarm. The scope is built per
request from the user row and, for a department user, from the live responsibility matrix
(责任矩阵: department → domains, 三管三必须), so a matrix edit changes what a department sees
at once.

Role                          sees
----------------------------  ---------------------------------------------------------------
centre  (中心值班员)           everything
admin   (系统管理员)           everything, plus user management
department (行业监管部门)      sites, devices, events, alerts, hazards of its matrix domains
township (镇/街道)             its own township's sites and what is at them
business (企业)                its own sites
vendor  (设备厂商)             its own devices' health and ingest diagnostics only
grid_member (网格员)           the sites of its own 村/社区 (the account's villages, and every
                               village whose registry grid_member_phone is its phone) and what is
                               at them
maintainer (维保单位)          the lifts it maintains (devices.maintainer_id), their alarms and
                               events, and the sites they are at

Personal data: phone numbers are shown in full only to roles that must call people
(centre, admin, the township and the grid member for their own area); others get ``138****5678``.
The two field roles (:data:`FIELD_ROLES`) usually sign in by phone and SMS code (console/otp.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from alerting.queries import Params

__all__ = ["Role", "Principal", "Scope", "Params", "build_scope", "mask_phone", "ALL_ROLES", "FIELD_ROLES"]


class Role(StrEnum):
    CENTRE = "centre"
    DEPARTMENT = "department"
    TOWNSHIP = "township"
    BUSINESS = "business"
    VENDOR = "vendor"
    ADMIN = "admin"
    GRID_MEMBER = "grid_member"
    MAINTAINER = "maintainer"

    @property
    def zh(self) -> str:
        return _ROLE_ZH[self]


_ROLE_ZH = {
    Role.CENTRE: "中心值班员",
    Role.DEPARTMENT: "行业部门",
    Role.TOWNSHIP: "镇街",
    Role.BUSINESS: "企业",
    Role.VENDOR: "设备厂商",
    Role.ADMIN: "系统管理员",
    Role.GRID_MEMBER: "网格员",
    Role.MAINTAINER: "维保单位",
}

ALL_ROLES: frozenset[Role] = frozenset(Role)
#: the people who work outside the centre: signed in by phone and one-time SMS code
FIELD_ROLES: frozenset[Role] = frozenset({Role.GRID_MEMBER, Role.MAINTAINER})


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request."""

    username: str
    role: Role
    display_name: str = ""
    department_id: str | None = None
    township_id: str | None = None
    site_ids: tuple[str, ...] = ()
    vendor_id: str | None = None
    village_ids: tuple[str, ...] = ()
    maintainer_id: str | None = None
    phone: str | None = None
    csrf_token: str = ""
    via: str = "cookie"  # "cookie" (page: CSRF checked) or "bearer" (API client)

    @property
    def actor(self) -> str:
        """How this user is named in audit trails (alert transitions, silences, matrix edits)."""
        return f"{self.role.value}:{self.username}"


@dataclass(frozen=True)
class Scope:
    """What one principal may see, as SQL conditions and as Python predicates (live board)."""

    role: Role
    domains: frozenset[str] | None = None  # department: matrix domains
    #: department: the matrix rules behind ``domains`` as (domain, industries); empty industries
    #: = every site (a rule like 消防 → 民政 only for 养老 sites limits the department to those)
    rules: tuple[tuple[str, frozenset[str]], ...] = ()
    department_id: str | None = None
    township_id: str | None = None
    #: business: its sites; grid member: the sites of its villages; maintainer: where its lifts are
    site_ids: frozenset[str] = field(default_factory=frozenset)
    vendor_id: str | None = None
    village_ids: frozenset[str] = field(default_factory=frozenset)  # grid member
    maintainer_id: str | None = None
    device_ids: frozenset[str] = field(default_factory=frozenset)  # maintainer: the lifts it maintains

    @property
    def unrestricted(self) -> bool:
        return self.role in (Role.CENTRE, Role.ADMIN)

    @property
    def sees_phones(self) -> bool:
        return self.role in (Role.CENTRE, Role.ADMIN, Role.TOWNSHIP, Role.GRID_MEMBER)

    # --- SQL ------------------------------------------------------------------------------

    def _dept_sql(self, p: Params, domain_col: str, site_col: str) -> str:
        """A department's rows: domain of an unrestricted rule, or domain + site industry of
        an industry-limited one."""
        everywhere = sorted({d for d, ind in self.rules if not ind} or ())
        parts = [f"{domain_col} = ANY({p(everywhere)}::text[])"]
        for domain, industries in self.rules:
            if industries:
                parts.append(
                    f"({domain_col} = {p(domain)} AND {site_col} IN "
                    f"(SELECT id FROM sites WHERE industry = ANY({p(sorted(industries))}::text[])))"
                )
        return "(" + " OR ".join(parts) + ")"

    def _role_sql(self, p: Params, *, township: Callable[[str], str], site_col: str,
                  department: Callable[[], str], device_col: str | None = None) -> str:
        """The condition of this scope's role: ``township`` turns the township parameter into a
        condition, ``site_col`` holds the row's site id, ``department`` gives a department's,
        ``device_col`` the row's device id (a maintainer sees its lifts' rows; on rows without
        one, the sites they are at)."""
        if self.unrestricted:
            return "TRUE"
        if self.role is Role.TOWNSHIP:
            return township(p(self.township_id))
        by_site = self.role in (Role.BUSINESS, Role.GRID_MEMBER)
        if by_site or (self.role is Role.MAINTAINER and not device_col):
            return f"{site_col} = ANY({p(sorted(self.site_ids))}::text[])"
        if self.role is Role.MAINTAINER:  # by site too: alerts and events are indexed by site, not device
            return (f"({site_col} = ANY({p(sorted(self.site_ids))}::text[])"
                    f" AND {device_col} = ANY({p(sorted(self.device_ids))}::text[]))")
        if self.role is Role.DEPARTMENT:
            return department()
        return "FALSE"  # vendor: no site data

    def sites_sql(self, p: Params, alias: str = "s") -> str:
        """Condition on a ``sites`` row."""
        return self._role_sql(
            p, township=lambda t: f"{alias}.township_id = {t}", site_col=f"{alias}.id",
            department=lambda: f"EXISTS (SELECT 1 FROM devices sd WHERE sd.site_id = {alias}.id"
                               f" AND {self._dept_sql(p, 'sd.domain', 'sd.site_id')})",
        )

    def devices_sql(self, p: Params, alias: str = "d") -> str:
        """Condition on a ``devices`` row."""
        if self.role is Role.VENDOR:
            return f"{alias}.vendor_id = {p(self.vendor_id)}"
        if self.role is Role.MAINTAINER:
            return f"{alias}.id = ANY({p(sorted(self.device_ids))}::text[])"
        return self._site_domain_sql(p, alias)

    def events_sql(self, p: Params, alias: str = "e") -> str:
        """Condition on an ``events`` row (site_id, domain)."""
        return self._site_domain_sql(p, alias)

    def _site_domain_sql(self, p: Params, alias: str) -> str:
        """Condition on a row with ``site_id`` and ``domain`` (devices, events): the scope of
        every role but the vendor's, which only devices carry."""
        return self._role_sql(
            p, township=lambda t: f"{alias}.site_id IN (SELECT id FROM sites WHERE township_id = {t})",
            site_col=f"{alias}.site_id", device_col=f"{alias}.device_id",
            department=lambda: self._dept_sql(p, f"{alias}.domain", f"{alias}.site_id"),
        )

    def alerts_sql(self, p: Params, alias: str = "a") -> str:
        """Condition on an ``alerts`` (or ``hazards``) row: they carry township_id and
        department_ids, fixed when the alert was created (an alerting.queries.Visibility). A
        maintainer's by device: hazards (no device) are not its to read (console/routes/hazards.py)."""
        return self._role_sql(
            p, township=lambda t: f"{alias}.township_id = {t}", site_col=f"{alias}.site_id",
            device_col=f"{alias}.device_id" if alias != "h" else None,
            department=lambda: f"({self._dept_sql(p, f'{alias}.domain', f'{alias}.site_id')} "
                               f"OR {p(self.department_id)} = ANY({alias}.department_ids))",
        )

    def vendors_sql(self, p: Params, column: str) -> str:
        """Condition on a vendor id column (dead letters)."""
        if self.unrestricted:
            return "TRUE"
        if self.role is Role.VENDOR:
            return f"{column} = {p(self.vendor_id)}"
        return "FALSE"

    # --- Python (live board) ----------------------------------------------------------------

    def sees_alert(self, item: dict[str, Any]) -> bool:
        """Same rule as :meth:`alerts_sql` for an item pushed on the live board."""
        if self.unrestricted:
            return True
        if self.role is Role.TOWNSHIP:
            return item.get("township_id") == self.township_id
        if self.role in (Role.BUSINESS, Role.GRID_MEMBER):
            return item.get("site_id") in self.site_ids
        if self.role is Role.MAINTAINER:
            return item.get("device_id") in self.device_ids
        if self.role is Role.DEPARTMENT:
            everywhere = {d for d, ind in self.rules if not ind}
            return item.get("domain") in everywhere or self.department_id in (item.get("department_ids") or ())
        return False

    def phone(self, value: str | None) -> str | None:
        return value if self.sees_phones else mask_phone(value)


async def build_scope(conn: Any, principal: Principal) -> Scope:
    """The scope of ``principal``; a department's domains come from the live matrix."""
    role = principal.role
    if role is Role.DEPARTMENT:
        rows = await conn.fetch(
            "SELECT domain, industries FROM matrix_rules WHERE $1 = ANY(department_ids) ORDER BY id",
            principal.department_id,
        )
        rules = tuple((r["domain"], frozenset(r["industries"] or ())) for r in rows)
        return Scope(role, domains=frozenset(d for d, _ in rules), rules=rules, department_id=principal.department_id)
    if role is Role.GRID_MEMBER:  # the registry may move a village to another grid member: read it now
        rows = await conn.fetch(
            """SELECT v.id AS village_id, s.id AS site_id FROM villages v LEFT JOIN sites s ON s.village_id = v.id
               WHERE v.id = ANY($1::text[]) OR ($2::text <> '' AND v.grid_member_phone = $2)""",
            list(principal.village_ids), principal.phone or "",
        )
        return Scope(role, village_ids=frozenset(r["village_id"] for r in rows),
                     site_ids=frozenset(r["site_id"] for r in rows if r["site_id"]))
    if role is Role.MAINTAINER:
        rows = await conn.fetch(
            "SELECT id, site_id FROM devices WHERE maintainer_id = $1 AND domain = 'elevator'",
            principal.maintainer_id,
        )
        return Scope(role, maintainer_id=principal.maintainer_id, device_ids=frozenset(r["id"] for r in rows),
                     site_ids=frozenset(r["site_id"] for r in rows))
    return Scope(
        role,
        township_id=principal.township_id,
        site_ids=frozenset(principal.site_ids),
        vendor_id=principal.vendor_id,
    )


_DIGITS = re.compile(r"\d")


def mask_phone(value: str | None) -> str | None:
    """``13812345678`` → ``138****5678``; keeps enough to recognise a number, not to call it."""
    if not value:
        return value
    digits = _DIGITS.findall(value)
    if len(digits) < 7:
        return "*" * len(value)
    keep_head, keep_tail = 3, 4
    out, seen = [], 0
    n = len(digits)
    for ch in value:
        if ch.isdigit():
            out.append(ch if seen < keep_head or seen >= n - keep_tail else "*")
            seen += 1
        else:
            out.append(ch)
    return "".join(out)
