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

__all__ = ["VIA_ZH", "actor_words", "recipients_of", "user_names"]

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
