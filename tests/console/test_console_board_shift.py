"""The board for a long shift (issue 14 item 7) through the API on real PostgreSQL: the board's
filters (镇街, 领域, 阶段) on the server, 逾期 from alerting's own timers, the history of 办结
alarms and its search, the wall screen's summary, each within the reader's scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_district import NOW

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _items(api) -> dict[str, dict]:
    r = await api.client.get("/api/board", headers=api.auth("centre1"))
    return {a["id"]: a for a in r.json()["items"]}


async def _board(api, user: str, **params) -> list[str]:
    r = await api.client.get("/api/board", params=params, headers=api.auth(user))
    assert r.status_code == 200, r.text
    return sorted(a["id"] for a in r.json()["items"])


async def test_board_filters_narrow_on_the_server(fresh_api):
    api = fresh_api
    gas, elev, fire = (api.seeded.alerts[k] for k in ("gas_s1", "elev_s2", "fire_s3"))
    assert await _board(api, "centre1") == sorted([gas, elev, fire])
    assert await _board(api, "centre1", domain="gas") == [gas]
    assert await _board(api, "centre1", township_id="T2") == [fire]
    assert await _board(api, "centre1", township_id="T1", domain="elevator") == [elev]
    # 研判 → 派发: the gas alarm leaves the 研判 phases and is the only one 已派发
    h = api.auth("centre1")
    assert (await api.client.post(f"/api/alerts/{gas}/verify", json={"verdict": "real", "reason": "视频复核"},
                                  headers=h)).status_code == 200
    assert (await api.client.post(f"/api/alerts/{gas}/dispatch", json={"orders": [{"unit_id": "T1"}]},
                                  headers=h)).status_code == 200
    assert await _board(api, "centre1", phase="dispatched") == [gas]
    assert await _board(api, "centre1", phase=["alarm", "verified"]) == sorted([elev, fire])
    counts = (await api.client.get("/api/board", params={"phase": "dispatched"}, headers=h)).json()["counts"]
    assert counts == {"red": 1, "orange": 0, "yellow": 0, "blue": 0}
    # a filter never widens the scope: a township asking for the other township sees nothing
    assert await _board(api, "town-t1", township_id="T2") == []
    r = await api.client.get("/api/board", params={"phase": "closed"}, headers=h)
    assert r.status_code == 422 and not any(c.isascii() and c.isalpha() for c in r.json()["detail"][:4])


async def test_overdue_from_alerting_timers(fresh_api):
    api = fresh_api
    elev, fire = api.seeded.alerts["elev_s2"], api.seeded.alerts["fire_s3"]
    # the rows alerting writes when a timer passes: the 到场 timer of the trapped-passenger alarm
    # (alerting/arrival.py), a 工作提醒单 of the ladder (alerting/escalation.py) past its deadline
    async with api.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)
               VALUES ($1, 'E1', 'M1', $2, $3)""",
            elev, NOW - timedelta(minutes=40), NOW - timedelta(minutes=10))
        await conn.execute(
            """INSERT INTO notices (alert_id, level, step, issued_at, deadline, reason)
               VALUES ($1, 'reminder', 1, $2, $3, '11-20 09:10起未确认（0:10:00）')""",
            fire, NOW - timedelta(minutes=30), NOW - timedelta(minutes=5))
        await conn.execute("UPDATE alerts SET escalation_step = 1 WHERE id = $1", fire)
    items = await _items(api)
    assert items[elev]["overdue"] == ["维保单位超时未到场（应于 09:50 前到场）"]
    assert items[fire]["overdue"] == ["未确认，已发工作提醒单（09:55 回复期限已过）"]
    assert items[api.seeded.alerts["gas_s1"]]["overdue"] == []
    # 到场 recorded: no longer overdue
    async with api.pool.acquire() as conn:
        await conn.execute("UPDATE lift_arrivals SET arrived_at = $2 WHERE alert_id = $1", elev, NOW)
    items = await _items(api)
    assert items[elev]["overdue"] == []


async def _close_as_false(api, aid: str) -> None:
    h = api.auth("centre1")
    r = await api.client.post(f"/api/alerts/{aid}/verify", json={"verdict": "false", "reason": "现场无泄漏"},
                              headers=h)
    assert r.status_code == 200, r.text
    r = await api.client.post(f"/api/alerts/{aid}/close", json={"reason": "误报，已告知企业"}, headers=h)
    assert r.status_code == 200, r.text


async def _history(api, user: str, **params) -> dict:
    r = await api.client.get("/api/board/history", params=params, headers=api.auth(user))
    assert r.status_code == 200, r.text
    return r.json()


async def test_history_finds_closed_alarms(fresh_api):
    api = fresh_api
    gas, fire = api.seeded.alerts["gas_s1"], api.seeded.alerts["fire_s3"]
    assert (await _history(api, "centre1"))["total"] == 0
    await _close_as_false(api, gas)
    await _close_as_false(api, fire)
    both = await _history(api, "centre1")
    assert both["total"] == 2 and {a["id"] for a in both["items"]} == {gas, fire}
    assert [a["id"] for a in (await _history(api, "centre1", q="老王"))["items"]] == [gas]
    assert [a["id"] for a in (await _history(api, "centre1", q="饭店"))["items"]] == [gas]
    assert [a["id"] for a in (await _history(api, "centre1", device_id="f1"))["items"]] == [fire]
    assert [a["id"] for a in (await _history(api, "centre1", domain="fire"))["items"]] == [fire]
    assert (await _history(api, "centre1", verdict="false"))["total"] == 2
    assert (await _history(api, "centre1", verdict="real"))["total"] == 0
    # dates on the alarm's start: gas started 4 min before NOW, fire 50 min before
    since = (NOW - timedelta(minutes=10)).isoformat()
    assert [a["id"] for a in (await _history(api, "centre1", since=since))["items"]] == [gas]
    assert [a["id"] for a in (await _history(api, "centre1", until=since))["items"]] == [fire]
    # a wildcard typed is a character, not a pattern
    assert (await _history(api, "centre1", q="%"))["total"] == 0
    page = await _history(api, "centre1", page_size=1, page=2)
    assert page["total"] == 2 and len(page["items"]) == 1 and page["page"] == 2
    item = page["items"][0]
    assert item["close_reason"] == "误报，已告知企业" and item["summary_zh"]
    # scope: the other township's closed alarm is not in a township's history
    assert [a["id"] for a in (await _history(api, "town-t1"))["items"]] == [gas]
    assert (await _history(api, "biz-s1", q="五金"))["total"] == 0
    r = await api.client.get("/api/board/history", params={"since": since, "until": since},
                             headers=api.auth("centre1"))
    assert r.status_code == 400
    r = await api.client.get("/api/board/history", params={"verdict": "maybe"}, headers=api.auth("centre1"))
    assert r.status_code == 422


async def test_wall_summary(fresh_api):
    api = fresh_api
    r = await api.client.get("/api/wall", headers=api.auth("centre1"))
    assert r.status_code == 200, r.text
    w = r.json()
    assert w["counts"] == {"red": 1, "orange": 1, "yellow": 1, "blue": 0} and w["total"] == 3
    assert {d["domain_zh"]: d["total"] for d in w["domains"]} == {"燃气": 1, "电梯": 1, "消防": 1}
    ranking = [(t["township_name"], t["open"], t["red"]) for t in w["townships"]]
    assert ranking == [("城关镇", 2, 1), ("新河街道", 1, 0)]
    assert [a["id"] for a in w["newest_red"]] == [api.seeded.alerts["gas_s1"]]
    t2 = (await api.client.get("/api/wall", headers=api.auth("town-t2"))).json()
    assert t2["total"] == 1 and not t2["newest_red"]
    assert [t["township_name"] for t in t2["townships"]] == ["新河街道"]
    assert (await api.client.get("/api/wall", headers=api.auth("biz-s1"))).status_code == 403
