"""The monitoring system's own alarms (domain ``system``), as the centre's 值班员 reads them.

监测链路中断 (alerting/canary.py), 看门狗心跳中断 (alerting/selfwatch.py), 监测链路降级 and
Prometheus's rules (alerting/am_receiver.py) go to the duty desk and the duty leader, not to a
business: the supervision text (请到场核实、督促企业处置，企业联系人…) and a business's advice
(请尽快核查处置并反馈) both say the wrong thing. These say what it means and what to do, per
:data:`~alerting.templates.words.SYSTEM_ADVICE` class: ``alarm.sys.<class>`` (with the late
variants and the link's ``_l``), ``repeat.sys.<class>``, ``resolved.sys.<class>`` (what to check
once it is over). No 中心值班电话: the reader is the duty room (and the duty leader, who knows
it). ``what`` is never shortened (the canary's names the hop); ``unit`` and ``loc`` are.

Appended at the end of the catalogue: the codes registered before keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from alerting.templates.rules import SmsTemplate
from alerting.templates.words import SYSTEM_ADVICE, SYSTEM_DONE

__all__ = ["system_templates", "system_variant"]

_SHRINK = ("unit", "loc")


def system_templates(late: Mapping[str, tuple[str, tuple[str, ...]]]) -> list[SmsTemplate]:
    """Every system template; ``late``: flag → (the phrase after the time, its variables)."""
    out: list[SmsTemplate] = []
    ack, link = "回复{code}确认。", "回复{code}确认，或点{ACK_URL}/{token}"
    for cls, (meaning, do) in SYSTEM_ADVICE.items():
        todo = f"{meaning}：请{do}。"
        for flag, (phrase, lp) in late.items():
            sfx = f".{flag}" if flag else ""
            texts = {
                "alarm": ("{level}：{unit}的{loc}发生{what}（{when}" + phrase + "）。" + todo,
                          ("level", "unit", "loc", "what", "when", *lp)),
                "repeat": ("再次提醒（截至{asof}）：{unit}的{loc}的{what}仍未解除（{level}，{when}起" + phrase
                           + "）。" + todo, ("asof", "unit", "loc", "what", "level", "when", *lp)),
            }
            for pre, (text, names) in texts.items():
                kind = "alarm" if pre == "alarm" else "alarm_repeat"
                name = f"{pre}.sys.{cls}{sfx}"
                out.append(SmsTemplate(name, kind, text + ack, (*names, "code"), _SHRINK))
                out.append(SmsTemplate(name + "_l", kind, text + link, (*names, "code", "token"), _SHRINK, True))
        out.append(SmsTemplate(f"resolved.sys.{cls}", "resolved",
                               "{unit}的{loc}的{what}已于{when}解除，" + SYSTEM_DONE[cls] + "。",
                               ("unit", "loc", "what", "when"), _SHRINK))
    return out


def system_variant(kind: str, cls: str, *, link: bool, late: str) -> str | None:
    """The template of a system alarm's message ``kind`` (alarm, alarm_repeat, resolved); None for
    another kind (a 四单 notice keeps its own)."""
    if kind == "resolved":
        return f"resolved.sys.{cls}"
    if kind not in ("alarm", "alarm_repeat"):
        return None
    sfx = ".late" if late == "late" else ".clock" if late.startswith("clock") else ""
    pre = "alarm" if kind == "alarm" else "repeat"
    return f"{pre}.sys.{cls}{sfx}{'_l' if link else ''}"
