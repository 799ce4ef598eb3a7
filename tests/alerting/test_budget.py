"""alerting/budget.py, pure: the providers' per-number frequency limits (阿里云 50 a template in a
rolling 24 h, 腾讯云 10 a natural day and one content once in 30 s), the per-phone hourly limit,
and what a red alarm gets when a daily budget is spent (未送达, never tomorrow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.budget import CST, Defer, QueuedSms, Refuse, Send, SentSms, beijing_midnight_after, decide
from hazmon.settings_budget import SmsBudgetSettings

T0 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)  # 09:00 Beijing time
PHONE = "13800006001"
DEFAULT = SmsBudgetSettings()


def _sent(n: int, provider: str, *, start: datetime = T0 - timedelta(hours=1),
          step: timedelta = timedelta(minutes=1), template: str = "alarm", priority: int = 0
          ) -> list[SentSms]:
    return [SentSms(PHONE, start + i * step, provider, template, f"旧短信{i}", priority) for i in range(n)]


def test_tencent_daily_budget_keeps_the_last_two_for_alarms_and_refuses_an_alarm_over_it() -> None:
    today = _sent(8, "tencent")  # 08:00..08:07 Beijing time
    got = decide("tencent", DEFAULT, 20, today, [QueuedSms("yellow", PHONE, "alarm", "黄色报警"),
                                                 QueuedSms("red1", PHONE, "alarm", "红色报警一", 1),
                                                 QueuedSms("red2", PHONE, "alarm", "红色报警二", 1),
                                                 QueuedSms("red3", PHONE, "alarm", "红色报警三", 1)], T0)
    midnight = datetime(2026, 11, 4, 0, 0, tzinfo=CST)
    assert got["yellow"] == Defer(midnight, "已达腾讯云单号码当日发送上限（10条，留2条给红色报警和四单），"
                                            "顺延至11月4日00:00")
    assert got["red1"] == Send() and got["red2"] == Send()
    assert got["red3"] == Refuse("已达腾讯云单号码当日发送上限（10条），未发送")
    # yesterday's (Beijing time) do not count: 23:59 the day before
    late = _sent(10, "tencent", start=datetime(2026, 11, 2, 15, 50, tzinfo=UTC))
    assert decide("tencent", DEFAULT, 20, late, [QueuedSms("y", PHONE, "alarm", "x")], T0)["y"] == Send()


def test_tencent_same_content_waits_30_s_even_for_a_red_alarm() -> None:
    just = [SentSms(PHONE, T0 - timedelta(seconds=10), "tencent", "alarm", "同一内容", 1)]
    got = decide("tencent", DEFAULT, 20, just, [QueuedSms("red", PHONE, "alarm", "同一内容", 1),
                                                QueuedSms("other", PHONE, "alarm", "别的内容", 1)], T0)
    assert got["red"] == Defer(T0 + timedelta(seconds=20), "腾讯云同一内容30秒内限发1条，顺延至09:00:20")
    assert got["other"] == Send()
    # two rows of one text in one batch: the second waits for the first
    got = decide("tencent", DEFAULT, 20, [], [QueuedSms("a", PHONE, "alarm", "火警", 1),
                                              QueuedSms("b", PHONE, "alarm", "火警", 1)], T0)
    assert got["a"] == Send() and isinstance(got["b"], Defer) and got["b"].until == T0 + timedelta(seconds=30)


def test_aliyun_counts_per_template_in_a_rolling_24_h_and_only_its_own_sends() -> None:
    s = SmsBudgetSettings(aliyun_per_template_per_day=5, priority_reserve=1)
    past = _sent(4, "aliyun", start=T0 - timedelta(hours=23), step=timedelta(hours=1))  # 4 of 5 − 1 reserved
    past += _sent(30, "tencent") + _sent(30, "aliyun", template="notice")
    got = decide("aliyun", s, 100, past, [QueuedSms("y", PHONE, "alarm", "黄"),
                                          QueuedSms("n", PHONE, "notice", "单"),
                                          QueuedSms("r", PHONE, "alarm", "红", 1),
                                          QueuedSms("r2", PHONE, "alarm", "红二", 1)], T0)
    # the oldest of the window (T0 − 23 h) leaves it at T0 + 1 h
    assert got["y"] == Defer(T0 + timedelta(hours=1), "已达阿里云同模板单号码24小时上限（5条，留1条给红色报警和四单），"
                                                       "顺延至10:00")
    assert isinstance(got["n"], Defer)  # ordinary: 30 notices of the day, it waits
    assert got["r"] == Send() and got["r2"] == Refuse("已达阿里云同模板单号码24小时上限（5条），未发送")


def test_the_webhook_gateway_has_no_budget_but_the_hourly_limit_stays() -> None:
    past = _sent(30, "webhook", start=T0 - timedelta(minutes=40))
    got = decide("webhook", DEFAULT, 20, past, [QueuedSms("y", PHONE, "alarm", "黄"),
                                                QueuedSms("r", PHONE, "alarm", "红", 1)], T0)
    # 30 ordinary in the last 40 min: the 11th-oldest (T0 − 30 min) must leave the hour first
    assert got["y"] == Defer(T0 + timedelta(minutes=30), "已达单号码每小时普通短信上限（20条），顺延至09:30")
    assert got["r"] == Send()
    off = SmsBudgetSettings(enabled=False)
    assert decide("tencent", off, 100, _sent(40, "tencent"), [QueuedSms("r", PHONE, "alarm", "红", 1)],
                  T0)["r"] == Send()


def test_a_provider_refusal_we_did_not_foresee_is_not_tried_again_for_a_red_alarm() -> None:
    err = "tencent: LimitExceeded.PhoneNumberDailyLimit: 单个手机号日下发短信条数超过设定的上限"
    got = decide("tencent", DEFAULT, 20, [], [QueuedSms("r", PHONE, "alarm", "红", 1, err),
                                              QueuedSms("y", PHONE, "alarm", "黄", 0, err)], T0)
    assert got["r"] == Refuse("腾讯云已按单号码当日上限拒收，未发送")
    assert got["y"] == Defer(beijing_midnight_after(T0), "腾讯云已按单号码当日上限拒收，顺延至11月4日00:00")
    ali = "aliyun: isv.BUSINESS_LIMIT_CONTROL: 触发天级流控Permits:50"
    got = decide("aliyun", DEFAULT, 20, [], [QueuedSms("y", PHONE, "alarm", "黄", 0, ali)], T0)
    assert got["y"] == Defer(T0 + timedelta(hours=1), "阿里云已按单号码当日上限拒收，顺延至10:00")
    minute = "aliyun: isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1"  # a minute's limit: just send again
    got = decide("aliyun", DEFAULT, 20, [], [QueuedSms("y", PHONE, "alarm", "黄", 0, minute)], T0)
    assert got["y"] == Send()


# --- properties: a day of random traffic to one number, decided pass after pass --------------

_rows = st.lists(st.tuples(st.integers(0, 7200), st.integers(0, 1), st.integers(0, 3), st.integers(0, 2)),
                 min_size=1, max_size=60)


def _run(provider: str, s: SmsBudgetSettings, per_hour: int, arrivals: list[tuple[int, int, int, int]]
         ) -> list[SentSms]:
    """Rows arrive (seconds after T0, priority, text, template); every pass decides the due ones,
    as the outbox would, until none is left. Checks each decision; returns what was sent."""
    due = sorted((T0 + timedelta(seconds=sec), -prio, i, f"内容{body}", f"tpl{tpl}")
                 for i, (sec, prio, body, tpl) in enumerate(arrivals))
    sent: list[SentSms] = []
    passes = 0
    while due and passes < 10_000:
        passes += 1
        now = min(d[0] for d in due)
        batch = sorted((d for d in due if d[0] <= now), key=lambda d: (d[1], d[2]))
        due = [d for d in due if d[0] > now]
        got = decide(provider, s, per_hour, [p for p in sent if p.at > now - timedelta(hours=24)],
                     [QueuedSms(str(d[2]), PHONE, d[4], d[3], -d[1]) for d in batch], now)
        for d in batch:
            out, prio = got[str(d[2])], -d[1]
            if isinstance(out, Send):
                sent.append(SentSms(PHONE, now, provider, d[4], d[3], prio))
            elif isinstance(out, Defer):
                assert out.until > now  # no hot loop
                assert prio <= 0 or out.until - now <= timedelta(seconds=s.tencent_same_text_s)
                due.append((out.until, d[1], d[2], d[3], d[4]))
            else:
                assert isinstance(out, Refuse) and prio > 0 and out.reason.endswith("未发送")
    assert not due, "a row waited forever"
    return sent


@settings(max_examples=60, deadline=None)
@given(_rows, st.integers(1, 10), st.integers(0, 2), st.sampled_from([0.0, 30.0]))
def test_tencent_never_more_than_its_day_nor_one_text_twice_in_30_s(
        arrivals: list[tuple[int, int, int, int]], per_day: int, reserve: int, gap: float) -> None:
    s = SmsBudgetSettings(tencent_per_day=per_day + reserve, priority_reserve=reserve,
                          tencent_same_text_s=gap)
    sent = _run("tencent", s, 5, arrivals)
    days: dict[object, int] = {}
    for p in sent:
        days[p.at.astimezone(CST).date()] = days.get(p.at.astimezone(CST).date(), 0) + 1
    assert all(n <= s.tencent_per_day for n in days.values())
    ordinary = [p for p in sent if p.priority <= 0]
    for p in ordinary:  # ordinary ones stop short of the reserve
        assert sum(1 for q in ordinary if q.at.astimezone(CST).date() == p.at.astimezone(CST).date()) \
            <= s.tencent_per_day - reserve
    if gap:
        for a in sent:
            again = [b for b in sent
                     if b is not a and b.body == a.body and a.at <= b.at < a.at + timedelta(seconds=30)]
            assert not again
    for p in ordinary:  # the hourly limit: 5 ordinary in any hour
        assert sum(1 for q in ordinary if p.at - timedelta(hours=1) < q.at <= p.at) <= 5


@settings(max_examples=60, deadline=None)
@given(_rows, st.integers(1, 6))
def test_aliyun_never_more_than_n_of_a_template_in_any_24_h(arrivals: list[tuple[int, int, int, int]],
                                                             per_day: int) -> None:
    s = SmsBudgetSettings(aliyun_per_template_per_day=per_day + 1, priority_reserve=1)
    sent = _run("aliyun", s, 100, arrivals)
    for p in sent:
        window = [q for q in sent if q.template == p.template and p.at - timedelta(hours=24) < q.at <= p.at]
        assert len(window) <= s.aliyun_per_template_per_day
