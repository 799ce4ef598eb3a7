"""Two alerting instances on one outbox (issue 22, alerting HA): a restarting instance frees the
rows *it* left ``sending`` and anyone's held past the claim lease — never a live peer's, which
the peer is still sending (freeing them made the restarted instance send them a second time).
The whole storm with kill -9: tests/e2e/test_alerting_ha.py."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, ev

from alerting.clock import ManualClock
from alerting.outbox import OutboxPolicy, OutboxSender
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT id, status, claimed_by FROM notifications WHERE channel='sms' ORDER BY id"))


async def _held_by(pool: asyncpg.Pool, owner: str, at: object) -> int:
    """Put every SMS row back into ``sending`` by ``owner`` since ``at`` (a sender mid-send)."""
    async with pool.acquire() as conn:
        res = await conn.execute("UPDATE notifications SET status='sending', claimed_by=$1, updated_at=$2"
                                 " WHERE channel='sms'", owner, at)
    return int(res.split()[-1])


async def test_claims_name_their_sender_and_a_restart_frees_only_its_own(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(policy=OutboxPolicy(owner="alerting-a"))
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    rows = await _rows(pool)
    assert rows and {r["claimed_by"] for r in rows} == {"alerting-a"} and {r["status"] for r in rows} == {"sent"}

    now = clock.now()
    n = await _held_by(pool, "alerting-b", now)
    # alerting-a restarts while alerting-b is sending: b's rows stay b's
    assert await OutboxSender(pool, {}, owner="alerting-a").recover(now + timedelta(seconds=5)) == 0
    assert {r["status"] for r in await _rows(pool)} == {"sending"}
    # alerting-b itself restarts (it died with them): they are pending again, at once
    assert await OutboxSender(pool, {}, owner="alerting-b").recover(now + timedelta(seconds=5)) == n
    assert {(r["status"], r["claimed_by"]) for r in await _rows(pool)} == {("pending", None)}


async def test_a_dead_peers_claims_are_freed_after_the_lease_by_anyone(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    now = clock.now()
    n = await _held_by(pool, "host-9:4242", now)  # an unnamed instance that died and never came back
    lease = OutboxPolicy().claim_lease
    other = OutboxSender(pool, {})  # unnamed: frees nobody's at start but stale ones
    assert await other.recover(now + lease - timedelta(seconds=1)) == 0
    assert await other.recover(now + lease + timedelta(seconds=1)) == n
    assert {r["status"] for r in await _rows(pool)} == {"pending"}
