"""The ``lift`` section of :class:`hazmon.settings.Settings` (``HAZMON_LIFT__*``): lifts and their
维保单位 (issue 13 item 8), in a module of its own so settings.py stays under the spine's size cap."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LiftSettings"]


class LiftSettings(BaseModel):
    """The emergency number lift texts name, and the 维保单位's time to arrive.

    ``emergency_phone``: the 电梯应急处置服务平台 number (96333 in most cities; a district with its
    own line sets it), fixed text of the registered lift templates, so changing it means
    registering them again. ``arrival_limit_min``: the 维保单位 must be on site (到场) within this
    long of a trapped-passenger alarm — TSG T5002-2017 (电梯维护保养规则): 接到困人报告后抵达现场,
    设区的市不超过 30 分钟 (其他地区一般不超过 1 小时); a missed limit escalates (alerting/arrival.py)."""

    model_config = ConfigDict(extra="forbid")

    emergency_phone: str = Field(default="96333", pattern=r"^\d{3,5}$|^0\d{2,3}-\d{7,8}$")
    arrival_limit_min: int = Field(default=30, ge=1, le=240)
