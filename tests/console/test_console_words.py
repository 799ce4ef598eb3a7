"""The console's words (console/words.py, issue 14): API errors' ``detail`` is Chinese — 404s,
refusals (409's problem), FastAPI's own 422 validation list, sign-in and CSRF refusals — and the
alert page's JSON names recipients' rules, channels, statuses, templates and metrics in words."""

from __future__ import annotations

import re

import pytest

from console.refusals import problem_zh
from console.words import delivery_error, has_latin, metric_words, rule_words, summary_words

ASYNC = pytest.mark.asyncio(loop_scope="session")


def _chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text)) and not has_latin(text)


@ASYNC
async def test_error_details_are_chinese(api):
    c, h = api.client, api.auth("centre1")
    town = api.auth("town-t1")
    aid = api.seeded.alerts["gas_s1"]
    answers = {
        "unknown alert": await c.get("/api/alerts/nope", headers=h),
        "bad id": await c.get("/api/alerts/%20bad%20id", headers=h),
        "bad paging (422)": await c.get("/api/alerts", headers=h, params={"page": 0, "page_size": 9999}),
        "bad severity (422)": await c.get("/api/alerts", headers=h, params={"severity": "purple"}),
        "missing body field (422)": await c.post(
            f"/api/alerts/{aid}/verify", headers=h, json={"verdict": "real"}
        ),
        "not json (422)": await c.post(
            f"/api/alerts/{aid}/close",
            headers={**h, "Content-Type": "application/json"},
            content=b"{not json",
        ),
        "inverted range": await c.get(
            "/api/alerts",
            headers=h,
            params={"since": "2026-11-02T00:00:00+08:00", "until": "2026-11-01T00:00:00+08:00"},
        ),
        "not signed in": await c.get("/api/alerts"),
        "wrong role": await c.get("/api/silences", headers=town),
        "unknown kpi period": await c.get("/api/kpis", headers=h, params={"period": "fortnight"}),
        "wrong password": await c.post(
            "/api/auth/login", json={"username": "centre1", "password": "nope nope"}
        ),
    }
    for what, r in answers.items():
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and _chinese(detail), (what, detail)
    # FastAPI's own list stays for programs, under "errors"
    bad = answers["missing body field (422)"].json()
    assert bad["detail"] == "请求有误：原因必须填写" and bad["errors"][0]["loc"] == ["body", "reason"]


@ASYNC
async def test_a_refused_action_says_why_in_chinese(fresh_api):
    c, h = fresh_api.client, fresh_api.auth("centre1")
    aid = fresh_api.seeded.alerts["gas_s1"]
    r = await c.post(f"/api/alerts/{aid}/close", headers=h, json={"reason": "已处置"})  # 未研判: refused
    assert r.status_code == 409
    assert r.json()["problem"] == "报警当前未研判：真实警情须反馈后办结，其他研判后即可办结"
    assert r.json()["problem_code"].startswith("alert is alarm")  # the code stays for programs
    r = await c.post(
        f"/api/alerts/{aid}/verify",
        headers=h,
        json={"verdict": "real", "reason": "现场确认", "expected_version": 999},
    )
    assert r.status_code == 409 and r.json()["problem"].startswith("报警已被他人更新")
    alert = (await c.get(f"/api/alerts/{aid}", headers=h)).json()
    rejected = [t for t in alert["transitions"] if t["outcome"] == "rejected"]
    assert [t["action_zh"] for t in rejected] == ["办结", "研判"]
    assert all(_chinese(t["problem_zh"]) for t in rejected), rejected
    assert alert["metric_zh"] == {"gas_lel": "可燃气体浓度（%LEL）"}


def test_rules_read_as_sentences():
    names = {
        ("department", "D-ZJ"): "区住建局",
        ("township", "T7"): "东城街道",
        ("village", "V2"): "河西村",
        ("site", "S4"): "河西面馆",
        ("leader", "L1"): "张副区长",
    }
    assert rule_words("matrix:R-gas:department:D-ZJ", "gas", names) == "燃气 → 区住建局（三管三必须）"
    assert rule_words("township:T7:duty", "gas", names) == "属地 → 东城街道（值班）"
    assert rule_words("village:V2:grid_member", "fire", names) == "属地 → 河西村（网格员）"
    assert rule_words("site:S4:contact", "gas", names) == "企业 → 河西面馆（主体责任）"
    assert rule_words("matrix:R-gas:leader:L1", "gas", names) == "燃气 → 张副区长（责任领导）"
    assert rule_words("fallback:duty_operator", "gas", names) == "兜底 → 中心值班员（24小时值班）"
    # the duty room's console row stands for several recipients: one sentence each, none twice
    combined = "matrix:fire:department:xf;site:S4:contact;township:T7:duty;township:T7:duty"
    assert (
        rule_words(combined, "fire", names)
        == "消防 → 监管部门（三管三必须）；企业 → 河西面馆（主体责任）；属地 → 东城街道（值班）"
    )
    assert not has_latin(rule_words("something:else", "gas", names))


def test_summaries_metrics_and_problems():
    assert summary_words("elevator.trapped", "设备上报 trapped") == "电梯困人"
    assert delivery_error("isv.BUSINESS_LIMIT_CONTROL") == "服务商拒绝或未应答（原始代码见发送记录）"
    no_channel = "无可用触达渠道（无手机、无座机、无群机器人）"  # alerting's own reason: unchanged
    assert delivery_error(no_channel) == no_channel
    assert summary_words("gas.high", "老王饭店 燃气浓度 32%LEL") == "老王饭店 燃气浓度 32%LEL"
    assert metric_words("temperature_c", "°C") == "温度（°C）" and metric_words("floor", "") == "楼层"
    assert (
        problem_zh("already acknowledged by centre:centre1 at 2026-11-20T02:00:00+00:00") == "报警已有人确认"
    )
    assert problem_zh("数据库暂时不可用，请稍后重试 (database unavailable)") == "数据库暂时不可用，请稍后重试"
    assert problem_zh("something nobody translated") == "操作未执行：请求不符合要求，请检查后重试"


def test_every_dead_letter_reason_has_its_words() -> None:
    """接入诊断 names each reason in words: a reason added to the contract without its words would
    read 其他原因 to the vendor's engineer."""
    from console.words import DEADLETTER_ZH
    from hazmon.contracts import DeadLetterReason

    assert {r.value for r in DeadLetterReason} <= set(DEADLETTER_ZH)
