"""The ``sms.budget`` section of :class:`hazmon.settings.Settings` (``HAZMON_SMS__BUDGET__*``): the
SMS providers' per-number frequency limits (频率限制) the outbox keeps to (alerting/budget.py,
docs/alerting.md *SMS budgets*), in a module of its own so settings.py stays under its size cap.

The defaults are the providers' published defaults, each changeable in the provider's console —
so set the same figure here when the console's is changed:

* 阿里云 短信服务, 发送频率限制 (流控) of notification SMS: one signature and one template to one
  number at most 50 a day, a rolling 24 h (``HAZMON_SMS__BUDGET__ALIYUN_PER_TEMPLATE_PER_DAY``);
* 腾讯云 短信, 国内短信 default 频率限制: the same content to one number at most once in 30 s
  (``HAZMON_SMS__BUDGET__TENCENT_SAME_TEXT_S``), at most 10 messages to one number in a natural
  day, Beijing time (``HAZMON_SMS__BUDGET__TENCENT_PER_DAY``);
* the webhook gateway (our own) has no limit: no budget.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SmsBudgetSettings"]


class SmsBudgetSettings(BaseModel):
    """Per-number budgets. An ordinary message over one waits for the window to free; a red
    alarm or 四单 notice over a daily one is not sent into a certain refusal but marked 未送达 and
    the duty operator told. ``priority_reserve`` of each daily budget is kept for those: ordinary
    messages stop that many short of it, so a busy day of yellow alarms cannot use up the number's
    last messages before a fire alarm (``HAZMON_SMS__BUDGET__PRIORITY_RESERVE``)."""

    model_config = ConfigDict(extra="forbid")

    #: off: no provider budget (the per-phone hourly limit, ``sms.per_phone_per_hour``, stays)
    enabled: bool = True
    aliyun_per_template_per_day: int = Field(default=50, ge=1)
    tencent_per_day: int = Field(default=10, ge=1)
    #: 0: the same-content rule is off
    tencent_same_text_s: float = Field(default=30.0, ge=0, le=3600)
    priority_reserve: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _reserve_below_budgets(self) -> Self:
        smallest = min(self.aliyun_per_template_per_day, self.tencent_per_day)
        if self.priority_reserve >= smallest:
            raise ValueError(f"priority_reserve ({self.priority_reserve}) must be below every daily budget "
                             f"(smallest {smallest}): ordinary messages would never be sent")
        return self
