"""Periods of a bulletin: calendar months, quarters and years in China Standard Time, or any
[start, end) (自定义); each checked before anything is read."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from alerting.errors import InvalidAction

__all__ = ["CST", "period_bounds", "period_label", "day_start", "days_of", "check_period",
           "previous_period", "year_ago_period"]

#: China Standard Time: bulletins count calendar days/months as the district office does.
CST = timezone(timedelta(hours=8), "CST")

_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4]))?$")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``2026-11`` (month), ``2026-Q4`` (quarter), ``2026`` (year) → [start, end) in UTC,
    counted in China Standard Time."""
    m = _PERIOD.match(period.strip())
    if not m:
        raise InvalidAction("无法识别的统计周期：请写成 2026（年）、2026-11（月）或 2026-Q4（季）")
    year = int(m.group(1))
    if not 1970 <= year <= 9998:
        raise InvalidAction(f"无法识别的统计周期 {period.strip()}：年份须在1970至9998之间")
    if m.group(2):
        month = int(m.group(2))
        if not 1 <= month <= 12:
            raise InvalidAction(f"无法识别的统计周期 {period.strip()}：月份须为01至12")
        start = datetime(year, month, 1, tzinfo=CST)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CST)
    elif m.group(3):
        q = int(m.group(3))
        start = datetime(year, 3 * q - 2, 1, tzinfo=CST)
        end = datetime(year + (q == 4), (3 * q) % 12 + 1, 1, tzinfo=CST)
    else:
        start, end = datetime(year, 1, 1, tzinfo=CST), datetime(year + 1, 1, 1, tzinfo=CST)
    return start.astimezone(UTC), end.astimezone(UTC)


def period_label(start: datetime, end: datetime) -> str:
    """``2026年11月``, ``2026年第四季度``, ``2026年`` or ``2026-11-03 至 2026-11-20``."""
    s, e = start.astimezone(CST), end.astimezone(CST)
    first = s.hour == s.minute == s.second == 0 and s.day == 1 and e.hour == e.minute == e.second == 0 \
        and e.day == 1
    months = (e.year - s.year) * 12 + e.month - s.month
    if first and months == 1:
        return f"{s.year}年{s.month}月"
    if first and months == 3 and s.month % 3 == 1:
        return f"{s.year}年第{'一二三四'[s.month // 3]}季度"
    if first and months == 12 and s.month == 1:
        return f"{s.year}年"
    last = (e - timedelta(seconds=1)).astimezone(CST)
    return f"{s:%Y-%m-%d} 至 {last:%Y-%m-%d}"


def day_start(day: date) -> datetime:
    """The start of CST calendar day ``day``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=CST).astimezone(UTC)


def days_of(start: datetime, as_of: datetime) -> tuple[date, date]:
    """The first and last CST day [start, as_of) touches."""
    first = start.astimezone(CST).date()
    last = (max(as_of, start + timedelta(microseconds=1)) - timedelta(microseconds=1)).astimezone(CST).date()
    return first, last


def check_period(start: datetime, end: datetime, now: datetime) -> None:
    """A period must end after it starts and must have begun (InvalidAction, in Chinese)."""
    if end <= start:
        raise InvalidAction("所选时段的结束须晚于开始")
    if start >= now:
        raise InvalidAction(f"所选时段尚未开始（{start.astimezone(CST):%Y-%m-%d %H:%M} 起）")


def previous_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """环比: a calendar month/quarter/year → the one before; any other span → the span of the
    same length just before."""
    s, e = start.astimezone(CST), end.astimezone(CST)
    months = (e.year - s.year) * 12 + e.month - s.month
    if s.day == e.day == 1 and s.time() == e.time() == datetime.min.time() and months in (1, 3, 12):
        total = s.year * 12 + s.month - 1 - months
        p = datetime(total // 12, total % 12 + 1, 1, tzinfo=CST)
        return p.astimezone(UTC), start
    return start - (end - start), start


def year_ago_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """同比: the same dates one year before (29 February → 28 February)."""
    def back(t: datetime) -> datetime:
        c = t.astimezone(CST)
        try:
            return c.replace(year=c.year - 1).astimezone(UTC)
        except ValueError:
            return c.replace(year=c.year - 1, day=28).astimezone(UTC)
    return back(start), back(end)
