"""维保/测试 报备: a silence filed for a site's devices with a kind — by the centre, or by a
business (企业) or a 维保单位 for its own devices (the console checks whose they are) — and the
reminder when its window ends, naming the alarms it held.

A 报备 is an ordinary silence (alerting/silence.py: validated, audited, muted by the flush's mute
stage, which records ``suppress`` with ``silence:<id>``), plus its kind, site and whom to remind
(migration 032). What it may mute is decided here, not by the form:

* a **测试** 报备 never mutes a real ``fire.alarm``: a part in 测试状态 raises ``fire.test`` (which
  the 报备 holds), and a real 火警 during a test is a real fire (issue 18: a declared test mutes
  nothing, detectors/fire.py) — the matchers carry ``kind!="fire.alarm"``;
* a **self-service** 报备 (business, 维保单位) never mutes a ``fire.alarm`` whatever its kind, and
  lasts at most :attr:`ReportLimits.self_service_max` (8 h by default);
* every 报备 names its site and, for self-service, one or more of its devices.

:func:`send_report_reminders` (the alerting service's timers loop) queues, once per 报备 whose
window ended, the SMS ``report_end.*`` (alerting/templates/report.py) to whom it names.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from alerting.compose import ComposeContext
from alerting.errors import InvalidAction
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.silence import MAX_SILENCE, Silence, create_silence
from alerting.store import reports as store
from alerting.store import silences as silence_store
from alerting.templates import CST, KIND_ZH, render
from alerting.templates.report import REPORT_SLOTS, report_end_template
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.logs import kv

__all__ = ["REPORT_KINDS", "ReportLimits", "report_matchers", "create_report", "send_report_reminders",
           "reminder_text", "held_words"]

log = logging.getLogger(__name__)

REPORT_KINDS = ("维保", "测试")
#: the kind a 测试 or a self-service 报备 never mutes
FIRE_ALARM = "fire.alarm"


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """How long a 报备 may last: a business or 维保单位 files a visit, not a week off."""

    self_service_max: timedelta = timedelta(hours=8)
    centre_max: timedelta = MAX_SILENCE


def report_matchers(site_id: str, device_ids: Sequence[str], kind: str, *, self_service: bool
                    ) -> list[dict[str, str]]:
    """The silence's matchers: the site, its devices (one or a regex of several), and
    ``kind!="fire.alarm"`` for a 测试 or a self-service 报备."""
    out = [{"name": "site_id", "op": "=", "value": site_id}]
    ids = sorted(set(device_ids))
    if len(ids) == 1:
        out.append({"name": "device_id", "op": "=", "value": ids[0]})
    elif ids:
        out.append({"name": "device_id", "op": "=~", "value": "|".join(re.escape(d) for d in ids)})
    if kind == "测试" or self_service:
        out.append({"name": "kind", "op": "!=", "value": FIRE_ALARM})
    return out


def _check(kind: str, starts_at: datetime, ends_at: datetime, reason: str, device_ids: Sequence[str],
           self_service: bool, limits: ReportLimits) -> None:
    """Refusals in Chinese (the console shows them as they are)."""
    if kind not in REPORT_KINDS:
        raise InvalidAction("报备类型只能是维保或测试")
    if not reason.strip():
        raise InvalidAction("请填写报备原因（例如：电梯年度维保、消防系统联动测试）")
    if ends_at <= starts_at:
        raise InvalidAction("结束时间必须晚于开始时间")
    longest = limits.self_service_max if self_service else limits.centre_max
    if ends_at - starts_at > longest:
        hours = longest.total_seconds() / 3600
        raise InvalidAction(f"报备时长不能超过{hours:g}小时，如需更长请联系区应急指挥中心")
    if self_service and not device_ids:
        raise InvalidAction("请选择报备的设备")


async def create_report(
    conn: asyncpg.Connection, *, actor: str, now: datetime, site_id: str, device_ids: Sequence[str],
    kind: str, ends_at: datetime, reason: str, starts_at: datetime | None = None, self_service: bool = False,
    notify_name: str = "", notify_phone: str | None = None, limits: ReportLimits | None = None,
) -> Silence:
    """File a 报备 (one transaction: the silence, its 报备 columns, a ``report`` audit row).
    Whose devices they are is the caller's check (console/routes/reports.py)."""
    start = starts_at or now
    _check(kind, start, ends_at, reason, device_ids, self_service, limits or ReportLimits())
    sid = f"rep-{now:%Y%m%d}-{secrets.token_hex(4)}"
    async with conn.transaction():
        matchers = report_matchers(site_id, device_ids, kind, self_service=self_service)
        s = await create_silence(conn, actor=actor, now=now, silence_id=sid, starts_at=start, ends_at=ends_at,
                                 matchers=matchers, reason=f"{kind}报备：{reason.strip()}")
        await store.mark_report(conn, sid, kind=kind, site_id=site_id, notify_name=notify_name,
                                notify_phone=notify_phone)
        await silence_store.insert_silence_audit(
            conn, sid, "report", actor, now, reason,
            {"kind": kind, "site_id": site_id, "device_ids": sorted(set(device_ids)),
             "self_service": self_service, "notify_phone": bool(notify_phone)})
    log.info("报备 filed %s", kv(id=sid, actor=actor, kind=kind, site=site_id, devices=",".join(device_ids)))
    return s


def held_words(kind: str) -> str:
    """A held alarm's kind in words (the reminder's and the console's)."""
    return KIND_ZH.get(kind) or "报警"


def _span(starts_at: datetime, ends_at: datetime) -> str:
    """``10:00至12:00`` within one day (China time), else ``11月20日10:00起``: at most 12
    characters (腾讯云's variable cap)."""
    a, b = starts_at.astimezone(CST), ends_at.astimezone(CST)
    return f"{a:%H:%M}至{b:%H:%M}" if a.date() == b.date() else f"{a.month}月{a.day}日{a:%H:%M}起"


def reminder_text(ctx: ComposeContext, row: Any, held: Sequence[Any]) -> tuple[str, dict[str, str]]:
    """The reminder's body and parameters (pure): the 报备's site, kind and window, and up to
    :data:`~alerting.templates.report.REPORT_SLOTS` held alarms with their state."""
    end = min(row["ends_at"], row["expired_at"] or row["ends_at"])
    p = {"unit": row["site_name"] or row["site_id"] or "", "what": row["report_kind"],
         "span": _span(row["starts_at"], end), "n": str(len(held))}
    for i, a in enumerate(held[:REPORT_SLOTS], 1):
        p[f"w{i}"] = held_words(a["kind"])
        p[f"s{i}"] = "已恢复" if a["state"] == "resolved" else "仍在报警"
    return render(report_end_template(len(held)), p, sign_name=ctx.sign_name,
                  max_segments=ctx.config.sms_max_segments, provider=ctx.provider, deployment=ctx.deployment)


async def send_report_reminders(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime,
                                on_queued: Callable[[], None] | None = None, *, limit: int = 100) -> int:
    """Queue the end-of-window reminder of each 报备 that ended (one transaction; each 报备 once:
    ``reminded_at``); returns rows queued, ``on_queued`` called (the sender woken) when some
    were. A 报备 with no number to remind is marked and logged."""
    async with pool.acquire() as conn:
        if not await store.any_due_reminder(conn, now):
            return 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.lock_due_reminders(conn, now, limit)
        if not rows:
            return 0
        items: list[NewNotification] = []
        for r in rows:
            held = await store.held_alarms(conn, r["id"])
            await store.mark_reminded(conn, r["id"], now)
            if not r["notify_phone"]:
                log.warning("报备 ended with no number to remind %s", kv(id=r["id"], held=len(held)))
                continue
            body, params = reminder_text(ctx, r, held)
            maint = r["created_by"].startswith("maintainer:")
            role = RecipientRole.MAINTAINER if maint else RecipientRole.BUSINESS
            rcpt = Recipient(role=role, name=r["notify_name"] or "报备人", unit=r["site_name"] or "",
                             phone=r["notify_phone"], rule=f"report:{r['id']}")
            req = NotificationRequest(id=notification_id(None, rcpt, 0, f"report_end:{r['id']}"), alert_id="",
                                      channel="sms", recipient=rcpt, template="report_end", body=body,
                                      created_at=now)
            items.append(NewNotification(req, params))
        inserted = await enqueue(conn, items, now=now)
    log.info("报备 reminders queued %s", kv(ended=len(rows), rows=len(inserted)))
    if inserted and on_queued is not None:
        on_queued()
    return len(inserted)
