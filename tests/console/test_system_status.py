"""监测系统运行状态 (GET /api/system/status) on the real PostgreSQL, from rows as the stages,
alerting and the watchdog write them (tests/console/system_status_seed.py); and the alert page's
actors in words (console/actors.py)."""

from __future__ import annotations

import re

from system_status_seed import seed_monitor

from console.actors import actor_words

LATIN = re.compile(r"[A-Za-z]{2,}")


def _readable(d: dict) -> list[str]:
    """Every string of the answer a person reads (not the raw names the tooltips carry)."""
    out = [d["words"], *d["missing"], *d["problems"]]
    for s in d["stages"]:
        out += [s["name"], s["state_zh"]]
        for i in s["instances"]:
            out += [i["label"], i["state_zh"], i["ago"], *i["facts"]]
    for c in d["canaries"]:
        out += [c["label"], c["state_zh"], c["ago"], c["hop"], *(h["hop"] for h in c["hops"])]
    for w in d["watchdogs"]:
        out += [w["label"], w["verdict_zh"], w["ago"], w["paging"]]
        out += [x for f in w["findings"] for x in (f["name"], f["state_zh"], f["detail"])]
    return out


async def test_the_duty_operator_reads_the_pipeline_in_words(fresh_api):
    async with fresh_api.pool.acquire() as conn:
        await seed_monitor(conn)
    r = await fresh_api.client.get("/api/system/status", headers=fresh_api.auth("centre1"))
    assert r.status_code == 200, r.text
    d = r.json()
    stages = {s["stage"]: s for s in d["stages"]}
    order = [s["stage"] for s in d["stages"]]
    assert order.index("canary") < order.index("bridge") < order.index("detect") < order.index("alerting")

    det = stages["detect"]
    # the restarted detector's earlier row (node1:100, silent 50 s) is its past, not a stopped process
    assert [i["instance"] for i in det["instances"]] == ["node1:200"]
    inst = det["instances"][0]
    assert (det["name"], inst["label"], inst["state_zh"]) == ("检测服务", "检测服务", "正常")
    assert re.fullmatch(r"[34] 秒前", inst["ago"]), inst["ago"]
    assert inst["lag"] == 1234  # per partition, summed
    assert "已处理读数 5,000 条" in inst["facts"] and "10 分钟内启动 2 次" in inst["facts"]

    assert (stages["alerting"]["name"], stages["alerting"]["state_zh"]) == ("告警服务", "延迟")  # 20 s > 15 s
    bridges = stages["bridge"]
    assert [(i["label"], i["state_zh"]) for i in bridges["instances"]] == [("接入网关 1 号", "正常"),
                                                                          ("接入网关 2 号", "停止")]
    assert bridges["state_zh"] == "停止" and stages["watchdog"]["name"] == "值守看门狗"
    assert "金丝雀发布程序" in {s["name"] for s in d["stages"]}

    canaries = {c["label"]: c for c in d["canaries"]}
    assert set(canaries) == {"燃气（JSON）", "消防（GB/T 26875.3）", "电梯（JSON）"}
    gas, fire, lift = canaries["燃气（JSON）"], canaries["消防（GB/T 26875.3）"], canaries["电梯（JSON）"]
    assert gas["state_zh"] == "正常" and gas["hop"] == ""
    assert [h["hop"] for h in gas["hops"]] == ["发布→接入", "接入→检测", "检测→告警服务"]
    assert gas["hops"][0]["ms"] == 12
    assert (fire["state_zh"], fire["hop"], fire["ago"]) == ("中断", "检测服务", "45 秒前")
    assert (lift["state_zh"], lift["ago"]) == ("未到达", "从未")

    (dog,) = d["watchdogs"]
    assert (dog["label"], dog["verdict_zh"], dog["paging"]) == ("值守看门狗", "降级", "短信接口无法连接")
    findings = {f["name"]: f for f in dog["findings"]}
    assert findings["短信接口连接"]["state_zh"] == "异常" and findings["短信接口连接"]["paged"]
    # the English error string is not shown, only its Chinese head; the raw text goes to the tooltip
    assert findings["短信接口连接"]["detail"] == "短信接口无法连接"
    assert "connection refused" in findings["短信接口连接"]["raw"]
    assert findings["待发消息"]["state_zh"] == "无法检查"
    assert findings["检测服务健康端点"]["state_zh"] == "正常"
    assert findings["金丝雀 消防（GB/T 26875.3）"]["state_zh"] == "异常"
    assert dog["findings"][0]["ok"] is False  # what is wrong comes first
    assert d["state"] == "down" and d["words"] == "有服务停止或链路中断"
    assert re.fullmatch(r"告警服务延迟（最后心跳 2\d 秒前）", d["problems"][1]), d["problems"]
    assert d["problems"][:1] + d["problems"][2:] == ["接入网关 2 号停止（最后心跳 1 分钟前）",
                             "电梯（JSON）金丝雀数据未到达", "消防（GB/T 26875.3）监测链路中断于检测服务",
                             "值守看门狗降级：短信接口连接、金丝雀 消防（GB/T 26875.3）"]

    english = [t for t in _readable(d) if LATIN.search(t.replace("JSON", "").replace("GB/T", ""))]
    assert english == []


async def test_only_the_centre_and_administrators_see_it(fresh_api):
    for user, status in (("centre1", 200), ("admin1", 200), ("town-t1", 403), ("dept-zj", 403),
                         ("biz-s1", 403), ("vendor-acme", 403)):
        r = await fresh_api.client.get("/api/system/status", headers=fresh_api.auth(user))
        assert r.status_code == status, (user, r.text)
    r = await fresh_api.client.get("/api/system/status")
    assert r.status_code == 401
    # nothing written yet: no stage, canary or watchdog is no green page
    d = (await fresh_api.client.get("/api/system/status", headers=fresh_api.auth("centre1"))).json()
    assert (d["state"], d["words"]) == ("down", "检测服务、告警服务未上报心跳")  # not a green page
    assert "值守看门狗" in d["missing"] and "检测服务" in d["missing"]
    assert d["watchdogs"] == [] and d["canaries"] == []


async def test_the_alert_timeline_names_actors_in_words(api):
    aid = api.seeded.alerts["gas_s1"]
    r = await api.client.get(f"/api/alerts/{aid}", headers=api.auth("centre1"))
    assert r.status_code == 200
    fire = next(t for t in r.json()["transitions"] if t["action"] == "fire")
    assert (fire["actor"], fire["actor_zh"]) == ("system", "系统")


def test_actor_codes_in_words():
    told = {"R-gas:site:S1:0": ("王老板", "老王饭店")}
    users = {"duty01": "李值班"}
    assert actor_words("system", told, users) == "系统"
    assert actor_words("centre:duty01", told, users) == "李值班（中心值班员）"
    assert actor_words("township:t9", told, users) == "镇街（账号 t9）"
    assert actor_words("sms_reply:R-gas:site:S1:0", told, users) == "回复码确认（王老板·老王饭店）"
    assert actor_words("link:R-gas:site:S1:0", told, users) == "短链接确认（王老板·老王饭店）"
    assert actor_words("voice:unknown", told, users) == "语音按键确认（接收人）"
    assert actor_words("sms_reply:non_recipient", told, users) == "回复码确认（非本报警接收人）"
    assert actor_words("gw:x", told, users) == "外部系统"
