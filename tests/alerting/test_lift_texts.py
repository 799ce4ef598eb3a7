"""The lift texts of alerting/templates/lift.py against the providers' rules, with the values a
real lift alarm carries: the 维保单位's text (rescue now, reply 到场 on arrival, the 使用单位's
contact), the missed-arrival escalation, the answers to a reply 到场 (recorded / refused), and
the emergency number (``lift.emergency_phone``, 96333) in the business's trapped text. The
conformance test renders them too, with every role and event kind; these check what a reader of
each must find whole."""

from __future__ import annotations

import re

import pytest

from alerting.templates import (
    ACK_TOKEN_LEN,
    PROVIDERS,
    TEMPLATE_CODES,
    TEMPLATES,
    Deployment,
    for_provider,
    registered_text,
    render,
    sms_segments,
    variant,
)
from alerting.templates.lift import ARRIVAL_CONFIRM, ARRIVAL_REFUSED, OVERDUE, lift_templates, mnt_todo

SIGN = "区应急指挥中心"
DEP = Deployment("http://127.0.0.1:8080/ack", "0571-88001110", "96333")
VALUES = {"level": "红色报警", "unit": "云栖公寓物业服务中心", "loc": "6号楼3单元 1号梯",
          "regcode": "31103301152017432274", "what": "电梯困人", "when": "12月7日16:05", "person": "侯俊",
          "phone": "13900000123", "code": "A7K2Q9", "token": "t" * ACK_TOKEN_LEN,
          "company": "杭州钱江电梯工程有限公司", "limit": "30", "at": "12月7日16:19", "minutes": "14", "more": "1"}
NAMES = [t.name for t in lift_templates()]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_lift_template_is_registered_and_renders_whole(provider: str) -> None:
    rules = PROVIDERS[provider]
    mine = [n for n in NAMES if n in set(for_provider(provider))]
    assert mine and all(n in TEMPLATE_CODES[provider] for n in mine)
    for name in mine:
        tpl = TEMPLATES[name]
        text = registered_text(name, provider, DEP)
        assert not re.search(r"[【】]", text) and not re.search(r"\}\$?\{", text), text
        body, sent = render(name, VALUES, sign_name=SIGN, provider=provider, deployment=DEP)
        print(provider, name, body)
        assert sms_segments(f"【{SIGN}】{body}") <= 3, body
        for k in tpl.params:
            assert 0 < len(sent[k]) <= rules.var_max, (name, k, sent[k])
        for k in ("regcode", "code", "token", "phone", "limit", "when"):
            if k in tpl.params:
                assert sent[k] == VALUES[k], (name, k)  # never cut
        assert DEP.duty_phone in body
        if tpl.link:
            assert body.endswith(f"{DEP.ack_url}/{VALUES['token']}")


def test_the_maintainer_is_told_to_go_now_and_how_its_arrival_is_recorded() -> None:
    name = variant("alarm", "mnt", "elevator.trapped", link=True, regcode=True)
    assert name == "alarm.mnt.trapped.reg_l"
    body, _ = render(name, VALUES, sign_name=SIGN, deployment=DEP)
    assert body.startswith("红色报警：云栖公寓物业服务中心的6号楼3单元 1号梯（注册代码31103301152017432274）发生电梯困人")
    assert "请立即派员到场救援，到场后回复“到场”或致电中心0571-88001110；使用单位侯俊，电话13900000123。" in body
    assert "督促企业" not in body  # not the supervision text
    # a call says the word to send back as words
    assert mnt_todo("elevator.trapped", "0571-88001110") == "立即派员到场救援，到场后短信回复到场二字或致电中心0571-88001110"
    fault = variant("alarm", "mnt", "elevator.door_lock_fault", link=False, regcode=False)
    body, _ = render(fault, {**VALUES, "what": "电梯门锁回路故障"}, sign_name=SIGN, deployment=DEP)
    assert fault == "alarm.mnt.fault" and "请尽快派员到场检修，修复前停止使用" in body
    # a kind that is no lift's: the 维保单位 would read the supervision text
    assert variant("alarm", "mnt", "gas.high", link=False) == variant("alarm", "sup", "gas.high", link=False)
    assert variant("resolved", "mnt", "elevator.trapped", link=False) == "resolved.mnt"


def test_the_emergency_number_is_the_deployments_setting() -> None:
    name = variant("alarm", "biz", "elevator.trapped", link=False, regcode=True)
    body, _ = render(name, VALUES, sign_name=SIGN, deployment=DEP)
    assert "请立即通知维保单位到场救援或拨打96333" in body
    other = Deployment(DEP.ack_url, DEP.duty_phone, "12349")
    body, _ = render(name, VALUES, sign_name=SIGN, deployment=other)
    assert "拨打12349" in body and "96333" not in body
    assert "拨打12349" in registered_text(name, "aliyun", other)


def test_the_overdue_escalation_names_the_company_and_the_limit() -> None:
    body, sent = render(OVERDUE + "_l", VALUES, sign_name=SIGN, deployment=DEP)
    print(body)
    assert body.startswith("到场超时：云栖公寓物业服务中心的6号楼3单元 1号梯发生电梯困人（12月7日16:05起），"
                           "维保单位杭州钱江电梯工程有限公司超过30分钟未到场，请立即督促到场救援，必要时拨打96333。")
    assert sent["company"] == VALUES["company"] and sent["limit"] == "30"
    long_name = {**VALUES, "company": "浙江省临江市钱塘江电梯安装维修工程有限公司"}
    short, sent = render(OVERDUE, long_name, sign_name=SIGN, provider="tencent", deployment=DEP)
    assert "维保单位浙江省临江市钱塘江电梯…超过30分钟" in short and "http" not in short  # 腾讯云: 12 per variable


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_reply_daochang_instruction_fits_every_providers_caps(provider: str) -> None:
    """The instruction is fixed text: never cut; with the link (where the provider takes it) and
    the 注册代码 the trapped text still fits 3 segments with a real lift's values."""
    link = PROVIDERS[provider].var_max >= ACK_TOKEN_LEN
    for kind in ("alarm", "alarm_repeat"):
        for regcode in (True, False):
            name = variant(kind, "mnt", "elevator.trapped", link=link,
                           regcode=regcode and PROVIDERS[provider].var_max >= 20)
            body, _ = render(name, VALUES, sign_name=SIGN, provider=provider, deployment=DEP)
            assert "到场后回复“到场”或致电中心0571-88001110" in body, body
            assert sms_segments(f"【{SIGN}】{body}") <= 3, (name, len(body), body)
    # a lift fault has no 到场 timer: its text asks for a call, not the word
    body, _ = render(variant("alarm", "mnt", "elevator.fault", link=False), VALUES, sign_name=SIGN,
                     provider=provider, deployment=DEP)
    assert "回复“到场”" not in body and "到场后致电中心0571-88001110" in body


def test_the_answers_to_a_reply_daochang() -> None:
    body, sent = render(ARRIVAL_CONFIRM, VALUES, sign_name=SIGN, deployment=DEP)
    print(body)
    assert body == ("已记录到场：云栖公寓物业服务中心的6号楼3单元 1号梯的电梯困人，12月7日16:19到场，用时14分钟。"
                    "请尽快救援并反馈处置情况。中心值班电话0571-88001110。")
    assert sms_segments(f"【{SIGN}】{body}") <= 2 and sent["minutes"] == "14"
    more, _ = render(ARRIVAL_CONFIRM + ".more", VALUES, sign_name=SIGN, provider="tencent", deployment=DEP)
    assert "；另有1条困人报警待到场，请致电中心值班电话0571-88001110报到场。" in more
    refused, sent = render(ARRIVAL_REFUSED, VALUES, sign_name=SIGN, deployment=DEP)
    print(refused)
    assert refused == ("未记录到场：本号码没有待到场的电梯困人报警，到场由接到困人报警的维保单位回复。"
                       "如有疑问请致电中心值班电话0571-88001110。")
    assert set(sent) == {"_tpl"}  # it names no alarm: a wrong number learns nothing
    assert TEMPLATE_CODES["aliyun"][ARRIVAL_REFUSED] > TEMPLATE_CODES["aliyun"][OVERDUE]  # appended
