"""Late data is not a fresh emergency ladder (issue 18): the pure decisions — when hazmon
learned of an alarm (:func:`alerting.late.timing`), the ladder counted from there
(:func:`alerting.escalation.decide`), and the words a text adds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alerting_helpers import ROUTES, ev

from alerting.config import load_config
from alerting.escalation import EscalationState, decide
from alerting.late import LatePolicy, late_phrase, timing
from hazmon.contracts import AlertPhase, Event, NoticeLevel, Severity

NOW = datetime(2026, 12, 7, 2, 10, tzinfo=UTC)  # 10:10 China time
POLICY = LatePolicy(late_after=timedelta(minutes=5), max_age=timedelta(days=30), max_skew=timedelta(minutes=5))
RED = load_config(ROUTES).policy(Severity.RED)  # 提醒 5m, 警示 15m, 督办 30m, 问责 2h


def state(starts_at: datetime, clock_from: datetime | None, step: int = 0) -> EscalationState:
    return EscalationState(starts_at, AlertPhase.ALARM, False, None, step, 1.0, clock_from=clock_from)


def test_a_three_day_old_alarm_received_now_starts_its_ladder_at_receipt_not_all_at_once() -> None:
    started = NOW - timedelta(days=3)
    t = timing(started, NOW, NOW, POLICY)
    assert t.flag == "late" and t.reported_at == NOW and t.clock_from == NOW
    d = decide(state(started, t.clock_from), RED, NOW)
    assert d.issue == () and d.next_at == NOW + timedelta(minutes=5)  # the first step's timer, from receipt
    d = decide(state(started, t.clock_from), RED, NOW + timedelta(minutes=5))
    assert [s.level for _i, s, _d in d.issue] == [NoticeLevel.REMINDER]  # one step, not four
    assert d.escalation_step == 1 and d.next_at == NOW + timedelta(minutes=15)
    # 问责建议单 only two hours after hazmon learned of it
    d = decide(state(started, t.clock_from, step=3), RED, NOW + timedelta(hours=2) - timedelta(seconds=1))
    assert d.issue == ()
    d = decide(state(started, t.clock_from, step=3), RED, NOW + timedelta(hours=2))
    assert [s.level for _i, s, _d in d.issue] == [NoticeLevel.ACCOUNTABILITY]


def test_without_the_late_clock_the_same_alarm_would_fire_the_whole_ladder() -> None:
    """What the bug was: counted from the device time, all four notices at once."""
    started = NOW - timedelta(days=3)
    d = decide(state(started, None), RED, NOW)
    assert [s.level for _i, s, _d in d.issue] == [NoticeLevel.REMINDER, NoticeLevel.WARNING,
                                                   NoticeLevel.SUPERVISION, NoticeLevel.ACCOUNTABILITY]


def test_on_time_alarms_keep_counting_from_their_start() -> None:
    started = NOW - timedelta(minutes=4, seconds=59)
    t = timing(started, NOW, NOW, POLICY)
    assert t == (NOW, started, "")
    assert timing(NOW, None, NOW, POLICY) == (NOW, NOW, "")  # no receipt known: alerting's own


def test_reported_at_is_never_after_alerting_received_it() -> None:
    t = timing(NOW - timedelta(hours=1), NOW + timedelta(days=1), NOW, POLICY)
    assert t.reported_at == NOW and t.flag == "late"


def test_a_device_clock_ahead_beyond_the_skew_is_flagged_and_counts_from_receipt() -> None:
    assert timing(NOW + timedelta(minutes=4), NOW, NOW, POLICY).flag == ""  # within the skew
    t = timing(NOW + timedelta(days=1), NOW, NOW, POLICY)
    assert t == (NOW, NOW, "clock_future")  # a ladder from tomorrow would never climb today


def test_a_device_time_before_installation_or_beyond_the_max_age_is_a_clock_fault() -> None:
    t = timing(datetime(2000, 1, 1, tzinfo=UTC), NOW, NOW, POLICY)
    assert t == (NOW, NOW, "clock_old")
    t = timing(NOW - timedelta(days=2), NOW, NOW, POLICY, installed_on=date(2026, 12, 6))
    assert t.flag == "clock_old"  # 2 days ago (12-05 CST) is before the device was installed
    assert timing(NOW - timedelta(days=2), NOW, NOW, POLICY, installed_on=date(2026, 12, 5)).flag == "late"


def test_the_texts_say_the_alarm_was_reported_late() -> None:
    started = datetime(2026, 12, 4, 19, 10, tzinfo=UTC)  # 12月5日03:10 China time
    assert late_phrase("", started) == ""
    assert late_phrase("late", started) == "，设备延迟上报，实际发生于12月5日03:10"
    assert late_phrase("clock_old", datetime(2000, 1, 1, tzinfo=UTC)) == \
        "，设备时间异常（报称2000年1月1日08:00），按接报时间计"


def test_an_event_without_received_at_still_decodes() -> None:
    """The contract's new field is optional: a v1 record of an older producer still reads."""
    old = ev("gas.high", "S1-GAS1", "S1").model_dump(mode="json")
    old.pop("received_at", None)
    e = Event.model_validate(old)
    assert e.received_at is None
    assert Event.model_validate_json(e.model_copy(update={"received_at": NOW}).model_dump_json()).received_at == NOW
