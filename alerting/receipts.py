"""Delivery receipts (回执) from the providers' callbacks, applied to the outbox's rows
(:mod:`alerting.inbound` parses them; the SQL is :func:`alerting.store.outbox.match_receipts`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alerting import metrics
from alerting.store import outbox as store

__all__ = ["Receipt", "record_receipts"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt (回执) as parsed from a provider's callback."""

    provider: str
    message_id: str
    delivered: bool
    error: str = ""
    notification: str = ""  # our id, when the provider echoes it (阿里云 ``out_id``, the webhook's ``id``)


async def record_receipts(conn: asyncpg.Connection, receipts: Sequence[Receipt], *, at: datetime
                          ) -> list[bool]:
    """Receipts in one statement: mark each matched row delivered (or record the failure) and
    write its attempt. Returns, per receipt, whether a row matched (one may not have yet: a
    receipt can overtake the write of the send result)."""
    if not receipts:
        return []
    rows = await store.match_receipts(conn, receipts, at=at)
    matched = [False] * len(receipts)
    for row in rows:
        matched[row["ord"]] = True
        outcome = "delivered" if row["ok"] else "undelivered"
        metrics.NOTIFICATIONS.labels(row["channel"], outcome).inc()
        metrics.PROVIDER_OUTCOMES.labels(row["channel"], receipts[row["ord"]].provider, outcome).inc()
    return matched
