"""The matrix page's 触达检查 (issue 13) on real PostgreSQL: the duty rooms only a voice call
reaches, with the roles they play, in Chinese — the same findings as the registry import."""

from __future__ import annotations


async def test_matrix_page_lists_the_landline_only_duty_rooms(fresh_api) -> None:  # type: ignore[no-untyped-def]
    api = fresh_api
    h = api.auth("centre1")
    d = (await api.client.get("/api/matrix", headers=h)).json()
    by_id = {u["id"]: u for u in d["reach"]}
    # every duty room of the console district is a landline: all five roles are listed
    assert d["reach_count"] == 5 and sorted(by_id) == ["D-SJ", "D-YJ", "D-ZJ", "T1", "T2"]
    assert by_id["T1"] == {"unit_kind": "镇街", "id": "T1", "name": "城关镇",
                           "roles": "属地镇街值班（2 个场所）",
                           "problem": "仅能语音呼叫（只有座机：无值班手机、无群机器人，收不到短信）",
                           "channels": ["语音呼叫"]}
    assert by_id["D-ZJ"]["roles"] == "行业监管部门（矩阵规则「燃气 → 区住建局」）"  # the rule in words, not R-gas
    # a duty mobile (or a robot) beside the landline takes a room off the list
    async with api.pool.acquire() as conn:
        await conn.execute("UPDATE townships SET duty_mobile='13957100001' WHERE id='T1'")
        await conn.execute("UPDATE departments SET robot='wecom', robot_url='https://qyapi.weixin.qq.com/"
                           "cgi-bin/webhook/send?key=k1' WHERE id='D-ZJ'")
    d = (await api.client.get("/api/matrix", headers=api.auth("dept-zj"))).json()
    assert [u["id"] for u in d["reach"]] == ["T2", "D-SJ", "D-YJ"] and d["reach_count"] == 3
