"""The flush's fallback: when a batch of due groups fails, the same call flushes them one by one
(limit 1), so one bad group holds up nobody else — on real PostgreSQL, the failure a real trigger."""

from __future__ import annotations

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, ev

from alerting.clock import ManualClock

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_group_that_cannot_be_flushed_holds_up_no_other(
    pool: asyncpg.Pool, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    alarms = [ev("gas.high", "S1-GAS1", "S1"), ev("gas.high", "S4-GAS1", "S4"),
              ev("gas.high", "S5-GAS1", "S5")]
    await svc.handle_events(alarms)
    async with pool.acquire() as conn:
        keys = {r["id"]: r["group_key"] for r in await conn.fetch("SELECT id, group_key FROM alerts")}
        assert len(set(keys.values())) == 3  # three groups, due together
        bad = keys[alarms[0].id]
        await conn.execute("""
            CREATE TABLE poisoned_groups (key text PRIMARY KEY);
            CREATE FUNCTION poisoned_group() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF EXISTS (SELECT 1 FROM poisoned_groups WHERE key = OLD.key) THEN
                RAISE EXCEPTION 'group % cannot be stored', OLD.key;
              END IF;
              RETURN COALESCE(NEW, OLD);
            END $$;
            CREATE TRIGGER poisoned BEFORE UPDATE OR DELETE ON alert_groups
              FOR EACH ROW EXECUTE FUNCTION poisoned_group();""")
        await conn.execute("INSERT INTO poisoned_groups VALUES ($1)", bad)

    clock.advance(10)  # gas-high group_wait
    rep = await svc.tick()  # the batch of three fails; each is then flushed alone

    async with pool.acquire() as conn:
        told = {r["alert_id"] for r in await conn.fetch("SELECT DISTINCT alert_id FROM notifications")}
        still_due = await conn.fetchval("SELECT next_flush_at FROM alert_groups WHERE key=$1", bad)
    assert told == {alarms[1].id, alarms[2].id}  # the other two were told
    assert rep.notified > 0 and still_due is not None  # the bad one stays due, untold

    async with pool.acquire() as conn:
        await conn.execute("DROP TRIGGER poisoned ON alert_groups")
    await svc.tick()  # once it can be stored, it is flushed too
    async with pool.acquire() as conn:
        told = {r["alert_id"] for r in await conn.fetch("SELECT DISTINCT alert_id FROM notifications")}
    assert told == {a.id for a in alarms}
