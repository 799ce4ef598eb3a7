"""Chinese SMS templates: site, device, what happened, when, what to do, and how to acknowledge.

Length: a text with any Chinese character travels as UCS-2 — 70 characters in a single SMS,
67 per segment once it is split (the concatenation header takes 3). The provider prepends the
signature 【签名】, which counts too. :func:`render` shortens the variable parts (site name
first, then the device, then the advice) until the text fits ``max_segments``; the ack code
is never cut.

Cloud SMS providers only send pre-registered templates with parameters, so each template here
has a stable name, a parameter order (Tencent's ``TemplateParamSet`` is positional) and a
per-parameter length cap (providers refuse over-long variables).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "SmsTemplate",
    "TEMPLATES",
    "KIND_ZH",
    "what_happened",
    "what_to_do",
    "sms_segments",
    "render",
    "format_when",
    "CST",
    "ACK_TOKEN_LEN",
    "ack_link",
]

CST = timezone(timedelta(hours=8), "CST")
_PARAM_MAX = 35  # Alibaba Cloud: a variable of a notification template is at most 35 characters
#: characters of a short-link token (128 random bits, URL-safe base64: alerting/acks.py)
ACK_TOKEN_LEN = 22


def ack_link(base_url: str) -> str:
    """The ``link`` parameter: the short link with a placeholder of the token's exact length,
    so a text rendered once for a group message keeps its length (and segment count) when
    each recipient's own token replaces it (:func:`alerting.acks.personalize`). The link is
    exempt from the 35-character cap: a cut link is worse than none (render drops it whole)."""
    return f"，或点 {base_url.rstrip('/')}/{'-' * ACK_TOKEN_LEN}" if base_url else ""


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    name: str
    text: str  # str.format template over ``params``
    params: tuple[str, ...]  # provider parameter order
    shrink: tuple[str, ...]  # which params may be shortened, first shortened first


TEMPLATES: dict[str, SmsTemplate] = {
    t.name: t
    for t in (
        SmsTemplate("alarm", "{site}{device}发生{what}（{sev}色，{when}{late}）。请{todo}。回复{code}确认{link}",
                    ("site", "device", "what", "sev", "when", "late", "todo", "code", "link"),
                    ("site", "device", "todo", "link")),
        SmsTemplate("alarm_repeat",
                    "再次提醒：{site}{device}{what}仍未解除（{sev}色，{when}起{late}）。请{todo}。回复{code}确认{link}",
                    ("site", "device", "what", "sev", "when", "late", "todo", "code", "link"),
                    ("site", "device", "todo", "link")),
        SmsTemplate("resolved", "{site}{device}{what}已于{when}解除，请核实现场并反馈处置情况。",
                    ("site", "device", "what", "when"), ("site", "device")),
        SmsTemplate("notice",
                    "【{level}】{site}{what}（{sev}色{late}）自{when}起{unmet}，请于{deadline}前{todo}。"
                    "回复{code}确认{link}",
                    ("level", "site", "what", "sev", "late", "when", "unmet", "deadline", "todo", "code",
                     "link"),
                    ("site", "todo", "link")),
        SmsTemplate("broadcast", "{body}", ("body",), ("body",)),
    )
}

#: What happened, in the words operators use, per event kind.
KIND_ZH: dict[str, str] = {
    "gas.high": "可燃气体浓度超高限报警",
    "gas.low": "可燃气体浓度低限报警",
    "gas.rate_of_rise": "可燃气体浓度快速上升",
    "gas.sensor_fault": "燃气探测器故障",
    "gas.valve_fault": "燃气切断阀故障",
    "gas.valve_closed": "燃气切断阀动作关闭",
    "gas.power_loss": "燃气报警装置断电",
    "gas.flatline": "燃气探测器读数异常停滞",
    "elevator.trapped": "电梯困人",
    "elevator.door_lock_fault": "电梯门锁回路故障",
    "elevator.door_open_moving": "电梯开门走车",
    "elevator.overspeed": "电梯超速",
    "elevator.overtravel_top": "电梯冲顶",
    "elevator.overtravel_bottom": "电梯蹲底",
    "elevator.stopped_out_of_zone": "电梯非平层停梯",
    "elevator.fault": "电梯故障",
    "elevator.frequent_faults": "电梯频繁故障",
    "fire.alarm": "火灾报警",
    "fire.fault": "消防设备故障",
    "fire.supervisory": "消防监管报警",
    "fire.shielded_too_long": "消防部件长时间屏蔽",
    "fire.rate_of_rise": "温度烟雾快速上升",
    "device.offline": "设备离线",
}

_TODO: tuple[tuple[str, str], ...] = (
    ("gas.high", "立即关闭燃气阀门、开窗通风，严禁明火和开关电器，并排查泄漏点"),
    ("gas.low", "立即关闭燃气阀门、开窗通风，严禁明火，并排查泄漏点"),
    ("gas.rate_of_rise", "立即关闭燃气阀门、开窗通风，严禁明火，并排查泄漏点"),
    ("elevator.trapped", "立即通知维保单位到场救援，安抚被困人员"),
    ("elevator.", "立即停梯并通知维保单位检修"),
    ("fire.alarm", "立即核实现场火情，必要时拨打119并组织疏散"),
    ("fire.rate_of_rise", "立即核实现场情况，必要时拨打119"),
    ("device.offline", "检查设备供电和网络，尽快恢复在线"),
    ("", "尽快安排检修并反馈"),
)


def what_happened(kind: str, summary: str = "") -> str:
    return KIND_ZH.get(kind) or summary or kind


def what_to_do(kind: str) -> str:
    for prefix, todo in _TODO:
        if kind.startswith(prefix):
            return todo
    return "立即核查处置"


def format_when(ts: datetime) -> str:
    """``11月3日09:05`` in China Standard Time: the reader's local clock."""
    t = ts.astimezone(CST)
    return f"{t.month}月{t.day}日{t:%H:%M}"


def sms_segments(text: str) -> int:
    """Number of SMS segments: GSM-7 text 160 / 153 per part, anything else UCS-2 70 / 67."""
    n = len(text)
    if all(ord(c) < 128 for c in text):
        return 1 if n <= 160 else -(-n // 153)
    return 1 if n <= 70 else -(-n // 67)


def render(name: str, params: Mapping[str, str], *, sign_name: str = "", max_segments: int = 3
           ) -> tuple[str, dict[str, str]]:
    """The body (without the signature) and the (possibly shortened) parameters.

    Each parameter is first capped at the providers' variable limit; then the shrinkable
    ones are cut, one character at a time from the longest, until ``【sign】+body`` fits.
    """
    tpl = TEMPLATES[name]
    vals = {k: str(params.get(k, "")) for k in tpl.params}
    for k in vals:
        if k not in ("body", "link") and len(vals[k]) > _PARAM_MAX:
            vals[k] = vals[k][: _PARAM_MAX - 1] + "…"
    prefix = f"【{sign_name}】" if sign_name else ""

    def body() -> str:
        return tpl.text.format(**vals)

    floor = {"site": 4, "device": 0, "todo": 6, "link": 0, "body": 10}
    while sms_segments(prefix + body()) > max_segments:
        cands = [k for k in tpl.shrink if len(vals[k].rstrip("…")) > floor.get(k, 2)]
        if not cands:
            break
        k = max(cands, key=lambda c: len(vals[c]))
        if k == "link":
            vals[k] = ""  # a short link is the first thing to drop; the reply code stays
            continue
        v = vals[k].rstrip("…")
        vals[k] = v[:-1] + "…"
    return body(), vals
