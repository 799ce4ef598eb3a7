"""逾期 on the board: why an open alarm is past its time, in words, from the timers alerting
keeps (alerting/queries_board.overdue_marks). Pure: takes ``now``.

* the 维保单位's 到场 limit passed with no 到场 (TSG T5002: 30 min, alerting/arrival.py);
* a 四单 issued and still open (the ladder issues one only when 确认/处置/办结 is unmet past
  its time, alerting/escalation.py), said with what is unmet and whether its deadline passed;
* the ladder's next step fell due (alerting issues it within a tick).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["NOTICE_LEVEL_ZH", "overdue_words"]

NOTICE_LEVEL_ZH = {"reminder": "工作提醒单", "warning": "风险警示单", "supervision": "问题督办单",
                   "accountability": "问责建议单"}
_UNMET = re.compile(r"未确认|未处置|未办结")
_CST = ZoneInfo("Asia/Shanghai")


def _hm(at: datetime) -> str:
    return at.astimezone(_CST).strftime("%H:%M")


def overdue_words(mark: Any | None, now: datetime) -> list[str]:
    """What is overdue about one alarm (empty: nothing); ``mark`` is its overdue_marks row."""
    if mark is None:
        return []
    out: list[str] = []
    due = mark["arrival_due_at"]
    if due is not None and due <= now:
        out.append(f"维保单位超时未到场（应于 {_hm(due)} 前到场）")
    level = mark["notice_level"]
    if level:
        unmet = _UNMET.search(mark["notice_reason"] or "")
        words = f"{unmet.group(0)}，已发{NOTICE_LEVEL_ZH.get(level, '四单')}" if unmet else \
            f"已发{NOTICE_LEVEL_ZH.get(level, '四单')}"
        deadline = mark["notice_deadline"]
        if deadline is not None and deadline <= now:
            words += f"（{_hm(deadline)} 回复期限已过）"
        out.append(words)
    nxt = mark["next_escalation_at"]
    if nxt is not None and nxt <= now and not level:
        out.append("超过处置时限，即将升级")
    return out
