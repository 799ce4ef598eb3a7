"""Who did it, in words: the ``actor`` of an alert's timeline and its ``acked_by``.

alerting records actors as codes — ``system`` (alerting itself: the alarm, its 恢复, 四单),
``<role>:<username>`` (a console user, console/scope.py ``Principal.actor``), and the
recipients' own acknowledgements ``sms_reply:<recipient>`` (回复码), ``link:<recipient>``
(短链接), ``voice:<recipient>`` (按1确认) and ``sms_arrival:<recipient>`` (a 维保单位's 到场 by
SMS), the recipient being the matrix rule that chose them, which is also the ``rule`` of their
notifications. The alert page shows 系统, 张三（中心值班员）, 回复码确认（王五·云栖公寓物业服务中心）,
短信报到场（张工·杭州钱江电梯工程有限公司）, never the code (issue 20).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from console.scope import Role
from console.words import rule_ids

__all__ = ["VIA_ZH", "actor_words", "recipients_of", "unit_names", "user_names"]

#: how a recipient acknowledged — or, ``sms_arrival``, reported its 到场 by SMS (a lift's 维保单位:
#: alerting/arrival_reply.py)
VIA_ZH = {"sms_reply": "回复码确认", "link": "短链接确认", "voice": "语音按键确认", "sms_arrival": "短信报到场"}
_SYSTEM = {"system": "系统", "watchdog": "值守看门狗", "prometheus": "系统监控", "": "系统"}


def recipients_of(notifications: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """recipient (the notification's rule) → (name, unit), from an alert's notifications."""
    out: dict[str, tuple[str, str]] = {}
    for n in notifications:
        rule = str(n.get("rule") or "")
        if rule and rule not in out:
            out[rule] = (str(n.get("recipient_name") or ""), str(n.get("recipient_unit") or ""))
    return out


async def user_names(conn: Any, actors: Iterable[str]) -> dict[str, str]:
    """username → display name of the console users among ``actors``."""
    names = sorted({a.split(":", 1)[1] for a in actors if ":" in a and a.split(":", 1)[0] in set(Role)})
    if not names:
        return {}
    rows = await conn.fetch("SELECT username, display_name FROM console_users WHERE username = ANY($1::text[])",
                            names)
    return {r["username"]: r["display_name"] for r in rows if r["display_name"]}


def actor_words(actor: str | None, recipients: Mapping[str, tuple[str, str]], users: Mapping[str, str]) -> str:
    """Pure: an actor code as the operators say it."""
    actor = str(actor or "")
    if actor in _SYSTEM:
        return _SYSTEM[actor]
    kind, _, who = actor.partition(":")
    if kind in set(Role):
        role = Role(kind).zh
        return f"{users[who]}（{role}）" if who in users else f"{role}（账号 {who}）"
    if kind in VIA_ZH:
        if who == "non_recipient":
            return f"{VIA_ZH[kind]}（非本报警接收人）"
        name, unit = recipients.get(who, ("", ""))
        person = "·".join(x for x in (name, unit) if x)
        return f"{VIA_ZH[kind]}（{person or '接收人'}）"
    return "外部系统"


_NAME_SQL = """SELECT 'department' AS kind, id, name FROM departments WHERE id = ANY($1::text[])
UNION ALL SELECT 'township', id, name FROM townships WHERE id = ANY($2::text[])
UNION ALL SELECT 'village', id, name FROM villages WHERE id = ANY($3::text[])
UNION ALL SELECT 'site', id, name FROM sites WHERE id = ANY($4::text[])
UNION ALL SELECT 'leader', id, name FROM leaders WHERE id = ANY($5::text[])"""


async def unit_names(conn: Any, rules: Iterable[str], told: Mapping[str, tuple[str, str]]
                     ) -> dict[tuple[str, str], str]:
    """(kind, id) → name of the units the rules name (console/words.py ``rule_words``): from the
    recipients' own rows where they are there, else from the registry (a combined rule's parts)."""
    out: dict[tuple[str, str], str] = {}
    for rule, (name, unit) in told.items():
        bits = rule.split(":")
        if bits[0] in ("township", "village", "site") and len(bits) == 3:
            out[(bits[0], bits[1])] = unit
        elif bits[0] == "matrix" and len(bits) == 4:
            out[(bits[2], bits[3])] = unit if bits[2] == "department" else name
        elif bits[0] == "site" and len(bits) == 4 and bits[2] == "covering_leader":
            out[("leader", bits[3])] = name
        elif bits[0] == "device" and len(bits) == 4:
            out[("maintainer", rule)] = unit
    wanted = {k: sorted(v - {i for kind, i in out if kind == k}) for k, v in rule_ids(rules).items()}
    if any(wanted.values()):
        rows = await conn.fetch(_NAME_SQL, wanted["department"], wanted["township"], wanted["village"],
                                wanted["site"], wanted["leader"])
        out.update({(r["kind"], r["id"]): r["name"] for r in rows})
    return out
