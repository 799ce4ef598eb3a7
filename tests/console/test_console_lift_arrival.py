"""维保到场 on the console: the centre records the 维保单位's arrival (POST /api/alerts/{id}/arrival),
audited on the alert's timeline; a second one is refused (409, in Chinese); other roles may not;
the alert page shows the timer. Real PostgreSQL, the console app in-process."""

from __future__ import annotations

from datetime import timedelta

from console_district import NOW


async def test_the_centre_records_the_arrival_once(fresh_api):
    api = fresh_api
    aid = api.seeded.alerts["elev_s2"]
    async with api.pool.acquire() as conn:  # the timer alerting started when it told the company
        await conn.execute("INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)"
                           " VALUES ($1, 'E1', 'M1', $2, $3)", aid, NOW - timedelta(minutes=20),
                           NOW + timedelta(minutes=10))
    page = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()
    assert page["arrival"]["arrived_at"] is None and page["arrival"]["maintainer_id"] == "M1"
    r = await api.client.post(f"/api/alerts/{aid}/arrival", json={"note": "维保人员已到3号梯"},
                              headers=api.auth("town-t1"))
    assert r.status_code == 403
    r = await api.client.post(f"/api/alerts/{aid}/arrival", json={"note": "维保人员已到3号梯"},
                              headers=api.auth("centre1"))
    assert r.status_code == 200 and r.json()["applied"], r.text
    r = await api.client.post(f"/api/alerts/{aid}/arrival", json={}, headers=api.auth("centre1"))
    assert r.status_code == 409 and r.json()["problem"].startswith("维保到场已由"), r.text
    page = (await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))).json()
    assert page["arrival"]["arrived_at"] is not None
    entries = [t for t in page["transitions"] if t["action"] == "arrival"]
    print(entries)
    assert [(t["outcome"], t["reason"], t["note"]) for t in entries][0] == (
        "applied", "维保单位到场，用时20分钟（30分钟时限内）", "维保人员已到3号梯")
    assert entries[1]["outcome"] == "rejected"
    # an alarm without a timer: refused, recorded, in Chinese
    other = api.seeded.alerts["gas_s1"]
    r = await api.client.post(f"/api/alerts/{other}/arrival", json={}, headers=api.auth("centre1"))
    assert r.status_code == 409 and "没有维保到场计时" in r.json()["problem"]


async def test_the_matrix_page_lists_a_company_only_a_call_reaches(fresh_api):
    api = fresh_api
    async with api.pool.acquire() as conn:
        lift = await conn.fetchval("SELECT id FROM devices WHERE domain='elevator' ORDER BY id LIMIT 1")
        await conn.execute("INSERT INTO maintainers (id, name, duty_phone) VALUES ('M9', '临江某电梯维保有限公司',"
                           " '0571-86050009')")
        await conn.execute("UPDATE devices SET maintainer_id='M9' WHERE id=$1", lift)
    d = (await api.client.get("/api/matrix", headers=api.auth("centre1"))).json()
    (row,) = [u for u in d["reach"] if u["id"] == "M9"]
    assert row == {"unit_kind": "维保单位", "id": "M9", "name": "临江某电梯维保有限公司", "roles": "电梯维保单位（1 台电梯）",
                   "problem": "仅能语音呼叫（只有座机：无值班手机、无群机器人，收不到短信）", "channels": ["语音呼叫"]}
