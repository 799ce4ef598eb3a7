"""工单 (work orders): the decisions of 派发 and of each order's steps, pure.

An alarm 研判'd as real (or a device fault) is 派发'd by the centre to units and people the
责任矩阵 names for it (:func:`dispatch_options` over :func:`alerting.matrix.resolve`): the
business itself (企业主体责任), the grid member and the township's duty room (属地), the
departments (行业监管, 三管三必须), the leaders (责任领导, 包保), a lift's 维保单位. Each pick is one
order with a deadline, told to its person over their channels (alerting/workorder_notify.py).

An order's steps (:data:`STEPS`), each refused in Chinese from any other state::

    issued ─接单→ accepted ─到场签到→ arrived ─反馈→ fed_back ─审核通过→ closed
                                                   fed_back ─退回→ returned ─反馈→ fed_back

Timers (:func:`due_action`, :func:`next_due`): the order is told at once; at its deadline, while
the ball is in the assignee's court (not yet fed back), the assignee is reminded; after
:data:`ESCALATE_AFTER` more the centre's duty operator and the alarm's 责任领导 are told
(escalation.py's ladder for an order: 提醒 → 上报). A 退回 tells the person again and gives the
order a new deadline of the same length. The I/O: alerting/workorder_steps.py and
alerting/store/workorders.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerting.matrix import Responsibility
from hazmon.contracts import Recipient, RecipientRole

__all__ = [
    "STATES",
    "STATE_ZH",
    "OPEN_STATES",
    "STEPS",
    "ESCALATE_AFTER",
    "MIN_DEADLINE",
    "MAX_DEADLINE",
    "UnitOption",
    "Person",
    "OrderTimer",
    "check_step",
    "deadline_after",
    "is_overdue",
    "due_action",
    "next_due",
    "dispatch_options",
    "contact_id",
    "REASON_ZH",
    "find_unit",
]

STATES = ("issued", "accepted", "arrived", "fed_back", "closed", "returned")
STATE_ZH = {"issued": "待接单", "accepted": "已接单", "arrived": "已到场", "fed_back": "已反馈待审核",
            "closed": "已办结", "returned": "已退回"}
#: the states in which the assignee still has to act (an order fed back waits for the centre)
OPEN_STATES = frozenset({"issued", "accepted", "arrived", "returned"})
#: 办结 reasons: the 研判 verdict the centre confirms with its approval
REASON_ZH = {"real": "真实警情", "false": "误报", "test": "测试", "fault": "设备故障"}

#: step → (the states it may start from, the state it leads to, its name in words)
STEPS: dict[str, tuple[frozenset[str], str, str]] = {
    "accept": (frozenset({"issued"}), "accepted", "接单"),
    "arrive": (frozenset({"accepted"}), "arrived", "到场签到"),
    "feedback": (frozenset({"arrived", "returned"}), "fed_back", "反馈"),
    "approve": (frozenset({"fed_back"}), "closed", "审核通过"),
    "return": (frozenset({"fed_back"}), "returned", "退回"),
}
#: what a step needs first, said to the person who tried it
_NEEDS = {"accept": "只有待接单的工单可以接单", "arrive": "请先接单，再到场签到",
          "feedback": "请先到场签到，再反馈处置情况", "approve": "工单尚未反馈，不能审核办结",
          "return": "工单尚未反馈，不能退回"}

#: after the deadline and the assignee's reminder, this long until the duty operator and the
#: leader are told (the order's own 提醒 → 上报 ladder)
ESCALATE_AFTER = timedelta(minutes=30)
MIN_DEADLINE = timedelta(minutes=5)
MAX_DEADLINE = timedelta(days=30)


def check_step(step: str, state: str) -> str:
    """'' when ``step`` may be taken from ``state``, else why not (Chinese)."""
    if step not in STEPS:
        return "未知的工单操作"
    if state == "closed":
        return "工单已办结，不能再操作"
    allowed, _to, _zh = STEPS[step]
    if state in allowed:
        return ""
    if step == "accept" and state != "issued":
        return f"工单已接单（当前：{STATE_ZH.get(state, state)}），不能重复接单"
    if step == "arrive" and state in ("arrived", "fed_back"):
        return f"已到场签到（当前：{STATE_ZH.get(state, state)}），不能重复签到"
    if step == "feedback" and state == "fed_back":
        return "工单已反馈，等待中心审核，不能重复反馈"
    return f"{_NEEDS[step]}（当前：{STATE_ZH.get(state, state)}）"


def deadline_after(now: datetime, minutes: int) -> datetime:
    """The deadline ``minutes`` after ``now``, within :data:`MIN_DEADLINE`…:data:`MAX_DEADLINE`
    (ValueError with the Chinese reason otherwise)."""
    span = timedelta(minutes=minutes)
    if not MIN_DEADLINE <= span <= MAX_DEADLINE:
        raise ValueError(f"处置时限须在{int(MIN_DEADLINE.total_seconds() // 60)}分钟到"
                         f"{MAX_DEADLINE.days}天之间")
    return now + span


def is_overdue(state: str, deadline: datetime, now: datetime) -> bool:
    """超时: past its deadline while the assignee still has to act."""
    return state in OPEN_STATES and now >= deadline


@dataclass(frozen=True, slots=True)
class OrderTimer:
    """What the timers need to know of an order (columns of ``work_orders``)."""

    state: str
    notify_step: int  # 0 not told yet, 1 told, 2 reminded, 3 escalated
    created_at: datetime
    deadline: datetime
    returned_at: datetime | None = None
    return_told_at: datetime | None = None

    @property
    def return_untold(self) -> bool:
        return (self.state == "returned" and self.returned_at is not None
                and (self.return_told_at is None or self.return_told_at < self.returned_at))


def next_due(t: OrderTimer) -> datetime | None:
    """When the timer pass next has something to do for the order (None: nothing)."""
    if t.state == "closed":
        return None
    if t.notify_step == 0:
        return t.created_at
    if t.return_untold:
        return t.returned_at
    if t.state not in OPEN_STATES:
        return None
    if t.notify_step == 1:
        return t.deadline
    if t.notify_step == 2:
        return t.deadline + ESCALATE_AFTER
    return None


def due_action(t: OrderTimer, now: datetime) -> str | None:
    """What the timer pass does now: ``issue`` (tell the person), ``returned`` (tell them of the
    退回), ``remind`` (the deadline passed: the assignee), ``escalate`` (the duty operator and the
    leader), or None."""
    due = next_due(t)
    if due is None or due > now:
        return None
    if t.notify_step == 0:
        return "issue"
    if t.return_untold:
        return "returned"
    return "remind" if t.notify_step == 1 else "escalate"


# --- 派发: whom the matrix offers ---------------------------------------------------------------

#: recipient role → (unit kind, why in words)
_KIND: dict[RecipientRole, tuple[str, str]] = {
    RecipientRole.BUSINESS: ("business", "企业主体责任"),
    RecipientRole.GRID_MEMBER: ("grid", "属地（网格员）"),
    RecipientRole.TOWNSHIP: ("township", "属地（值班）"),
    RecipientRole.DEPARTMENT: ("department", "行业监管（三管三必须）"),
    RecipientRole.MAINTAINER: ("maintainer", "电梯维保单位"),
    RecipientRole.LEADER: ("leader", "责任领导"),
    RecipientRole.COVERING_LEADER: ("leader", "包保责任"),
}


def _unit_id(r: Recipient) -> str:
    """The unit a recipient stands for, from the rule that chose it (alerting/matrix.py):
    ``site:S1:contact`` → S1, ``village:V1:grid_member`` → V1, ``township:T1:duty`` → T1,
    ``matrix:R:department:zj`` → zj, ``matrix:R:leader:L1`` → L1, ``…:covering_leader:L9`` → L9,
    ``device:E6:maintainer:M1`` → M1."""
    parts = r.rule.split(";")[0].split(":")
    return parts[1] if len(parts) == 3 else parts[-1]


def contact_id(r: Recipient) -> str:
    """A person's stable id within an alarm's options: their rule, name and number hashed (a
    site's contacts share one rule)."""
    key = f"{r.rule}|{r.name}|{r.phone or ''}"
    return "c-" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Person:
    contact_id: str
    recipient: Recipient


@dataclass(frozen=True, slots=True)
class UnitOption:
    """One unit the matrix names for the alarm, with its people."""

    unit_kind: str
    unit_id: str
    unit_name: str
    why: str
    people: tuple[Person, ...] = field(default_factory=tuple)

    def person(self, cid: str | None) -> Person | None:
        return next((p for p in self.people if p.contact_id == cid), None)


def dispatch_options(resp: Responsibility) -> list[UnitOption]:
    """The units and people of the alarm's 责任矩阵, in the matrix's order (the business first,
    then 属地, 行业监管, leaders, the 维保单位); one entry per unit, its people each once."""
    units: dict[tuple[str, str], UnitOption] = {}
    for r in resp.recipients:
        if r.role not in _KIND:
            continue
        kind, why = _KIND[r.role]
        key = (kind, _unit_id(r))
        unit = units.get(key)
        if unit is None:
            # a leader is a person (their title is the unit): named by name
            name = r.name if kind == "leader" else (r.unit or r.name)
            unit = UnitOption(kind, key[1], name, why)
        cid = contact_id(r)
        if unit.person(cid) is None:
            unit = UnitOption(unit.unit_kind, unit.unit_id, unit.unit_name, unit.why,
                              (*unit.people, Person(cid, r)))
        units[key] = unit
    return list(units.values())


def find_unit(options: Sequence[UnitOption], unit_id: str, unit_kind: str | None = None) -> UnitOption | None:
    """The option of ``unit_id`` (and ``unit_kind`` when given)."""
    return next((u for u in options
                 if u.unit_id == unit_id and (unit_kind is None or u.unit_kind == unit_kind)), None)

