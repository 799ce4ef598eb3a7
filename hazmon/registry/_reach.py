"""Reachability (触达): which channels reach a duty room, and which matrix roles no channel does.

A township's or department's 24-hour duty room (24小时值班) is reached over its contacts' channels:

* ``duty_phone`` — a mobile gets an SMS (``sms``), a landline a voice call (``voice``, 语音通知);
* ``duty_mobile`` — a duty mobile beside the landline (``sms``);
* ``robot`` — the unit's group robot (``wecom`` 企业微信群机器人, ``dingtalk`` 钉钉自定义机器人).

The channel names are the notifiers' names in ``alerting`` (the outbox sends a row on a
channel to the notifier registered under it). :func:`reach_findings` is what the registry
import warns about and the console's matrix page shows: every 属地 township (for its sites),
every 行业监管 department named by a matrix rule and every 电梯维保单位 linked to lifts, that no
channel reaches, or that only a voice call reaches (one channel, where GB/T 45839-2025 asks for
two). It is pure: it takes the rows as column → value mappings (from files or from the database).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["REACH_TABLES", "MOBILE_RE", "is_mobile", "duty_channels", "ReachFinding", "reach_findings"]

#: the tables :func:`reach_findings` reads
REACH_TABLES = ("townships", "departments", "matrix_rules", "sites", "maintainers", "devices")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def is_mobile(number: str | None) -> bool:
    """A normalised mainland mobile number (the registry stores them as 11 digits)."""
    return bool(number) and bool(MOBILE_RE.match(str(number)))


def duty_channels(values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A duty room's (channel, address) pairs, in the order they are used: the duty line (SMS
    to a mobile, a voice call to a landline), the duty mobile, the group robot."""
    out: list[tuple[str, str]] = []
    phone = str(values.get("duty_phone") or "").strip()
    if phone:
        out.append(("sms" if is_mobile(phone) else "voice", phone))
    mobile = str(values.get("duty_mobile") or "").strip()
    if mobile and mobile != phone:
        out.append(("sms", mobile))
    robot, url = values.get("robot"), values.get("robot_url")
    if robot and url:
        out.append((str(robot), str(url)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ReachFinding:
    """A duty room that plays matrix roles and that no channel (``channels`` empty) or only a
    voice call reaches."""

    table: str  # "townships" | "departments" | "maintainers"
    key: str
    name: str
    channels: tuple[str, ...]
    sites: int = 0  # a township: the sites it is 属地 for
    rules: tuple[str, ...] = ()  # a department: the matrix rules naming it
    lifts: int = 0  # a 维保单位: the lifts it maintains

    @property
    def roles(self) -> str:
        if self.table == "townships":
            return f"township (属地) of {self.sites} site(s)"
        if self.table == "maintainers":
            return f"maintenance company (维保单位) of {self.lifts} lift(s)"
        return f"department (行业监管) of matrix rule(s) {', '.join(self.rules)}"

    @property
    def unreachable(self) -> bool:
        return not self.channels

    @property
    def why(self) -> str:
        if self.unreachable:
            return "no channel reaches it (no duty phone, no duty mobile, no group robot)"
        return "only a voice call reaches it (landline-only: no duty mobile, no group robot; no SMS)"

    @property
    def why_zh(self) -> str:
        if self.unreachable:
            return "无任何触达渠道（无值班电话、无值班手机、无群机器人）"
        return "仅能语音呼叫（只有座机：无值班手机、无群机器人，收不到短信）"

    @property
    def roles_zh(self) -> str:
        if self.table == "townships":
            return f"属地镇街值班（{self.sites} 个场所）"
        if self.table == "maintainers":
            return f"电梯维保单位（{self.lifts} 台电梯）"
        return f"行业监管部门（矩阵规则 {'、'.join(self.rules)}）"

    def message(self) -> str:
        """The import warning's text (English with the domain terms, like the others)."""
        what = {"townships": "township", "maintainers": "maintenance company"}.get(self.table, "department")
        return f"{what} {self.key!r} ({self.name}) as {self.roles}: {self.why}"


def reach_findings(tables: Mapping[str, Mapping[Any, Mapping[str, Any]]]) -> list[ReachFinding]:
    """Every township with sites, every department a matrix rule names and every 维保单位 lifts
    name, that no channel or only a voice call reaches; townships first, then departments, then
    维保单位, each in id order. ``tables``: the :data:`REACH_TABLES`, key → column values (a
    caller without the 维保单位 may leave out ``maintainers`` and ``devices``)."""
    townships, departments = tables["townships"], tables["departments"]
    rules, sites = tables["matrix_rules"], tables["sites"]
    sites_of: dict[str, int] = {}
    for s in sites.values():
        tid = str(s.get("township_id") or "")
        sites_of[tid] = sites_of.get(tid, 0) + 1
    rules_of: dict[str, list[str]] = {}
    for rid, r in sorted(rules.items(), key=lambda kv: str(kv[0])):
        for dep in r.get("department_ids") or ():
            rules_of.setdefault(str(dep), []).append(str(rid))
    lifts_of: dict[str, int] = {}
    for d in tables.get("devices", {}).values():
        if m := d.get("maintainer_id"):
            lifts_of[str(m)] = lifts_of.get(str(m), 0) + 1
    out: list[ReachFinding] = []
    maintainers = tables.get("maintainers", {})
    for table, rows in (("townships", townships), ("departments", departments), ("maintainers", maintainers)):
        for key, values in sorted(rows.items(), key=lambda kv: str(kv[0])):
            n = sites_of.get(str(key), 0) if table == "townships" else 0
            named_by = tuple(rules_of.get(str(key), ())) if table == "departments" else ()
            lifts = lifts_of.get(str(key), 0) if table == "maintainers" else 0
            if not n and not named_by and not lifts:
                continue  # plays no matrix role
            channels = tuple(ch for ch, _addr in duty_channels(values))
            if channels and set(channels) != {"voice"}:
                continue
            out.append(ReachFinding(table, str(key), str(values.get("name") or key), channels, n, named_by,
                                    lifts))
    return out
