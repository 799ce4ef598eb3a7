"""安全公益短信: a safety broadcast to a set of businesses (before 春节, a typhoon, 汛期 …).

One ``broadcasts`` row is the audit record (who, when, why, to whom, how many); each business
contact gets one outbox row (deterministic id: broadcast id + phone, so re-running the same
broadcast queues nothing new). Broadcast rows have no priority: the outbox's per-phone rate
limit applies and alarms go first. The SQL is :mod:`alerting.store.broadcasts`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alerting.errors import InvalidAction
from alerting.matrix import normalize_phone
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.store import broadcasts as store
from alerting.templates import render
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

__all__ = ["BroadcastResult", "broadcast"]


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    id: str
    recipients: int
    queued: int
    skipped_invalid: int


async def broadcast(
    conn: asyncpg.Connection, *, actor: str, now: datetime, broadcast_id: str, body: str, reason: str,
    township_ids: Sequence[str] = (), industries: Sequence[str] = (), domains: Sequence[str] = (),
    key_period_id: str | None = None, sign_name: str = "", max_segments: int = 3,
) -> BroadcastResult:
    if not body.strip() or not reason.strip() or not actor:
        raise InvalidAction("a broadcast needs a body, a reason and its author")
    text, params = render("broadcast", {"body": body}, sign_name=sign_name, max_segments=max_segments)
    rows = await store.broadcast_audience(conn, township_ids=township_ids, industries=industries,
                                          domains=domains)
    async with conn.transaction():
        await store.insert_broadcast(conn, broadcast_id, key_period_id=key_period_id, body=text,
                                     township_ids=township_ids, industries=industries, domains=domains,
                                     actor=actor, now=now, reason=reason, recipients=len(rows))
        items, seen, invalid = [], set(), 0
        for r in rows:
            phone = normalize_phone(r["phone"])
            if phone is None:
                invalid += 1
                continue
            if phone in seen:
                continue
            seen.add(phone)
            rcpt = Recipient(role=RecipientRole.BUSINESS, name=r["contact"], unit=r["name"], phone=phone,
                             rule=f"broadcast:{broadcast_id}")
            req = NotificationRequest(id=notification_id(f"broadcast:{broadcast_id}", rcpt, 0, "broadcast"),
                                      alert_id="", channel="sms", recipient=rcpt, template="broadcast",
                                      body=text, created_at=now)
            items.append(NewNotification(req, params, broadcast_id=broadcast_id))
        inserted = await enqueue(conn, items, now=now)
    return BroadcastResult(broadcast_id, len(seen), len(inserted), invalid)
