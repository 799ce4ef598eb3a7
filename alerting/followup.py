"""The follow-up passes of the timers loop: the morning digest of quiet hours and the outcome
SMS of closed alarms. Each is one transaction; both are idempotent (deterministic row ids).

* :func:`send_digests` — the ``held`` rows whose quiet hours ended (alerting/quiet.py), per
  recipient and channel: **one** digest (an SMS to a mobile, a call to a landline duty room)
  naming up to three alarms with whether each has recovered, and the count; the held rows
  become ``suppressed`` with an attempt row naming the digest they went into;
* :func:`send_outcomes` — the alarms closed (办结) since the last pass: the business is told the
  verdict and the close in one short SMS (``outcome.<verdict>``, alerting/templates/followup.py).

The timers loop ticks every second; :class:`FollowUps` asks first, in one statement on two
indexes and without a transaction, whether either pass has anything to do — a held row due, or
an alarm closed since the outcome pass last looked — and runs only the pass that has.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import asyncpg

from alerting import metrics, store
from alerting.compose import ComposeContext, outbox_items, params
from alerting.matrix import resolve
from alerting.notify.voice import VOICE_TEMPLATES, render_script, tts_params
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.quiet import DIGEST_SLOTS, HeldItem, digest
from alerting.store import followup as fstore
from alerting.templates import format_when, render
from alerting.templates.followup import outcome_template
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.logs import kv

__all__ = ["FollowUps", "send_digests", "send_outcomes", "digest_rows", "OUTCOME_LOOKBACK"]

log = logging.getLogger(__name__)

#: how far back the outcome pass looks for closed alarms (a restart within it misses none)
OUTCOME_LOOKBACK = timedelta(days=1)
#: a close committed late (its transaction began before the last pass looked) is still seen
OUTCOME_GRACE = timedelta(minutes=1)
#: the outcome pass runs at least this often whatever the due check says (another clock's closes)
OUTCOME_SWEEP = timedelta(minutes=5)


def _params(row: asyncpg.Record) -> dict[str, str]:
    p = row["params"]
    return {k: str(v) for k, v in (json.loads(p) if isinstance(p, str) else dict(p or {})).items()}


def _span(p: Mapping[str, str]) -> str:
    return p.get("_quiet", "") or "夜间"  # the window, as :func:`alerting.quiet.hold` noted it


def digest_rows(ctx: ComposeContext, rows: Sequence[asyncpg.Record], now: datetime
                ) -> tuple[list[NewNotification], dict[str, str]]:
    """The digests of due held rows (pure): one row per (channel, recipient), and which digest
    each held row went into. One item per alarm, in the order they were held."""
    by_whom: dict[tuple[str, str, str, str, str], list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_whom[(r["channel"], r["recipient_role"], r["recipient_phone"], r["recipient_name"],
                 r["recipient_unit"])].append(r)
    out: list[NewNotification] = []
    into: dict[str, str] = {}
    for (channel, role, phone, name, unit), mine in by_whom.items():
        items: dict[str, HeldItem] = {}
        span = ""
        for r in mine:
            key = r["alert_id"] or r["id"]
            if key in items:  # the alarm's other held rows add nothing to its line
                continue
            p = _params(r)
            span = span or _span(p)
            items[key] = HeldItem(p.get("unit") or p.get("site") or "", p.get("what", "报警"),
                                  p.get("level") or "报警", r["alert_state"] == "resolved")
        who = Recipient(role=RecipientRole(role), name=name, unit=unit, phone=phone, rule=mine[0]["rule"])
        due = mine[0]["next_attempt_at"]
        nid = notification_id(None, who, 0, f"digest:{channel}:{due.isoformat()}")
        listed = list(items.values())
        if channel == "voice":
            first = listed[0]
            what = f"共有{len(listed)}条报警" + (f"，其中{first.unit}{first.what}" if len(listed) > 1
                                                 else f"：{first.unit}{first.what}")
            tpl = VOICE_TEMPLATES["voice_digest"]
            sent = {"what": what}
            body = render_script(tpl, tts_params(tpl, sent, "aliyun"))
        else:
            tname, values = digest(listed, span)
            body, sent = render(tname, values, sign_name=ctx.sign_name,
                                max_segments=ctx.config.sms_max_segments,
                                provider=ctx.provider, deployment=ctx.deployment)
        req = NotificationRequest(id=nid, alert_id="", channel=channel, recipient=who,  # type: ignore[arg-type]
                                  template="digest", body=body, created_at=now)
        out.append(NewNotification(req, sent))
        into.update((r["id"], nid) for r in mine)
    return out, into


async def send_digests(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, *, limit: int = 5000) -> int:
    """Queue the morning digests due at ``now`` (one transaction); returns digests queued."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await fstore.lock_due_held(conn, now, limit)
        if not rows:
            return 0
        items, into = digest_rows(ctx, rows, now)
        inserted = await enqueue(conn, items, now=now)
        await fstore.mark_digested(conn, now, into)
    metrics.NOTIFICATIONS.labels("sms", "digested").inc(len(into))
    log.info("morning digests queued %s", kv(held=len(rows), digests=len(inserted), slots=DIGEST_SLOTS))
    return len(inserted)


async def send_outcomes(pool: asyncpg.Pool, ctx: ComposeContext, now: datetime, *, limit: int = 200) -> int:
    """Queue the outcome SMS of the alarms closed since :data:`OUTCOME_LOOKBACK`, to each
    business contact with a mobile (one transaction); returns rows queued."""
    async with pool.acquire() as conn, conn.transaction():
        ids = await fstore.closed_without_outcome(conn, now - OUTCOME_LOOKBACK, limit)
        if not ids:
            return 0
        alerts = [a for i in ids if (a := await store.fetch_alert(conn, i)) is not None]
        items: list[NewNotification] = []
        for a in alerts:
            resp = resolve(ctx.registry, site_id=a.site_id, domain=a.domain, device_id=a.device_id)
            recipients = [r for r in resp.for_roles((RecipientRole.BUSINESS,),
                                                    duty_operator=ctx.config.duty_operator)
                          if r.role is RecipientRole.BUSINESS]
            p = params(ctx, a, 1)
            p["when"] = format_when(a.starts_at)
            name = outcome_template(a.verdict)
            body, sent = render(name, p, sign_name=ctx.sign_name, max_segments=ctx.config.sms_max_segments,
                                provider=ctx.provider, deployment=ctx.deployment)
            # the SMS to each business contact, and the duty desk's console entry (also the mark
            # that the outcome was told: the next pass does not take this alarm again)
            items += outbox_items(ctx, a.id, recipients, ("sms", "console"), 0, "outcome", "outcome", body,
                                  sent, None, a.group_key or "", 0, now)
            if not recipients:
                log.warning("outcome SMS: the site has no business contact %s",
                            kv(alert=a.id, site=a.site_id))
        inserted = await enqueue(conn, items, now=now)
    log.info("outcome SMS queued %s", kv(closed=len(ids), rows=len(inserted)))
    return len(inserted)


class FollowUps:
    """Both passes behind one cheap due check per tick (:func:`alerting.store.followup.due`): a
    tick with nothing due opens no transaction. The outcome check looks at the alarms closed
    since the previous tick (less :data:`OUTCOME_GRACE`), and every :data:`OUTCOME_SWEEP` over
    the whole :data:`OUTCOME_LOOKBACK` — the first tick after a start does that too."""

    def __init__(self) -> None:
        self._last: datetime | None = None  # the previous tick
        self._swept: datetime | None = None  # the last check over the whole lookback

    async def run(self, pool: asyncpg.Pool, ctx: ComposeContext, now: datetime) -> int:
        """The due passes at ``now``; returns rows queued."""
        wide = self._swept is None or not timedelta(0) <= now - self._swept < OUTCOME_SWEEP
        if wide or self._last is None:
            since = now - OUTCOME_LOOKBACK
        else:
            since = min(self._last, now) - OUTCOME_GRACE
        async with pool.acquire() as conn:
            digests_due, outcomes_due = await fstore.due(conn, now, since)
        queued = await send_digests(pool, ctx, now) if digests_due else 0
        if outcomes_due:
            queued += await send_outcomes(pool, ctx, now)
        self._last = now
        if wide:
            self._swept = now
        return queued

