"""The monitoring system's own alarms (domain ``system``) say what the duty operator does
(alerting/templates/system.py, words.SYSTEM_ADVICE), to every audience and on every channel: never
the supervision of a business (请到场核实、督促企业处置，企业联系人…) nor a business's advice."""

from __future__ import annotations

import pytest

from alerting.templates import TEMPLATES, render, variant, what_to_do
from alerting.templates.words import SYSTEM_ADVICE, system_class

KINDS = {"system.watchdog_heartbeat_lost": "sys_watchdog", "system.canary_broken": "sys_chain",
         "system.canary_degraded": "sys_bridge", "system.hazmon_stage_down": "sys_stage"}
PARAMS = {"level": "红色报警", "unit": "区应急指挥中心监测系统", "loc": "燃气（通用JSON）金丝雀等5处",
          "what": "监测链路中断，中断于检测服务（心跳16:29:55停止）", "when": "12月7日16:30", "asof": "12月7日16:35",
          "occurred": "12月7日16:00", "code": "449841", "token": "A" * 22}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("audience", ["biz", "sup", "mnt"])
def test_every_message_of_a_system_alarm_says_the_duty_operators_job(kind: str, audience: str) -> None:
    meaning, do = SYSTEM_ADVICE[KINDS[kind]]
    assert system_class(kind) == KINDS[kind]
    for msg in ("alarm", "alarm_repeat", "resolved"):
        for late in ("", "late", "clock_future"):
            name = variant(msg, audience, kind, link=True, late=late)
            assert ".sys." in name and TEMPLATES[name].kind == msg, name
            body, _ = render(name, PARAMS, sign_name="区应急指挥中心", provider="aliyun")
            assert "督促企业" not in body and "企业联系人" not in body and "中心值班电话" not in body, body
            if msg != "resolved":
                assert f"。{meaning}：请{do}。回复449841确认，或点" in body, body
                assert ("设备延迟上报" in body) == (late == "late"), body
    assert what_to_do(kind) == do  # what a call says after 请 (voice_alarm: 请{todo})


def test_the_canary_alarm_reads_as_the_duty_operator_receives_it() -> None:
    name = variant("alarm", "biz", "system.canary_broken", link=True)
    body, _ = render(name, PARAMS, sign_name="区应急指挥中心", provider="webhook")
    assert body == ("红色报警：区应急指挥中心监测系统的燃气（通用JSON）金丝雀等5处发生监测链路中断，中断于检测服务（心跳16:29:55停止）"
                    "（12月7日16:30）。设备报警可能漏发：请立即检查中断环节并恢复，恢复前安排人工值守。"
                    "回复449841确认，或点/" + "A" * 22)


def test_a_business_alarm_keeps_its_own_words() -> None:
    assert system_class("gas.high") is None and system_class("device.offline") is None
    assert variant("alarm", "sup", "gas.high", link=False) == "alarm.sup.gas"
    assert what_to_do("fire.alarm").startswith("立即派人到场核实火情")


def test_a_fire_system_test_signal_reads_as_a_test_not_a_repair() -> None:
    """fire.test (a GB/T 26875.3 part in 测试 state) is named in words and told to check only an
    unplanned test, not sent to the 维保单位 as a broken device."""
    from alerting.templates.words import what_happened, what_to_do

    assert what_happened("fire.test") == "消防系统测试报警"
    assert "如未安排测试" in what_to_do("fire.test") and "检修" not in what_to_do("fire.test")
