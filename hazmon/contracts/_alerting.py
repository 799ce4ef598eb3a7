"""Alerting's records: the 四单 notice ladder, 研判 verdicts, the closed loop's phases, who a
recipient is in the responsibility matrix, and the outbox's notification records."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hazmon.contracts._fields import UtcDatetime, _Record

__all__ = [
    "NoticeLevel", "Verdict", "AlertPhase", "RecipientRole", "Recipient", "NotificationRequest",
    "NotificationOutcome",
]

class NoticeLevel(StrEnum):
    """四单工作法: the escalation ladder of formal notices, lowest first."""

    REMINDER = "reminder"  # 工作提醒单
    WARNING = "warning"  # 风险警示单
    SUPERVISION = "supervision"  # 问题督办单 (挂牌督办, with a deadline)
    ACCOUNTABILITY = "accountability"  # 问责建议单

    @property
    def zh(self) -> str:
        return _NOTICE_ZH[self]

    @property
    def step(self) -> int:
        return _NOTICE_STEP[self]


_NOTICE_ZH = {
    NoticeLevel.REMINDER: "工作提醒单",
    NoticeLevel.WARNING: "风险警示单",
    NoticeLevel.SUPERVISION: "问题督办单",
    NoticeLevel.ACCOUNTABILITY: "问责建议单",
}
_NOTICE_STEP = {
    NoticeLevel.REMINDER: 1,
    NoticeLevel.WARNING: 2,
    NoticeLevel.SUPERVISION: 3,
    NoticeLevel.ACCOUNTABILITY: 4,
}


class Verdict(StrEnum):
    """研判 outcome of an alarm."""

    REAL = "real"  # 真实警情
    FALSE = "false"  # 误报
    TEST = "test"  # 测试
    FAULT = "fault"  # 设备故障


class AlertPhase(StrEnum):
    """Closed loop (闭环管理): 报警 → 研判 → 推送 → 处置 → 反馈 → 办结."""

    ALARM = "alarm"  # 报警
    VERIFIED = "verified"  # 研判
    DISPATCHED = "dispatched"  # 推送
    HANDLING = "handling"  # 处置
    FEEDBACK = "feedback"  # 反馈
    CLOSED = "closed"  # 办结


class RecipientRole(StrEnum):
    """Who a recipient is in the responsibility matrix (责任矩阵)."""

    BUSINESS = "business"  # 企业主体责任
    GRID_MEMBER = "grid_member"  # 网格员 (属地)
    TOWNSHIP = "township"  # 镇/街道 值班 (属地)
    DEPARTMENT = "department"  # 行业监管部门 (三管三必须)
    LEADER = "leader"  # 责任领导
    COVERING_LEADER = "covering_leader"  # 包保领导
    MAINTAINER = "maintainer"  # 电梯维保单位: a lift's maintenance company (trapped passengers, faults)
    DUTY_OPERATOR = "duty_operator"  # 中心值班员: the catch-all, never dropped


#: the channels a recipient's contacts give (the notifiers registered under these names)
ContactChannelName = Literal["sms", "voice", "wecom", "dingtalk"]


class ContactChannel(BaseModel):
    """One way to reach a recipient (触达渠道): an SMS to a mobile (``sms``), a voice call (语音通知)
    to a landline or mobile (``voice``), the unit's group robot (``wecom`` 企业微信, ``dingtalk``
    钉钉; ``address`` its webhook URL — 钉钉's 加签 secret stays in the registry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: ContactChannelName
    address: str


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: RecipientRole
    name: str
    unit: str = ""
    phone: str | None = None  # the mobile an SMS goes to (and replies come from), if any
    rule: str  # which matrix rule chose this recipient, recorded with every notification
    #: every channel that reaches this recipient, in order of use (alerting.matrix); empty for a
    #: recipient built with a phone only (routes.yaml's duty operator): an SMS to ``phone``
    channels: tuple[ContactChannel, ...] = ()


class NotificationRequest(_Record):
    """A message to send, as written to the outbox (one per recipient and alert and step)."""

    id: str  # deterministic: dedup key of (alert, recipient, notice step, template)
    alert_id: str
    channel: Literal["sms", "webhook", "console", "voice", "wecom", "dingtalk"]
    recipient: Recipient
    notice_level: NoticeLevel | None = None
    template: str
    body: str
    created_at: UtcDatetime


class NotificationOutcome(_Record):
    id: str
    status: Literal["sent", "delivered", "failed", "retrying", "suppressed"]
    provider_message_id: str = ""
    error: str = ""
    at: UtcDatetime
