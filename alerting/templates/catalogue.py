"""The catalogue of registered templates: one per message kind × audience × advice class,
their codes with each provider, and the choice of template for a message (:func:`variant`)."""

from __future__ import annotations

from alerting.templates.area_warning import area_warning_templates
from alerting.templates.followup import duty_templates, followup_templates
from alerting.templates.hazards import hazard_templates
from alerting.templates.lift import lift_templates, lift_variant
from alerting.templates.notices import notice_templates
from alerting.templates.report import report_end_templates
from alerting.templates.rules import ACK_TOKEN_LEN, PROVIDERS, REGCODE_LEN, SmsTemplate
from alerting.templates.system import system_templates, system_variant
from alerting.templates.words import ADVICE, LIFT_CLASSES, READING_CLASSES, advice_class, system_class
from alerting.templates.workorders import workorder_templates

#: late data (alerting/late.py): what an alarm text says after its time; ``when`` is then when
#: hazmon learned of it
_LATE: dict[str, tuple[str, tuple[str, ...]]] = {
    "": ("", ()),
    "late": ("，设备延迟上报，实际发生于{occurred}", ("occurred",)),
    "clock": ("，设备时间异常，按接报时间计", ()),
}


def _templates() -> list[SmsTemplate]:
    out: list[SmsTemplate] = []
    ack = "回复{code}确认"
    link = "，或点{ACK_URL}/{token}"
    duty = "中心值班电话{DUTY_PHONE}。"
    reg = "（注册代码{regcode}）"
    gas = "，浓度{reading}"
    sup_ask = "请到场核实、督促企业处置，企业联系人{person}，电话{phone}。"
    sup_again = "请督促企业立即处置，企业联系人{person}，电话{phone}。"
    who = ("person", "phone")

    def add(name: str, kind: str, text: str, params: tuple[str, ...], shrink: tuple[str, ...],
            ack_part: bool = True) -> None:
        if not ack_part:
            out.append(SmsTemplate(name, kind, text, params, shrink))
            return
        out.append(SmsTemplate(name, kind, text + ack + "。", params + ("code",), shrink))
        out.append(SmsTemplate(name + "_l", kind, text + ack + link, params + ("code", "token"), shrink,
                               True))

    def alarm(at: str, ap: tuple[str, ...], rd: str, rp: tuple[str, ...], late: str, lp: tuple[str, ...]
              ) -> tuple[str, tuple[str, ...]]:
        text = "{level}：{unit}的{loc}" + at + "发生{what}" + rd + "（{when}" + late + "）。"
        return text, ("level", "unit", "loc", *ap, "what", *rp, "when", *lp)

    def again(at: str, ap: tuple[str, ...], rd: str, rp: tuple[str, ...], late: str, lp: tuple[str, ...]
              ) -> tuple[str, tuple[str, ...]]:
        # "截至{asof}": each reminder says when it was written, so no two read alike (腾讯云 refuses
        # the same text to a number twice in 30 s) and the reader knows it is still going on
        text = ("再次提醒（截至{asof}）：{unit}的{loc}" + at + "的{what}仍未解除" + rd.replace("，", "，当前")
                + "（{level}，{when}起" + late + "）。")
        return text, ("asof", "unit", "loc", *ap, "what", *rp, "level", "when", *lp)

    for flag, (late, lp) in _LATE.items():
        sfx = f".{flag}" if flag else ""
        for cls, todo in ADVICE.items():
            # a device-reported alarm carries no reading: its text names none (never "浓度无")
            readings = ((gas, ("reading",), ""), ("", (), ".nr")) if cls in READING_CLASSES else (("", (), ""),)
            with_reg = (("", "", ()), (".reg", reg, ("regcode",))) if cls in LIFT_CLASSES else (("", "", ()),)
            for (rd, rp, nr), (rsfx, at, ap) in ((r, g) for r in readings for g in with_reg):
                # the business: what happened at its own site, what to do now
                text, names = alarm(at, ap, rd, rp, late, lp)
                add(f"alarm.biz.{cls}{rsfx}{nr}{sfx}", "alarm", text + todo + "。" + duty, names, ("unit", "loc"))
                text, names = again(at, ap, rd, rp, late, lp)
                add(f"repeat.biz.{cls}{rsfx}{nr}{sfx}", "alarm_repeat", text + todo + "。" + duty, names,
                    ("unit", "loc"))
        for sub in ("", ".gas", ".reg"):
            # 属地 and 行业监管: verify on site and supervise the business, whose contact is given
            at, ap = (reg, ("regcode",)) if sub == ".reg" else ("", ())
            rd, rp = (gas, ("reading",)) if sub == ".gas" else ("", ())
            text, names = alarm(at, ap, rd, rp, late, lp)
            add(f"alarm.sup{sub}{sfx}", "alarm", text + sup_ask + duty, names + who,
                ("unit", "loc", "person"))
            text, names = again(at, ap, rd, rp, late, lp)
            add(f"repeat.sup{sub}{sfx}", "alarm_repeat", text + sup_again + duty, names + who,
                ("unit", "loc", "person"))
    gone = "{unit}的{loc}的{what}已于{when}解除，"
    add("resolved.biz", "resolved", gone + "请核实现场并反馈处置情况。" + duty[:-1],
        ("unit", "loc", "what", "when"), ("unit", "loc"), ack_part=False)
    add("resolved.sup", "resolved", gone + "请督促企业查明原因并反馈。" + duty[:-1],
        ("unit", "loc", "what", "when"), ("unit", "loc"), ack_part=False)
    add("notice", "notice",
        "{notice}：{unit}的{what}（{level}）自{when}起{unmet}，请于{deadline}前督促处置并反馈。" + duty,
        ("notice", "unit", "what", "level", "when", "unmet", "deadline"), ("unit",))
    add("broadcast", "broadcast", "安全提示：{body}", ("body",), ("body",), ack_part=False)
    # the answer to a reply that acknowledged (alerting/ack_reply.py): which alarm it was taken for
    got = "已确认收到：{unit}的{what}（{when}）"
    add("ack_confirm", "ack_confirm", got + "，请尽快处置并反馈。" + duty, ("unit", "what", "when"), ("unit",),
        ack_part=False)
    add("ack_confirm.more", "ack_confirm", got + "；另有{more}条报警未确认，请按各条短信中的回复码回复。" + duty,
        ("unit", "what", "when", "more"), ("unit",), ack_part=False)
    return out


TEMPLATES: dict[str, SmsTemplate] = {t.name: t for t in _templates()}
TEMPLATES.update((t.name, t) for t in lift_templates())  # 维保单位 and 到场超时 (templates/lift.py)
TEMPLATES.update((t.name, t) for t in followup_templates())  # 办结 outcome, 晨间汇总 (templates/followup.py)
TEMPLATES.update((t.name, t) for t in duty_templates())  # 未送达 note to the duty operator (reach.py)
TEMPLATES.update((t.name, t) for t in notice_templates())  # 四单 per level, 区安委办's (templates/notices.py)
#: 登录验证码 (console/otp.py, alerting/login_code.py): a 验证码 template takes the code as its one
#: variable and nothing else — no link, no number; the 5 minutes are console.otp's CODE_TTL
TEMPLATES["login_code"] = SmsTemplate("login_code", "login_code",
                                      "您的登录验证码为{code}，5分钟内有效，仅用于登录监测平台查看和处置报警，"
                                      "请勿告诉他人；如非本人操作，请忽略本短信。", ("code",), ())
TEMPLATES.update((t.name, t) for t in workorder_templates())  # 工单 (templates/workorders.py)
TEMPLATES.update((t.name, t) for t in hazard_templates())  # 隐患逾期提醒/升级 (templates/hazards.py)
TEMPLATES.update((t.name, t) for t in report_end_templates())  # 报备结束提醒 (templates/report.py)
TEMPLATES.update((t.name, t) for t in system_templates(_LATE))  # the monitoring system's own (templates/system.py)
TEMPLATES.update((t.name, t) for t in area_warning_templates())  # 三色区域预警 (templates/area_warning.py)

#: our template name → the code registered with each provider (阿里云 TemplateCode / 腾讯云
#: TemplateId): configuration of a real deployment; the simulator accepts these
#: the registered template of an outbox row that names only its kind (rows queued before the
#: per-role templates, and tests): the supervision text, which fits every reader
KIND_DEFAULT: dict[str, str] = {"alarm": "alarm.sup", "alarm_repeat": "repeat.sup",
                                "resolved": "resolved.sup", "notice": "notice", "broadcast": "broadcast"}
_ORDER = [*KIND_DEFAULT.values(), *(n for n in TEMPLATES if n not in KIND_DEFAULT.values())]
TEMPLATE_CODES: dict[str, dict[str, str]] = {  # the first five keep the codes registered before
    "aliyun": {n: f"SMS_4801{i:05d}" for i, n in enumerate(_ORDER, 1)},
    "tencent": {n: f"21{i:05d}" for i, n in enumerate(_ORDER, 1)},
}
TEMPLATE_CODES["webhook"] = dict(TEMPLATE_CODES["aliyun"])


def variant(kind: str, audience: str, event_kind: str, *, link: bool, reading: bool = True,
            late: str = "", regcode: bool = False, notice: str = "", prior: bool = True) -> str:
    """The registered template of a message: ``kind`` (alarm, alarm_repeat, resolved, notice,
    broadcast) for ``audience`` (``biz``: the business; ``sup``: everyone supervising it);
    ``late`` the alarm's time flag (alerting/late.py); ``regcode`` whether a lift's 注册代码 is
    named (the caller knows it and the provider's cap takes it whole); ``mnt``: a lift's 维保单位;
    ``notice`` a 四单 level (templates/notices.py; '' the generic notice of rows queued before),
    ``prior`` whether a notice came before a 问责建议单 (it names that notice and its deadline)."""
    if audience == "mnt" and (name := lift_variant(kind, event_kind, link=link, regcode=regcode)):
        return name
    sys_cls = system_class(event_kind)  # the monitoring system's own alarm: the duty operator's text
    if sys_cls is not None and (name := system_variant(kind, sys_cls, link=link, late=late)):
        return name
    cls = advice_class(event_kind)
    if kind in ("alarm", "alarm_repeat"):
        pre = "alarm" if kind == "alarm" else "repeat"
        sfx = ".late" if late == "late" else ".clock" if late.startswith("clock") else ""
        if audience == "biz":
            nr = ".nr" if cls in READING_CLASSES and not reading else ""
            base = f"{pre}.biz.{cls}{'.reg' if regcode and cls in LIFT_CLASSES else ''}{nr}{sfx}"
        elif cls in READING_CLASSES and reading:
            base = f"{pre}.sup.gas{sfx}"
        elif cls in LIFT_CLASSES and regcode:
            base = f"{pre}.sup.reg{sfx}"
        else:
            base = f"{pre}.sup{sfx}"
    elif kind == "resolved":
        return f"resolved.{audience}"
    elif kind == "notice" and notice == "accountability":  # an internal record: no code, no link
        return "notice.accountability" if prior else "notice.accountability.first"
    elif kind == "notice":
        base = f"notice.{notice}" if notice else "notice"
    else:
        return "broadcast"
    return base + "_l" if link else base


def for_provider(provider: str) -> list[str]:
    """The templates a deployment on ``provider`` registers: those whose uncuttable variables
    (the link token, the 注册代码) its variable cap takes whole."""
    cap = PROVIDERS[provider].var_max
    return [n for n, t in TEMPLATES.items()
            if not (t.link and cap < ACK_TOKEN_LEN) and not ("regcode" in t.params and cap < REGCODE_LEN)]
