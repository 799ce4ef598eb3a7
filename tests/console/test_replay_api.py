"""POST /api/replay and GET /api/replay/options (console/routes/replay.py) over the scripted morning
(replay_seed.py): the centre sees the removed 误报, other roles are refused, a bad thresholds file
gets the loader's file: path: problem lines, a too-long period alerting's Chinese sentence, a
second replay while one runs 429."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from replay_seed import END, START, minute, proposed, seed_replay

from console.routes import replay as replay_route

pytestmark = pytest.mark.asyncio(loop_scope="session")
LIVE = (Path(__file__).resolve().parents[2] / "data" / "detectors.yaml").read_text(encoding="utf-8")


async def test_replay_api_diff_roles_and_bad_input(fresh_api) -> None:
    api = fresh_api
    async with api.pool.acquire() as conn:
        aid = await seed_replay(conn)
    c, centre = api.client, api.auth("centre1")
    opts = (await c.get("/api/replay/options", headers=centre)).json()
    assert {(m["model"], m["vendor_name"]) for m in opts["models"]} >= {("GD-1", "艾克美")}
    assert "models:" in opts["detectors_yaml"] and opts["max_days"] == 31
    body = {
        "start": START.isoformat(),
        "end": END.isoformat(),
        "model": "GD-1",
        "detectors_yaml": proposed(LIVE, "GD-1", 25),
    }
    csrf = {**centre, "X-CSRF-Token": api.tokens["centre1"][1]}
    r = await c.post("/api/replay", json=body, headers=csrf)
    assert r.status_code == 200, r.text
    d = r.json()
    assert [(a["id"], a["device_id"], a["kind"], a["starts_at"], a["verdict"]) for a in d["removed"]] == [
        (aid, "G1", "gas.low", minute(13).isoformat(), "false")
    ]
    assert d["added"] == [] and d["removed_false"] == 1 and d["false_alarm_rate"] == 1.0
    biz = next(x for x in d["roles"] if x["role"] == "business")
    assert (biz["sms_live"], biz["sms_proposed"]) == (2, 0)  # the alarm and its 恢复 to 王老板, gone
    assert d["live_detectors_file"] == "detectors.yaml"  # no server path
    for user in ("dept-zj", "town-t1", "biz-s1", "vendor-acme"):
        assert (await c.post("/api/replay", json=body, headers=api.auth(user))).status_code == 403, user
    bad = await c.post(
        "/api/replay",
        headers=csrf,
        json={**body, "detectors_yaml": "models:\n  GD-1:\n    gas:\n      low_lel: -5\n"},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("阈值文件校验未通过")
    assert bad.json()["problems"][0].startswith("detectors.yaml: models.GD-1: gas.low_lel")
    badr = await c.post(
        "/api/replay", headers=csrf, json={**body, "routes_yaml": "route: {receiver: nobody}\n"}
    )
    assert badr.status_code == 422 and badr.json()["detail"].startswith("路由文件校验未通过")
    assert any(p.startswith("routes.yaml: ") for p in badr.json()["problems"])
    long = await c.post(
        "/api/replay", headers=csrf, json={**body, "end": (START + timedelta(days=40)).isoformat()}
    )
    assert long.status_code == 422 and "回放时段超过上限" in long.json()["detail"]
    empty = await c.post(
        "/api/replay",
        headers=csrf,
        json={
            **body,
            "start": (START - timedelta(days=2)).isoformat(),
            "end": (START - timedelta(days=1)).isoformat(),
        },
    )
    assert empty.status_code == 422 and "没有任何监测数据" in empty.json()["detail"]
    async with replay_route._RUNNING:  # one replay at a time: a second is told to wait
        busy = await c.post("/api/replay", json=body, headers=csrf)
    assert busy.status_code == 429 and busy.json()["detail"] == "已有一个模拟回放正在进行，请稍后再试"
