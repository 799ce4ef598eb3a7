"""Conformance: a silence's state at every instant of its life, and its matchers.

Sources (prometheus/alertmanager):
  [states]   docs (alerts API / amtool): a silence is `pending` before its start, `active` while it
             runs, `expired` after its end; expiring a silence early ends it now — a pending one
             becomes expired without ever being active.
  [matchers] docs/configuration.md "Label matchers": silences use the same matchers as routes
             and inhibition rules.
hazmon's window is half-open [starts_at, ends_at): active at start == now, expired at end == now
(Alertmanager's own state function counts end == now as still active; the one-instant difference is
documented in docs/alerting.md "Differences from Alertmanager"). Vectors are hazmon's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from alerting.errors import InvalidAction
from alerting.labels import parse_matchers
from alerting.silence import (
    Silence,
    active_silences,
    create_silence,
    expire_silence,
    list_silences,
    silencing,
)

T = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
START, END = T + timedelta(hours=1), T + timedelta(hours=3)


def sil(matchers: str = 'site_id="S6"', *, expired_at: datetime | None = None) -> Silence:
    return Silence("s1", parse_matchers(matchers), START, END, "op", "维保", T, expired_at, "op" if expired_at else None)


@pytest.mark.parametrize(("now", "state"), [
    (T, "pending"), (START - US, "pending"),
    (START, "active"),                  # start == now: active
    (START + US, "active"), (END - US, "active"),
    (END, "expired"),                   # end == now: over
    (END + timedelta(days=1), "expired"),
])
def test_state_at_each_instant(now: datetime, state: str) -> None:
    s = sil()
    assert s.status(now) == state
    assert s.active(now) is (state == "active")
    assert (silencing({"site_id": "S6"}, [s], now) is s) is (state == "active")


@pytest.mark.parametrize(("now", "state"), [
    (START, "active"), (START + timedelta(minutes=30) - US, "active"),
    (START + timedelta(minutes=30), "expired"), (END - US, "expired"), (END, "expired"),
])
def test_an_active_silence_expired_early_ends_at_its_expiry(now: datetime, state: str) -> None:
    s = sil(expired_at=START + timedelta(minutes=30))
    assert s.status(now) == state
    assert s.active(now) is (state == "active")


@pytest.mark.parametrize(("now", "state"), [
    (T, "pending"),                               # before it was expired: still pending
    (T + timedelta(minutes=10), "expired"),       # expired while pending: expired, never active
    (START - US, "expired"), (START, "expired"), (START + US, "expired"), (END, "expired"),
])
def test_a_pending_silence_expired_before_it_started_is_expired_not_pending(now: datetime, state: str) -> None:
    s = sil(expired_at=T + timedelta(minutes=10))
    assert s.status(now) == state
    assert not s.active(now)


@pytest.mark.parametrize(("matchers", "labels", "hit"), [
    ('kind=~"elevator"', {"kind": "elevator.trapped"}, False),        # anchored, as in routes
    ('kind=~"elevator\\\\..*"', {"kind": "elevator.trapped"}, True),
    ('{site_id="S6", kind!="elevator.trapped"}', {"site_id": "S6", "kind": "elevator.door_lock_fault"}, True),
    ('{site_id="S6", kind!="elevator.trapped"}', {"site_id": "S6", "kind": "elevator.trapped"}, False),
    ('site_id="S6", zone=""', {"site_id": "S6"}, True),              # missing label = empty
    ('site_id="S6", zone!=""', {"site_id": "S6"}, False),
])
def test_silence_matchers_have_route_semantics(matchers: str, labels: dict[str, str], hit: bool) -> None:
    assert sil(matchers).matches(labels) is hit
    assert (silencing(labels, [sil(matchers)], START) is not None) is hit


# --- stored silences: the query the flush uses agrees with status() at the boundaries ------------

@pytest.fixture
async def conn(pg_dsn: str) -> asyncpg.Connection:
    c = await asyncpg.connect(pg_dsn)
    yield c
    await c.close()


async def test_stored_silence_state_at_the_boundaries(conn: asyncpg.Connection) -> None:
    s = await create_silence(conn, actor="op", now=T, matchers=['site_id="S6"', 'kind=~"elevator\\..*"'],
                             starts_at=START, ends_at=END, reason="电梯维保")
    for now, active in ((START - US, False), (START, True), (END - US, True), (END, False)):
        got = [x.id for x in await active_silences(conn, now)]
        assert (s.id in got) is active, now
        assert s.status(now) == ("active" if active else ("pending" if now < START else "expired"))
    # the stored matchers come back with their meaning intact (anchored regex)
    back = next(x for x in await active_silences(conn, START) if x.id == s.id)
    assert back.matches({"site_id": "S6", "kind": "elevator.trapped"})
    assert not back.matches({"site_id": "S6", "kind": "xelevator.trapped"})


async def test_expiring_a_pending_silence_makes_it_expired_at_once(conn: asyncpg.Connection) -> None:
    s = await create_silence(conn, actor="op", now=T, matchers=['site_id="S6"'], starts_at=START, ends_at=END,
                             reason="电梯维保")
    assert s.status(T) == "pending" and s.id in [x.id for x in await list_silences(conn, now=T)]
    now = T + timedelta(minutes=5)
    e = await expire_silence(conn, s.id, actor="op", now=now, reason="取消")
    assert e.status(now) == "expired"
    assert e.status(START) == "expired" and not e.active(START + timedelta(minutes=1))
    assert s.id not in [x.id for x in await active_silences(conn, START + timedelta(minutes=1))]
    assert s.id not in [x.id for x in await list_silences(conn, now=now)]
    assert s.id in [x.id for x in await list_silences(conn, now=now, include_expired=True)]


async def test_a_silence_with_bad_matchers_is_refused_with_the_problem(conn: asyncpg.Connection) -> None:
    with pytest.raises(InvalidAction, match="double quote"):
        await create_silence(conn, actor="op", now=T, matchers=['site_id="S6'], ends_at=END, reason="x")
    with pytest.raises(InvalidAction, match="every alert"):
        await create_silence(conn, actor="op", now=T, matchers=['zone=""'], ends_at=END, reason="x")


async def test_a_stored_silence_whose_regex_is_now_refused_mutes_nothing_and_stops_nothing(
    conn: asyncpg.Connection,
) -> None:
    # written before lookaheads were refused (RE2 has none): it is skipped, the others still work
    await conn.execute(
        """INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, reason, created_at)
           VALUES ('old', $1::jsonb, $2, $3, 'op', 'old', $2)""",
        '[{"name": "kind", "op": "=~", "value": "(?!gas).*"}]', T, END)
    good = await create_silence(conn, actor="op", now=T, matchers=['site_id="S6"'], ends_at=END, reason="维保")
    assert [s.id for s in await active_silences(conn, START)] == [good.id]
    assert [s.id for s in await list_silences(conn, now=START)] == [good.id]
