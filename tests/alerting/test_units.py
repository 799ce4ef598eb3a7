"""Pure decision functions: matchers, route config validation, route matching, grouping,
inhibition, the escalation ladder, templates and SMS length, phones, backoff, periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from alerting_helpers import ROUTES
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.config import load_config, parse_config, parse_duration
from alerting.errors import RouteConfigError
from alerting.escalation import EscalationState, KeyPeriod, decide, timer_factor
from alerting.group import GroupMember, GroupState, plan_flush
from alerting.inhibit import Candidate, inhibitor
from alerting.kpi import percentile, period_bounds
from alerting.labels import Matcher, parse_matcher
from alerting.matrix import normalize_phone
from alerting.outbox import OutboxPolicy, backoff, notification_id
from alerting.templates import TEMPLATES, Deployment, render, sms_segments
from hazmon.contracts import AlertPhase, Recipient, RecipientRole, Severity, Verdict

T = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
CONFIG = load_config(ROUTES)


def raw_routes() -> dict:
    return yaml.safe_load(ROUTES.read_text(encoding="utf-8"))


# --- matchers ---------------------------------------------------------------------------------

_value = st.text(alphabet=st.characters(blacklist_characters='"\\', blacklist_categories=("Cs", "Cc")), max_size=20)


@given(name=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), op=st.sampled_from(["=", "!="]), value=_value)
def test_matcher_text_round_trip(name: str, op: str, value: str) -> None:
    m = parse_matcher(f'{name}{op}"{value}"')
    assert (m.name, m.op, m.value) == (name, op, value)
    assert parse_matcher(str(m)) == m
    assert m.matches({name: value}) is (op == "=")


def test_matcher_regex_is_anchored_and_missing_label_is_empty() -> None:
    m = parse_matcher('kind=~"fire\\.(fault|supervisory)"')
    assert m.matches({"kind": "fire.fault"}) and not m.matches({"kind": "fire.fault.x"})
    assert parse_matcher('hub!="true"').matches({})
    with pytest.raises(ValueError):
        parse_matcher("kind=~\"(\"")
    with pytest.raises(ValueError):
        Matcher("1bad", "=", "x")


# --- route config -----------------------------------------------------------------------------

def test_sample_routes_load_without_warnings() -> None:
    assert CONFIG.warnings == ()
    assert [r.id for r in CONFIG.routes_for({"domain": "fire", "kind": "fire.alarm"})] == ["fire-alarm"]
    assert [r.id for r in CONFIG.routes_for({"kind": "device.offline", "domain": "gas"})] == ["offline"]
    assert [r.id for r in CONFIG.routes_for({"domain": "gas", "kind": "gas.low", "severity": "yellow"})] == ["route"]
    fire = CONFIG.routes_for({"domain": "fire", "kind": "fire.alarm"})[0]
    assert fire.group_wait == timedelta(seconds=10) and fire.group_interval == timedelta(minutes=2)
    assert fire.repeat_interval == timedelta(minutes=30)


def test_config_errors_name_file_path_and_problem() -> None:
    raw = raw_routes()
    raw["route"]["routes"].insert(0, {"name": "all", "receiver": "standard"})  # catch-all shadows the rest
    raw["route"]["routes"][1]["matchers"] = ['severity="purple"']
    raw["route"]["routes"][2]["receiver"] = "nobody"
    raw["route"]["group_wait"] = "soon"
    raw["inhibit_rules"][0]["equal"] = []
    raw["escalation"]["red"][1]["after"] = "1m"  # earlier than the step before
    raw["duty_operator"]["phone"] = "110"
    raw["key_periods"][0]["ends_at"] = "2026-09-01T00:00:00+08:00"
    raw["colour"] = "red"
    with pytest.raises(RouteConfigError) as exc:
        parse_config(raw, file="routes.yaml")
    problems = dict(exc.value.problems)
    assert "never reached" in problems["route.routes[1]"]
    assert "matches nothing" in problems["route.routes[1].matchers[0]"]
    assert "unknown receiver 'nobody'" in problems["route.routes[2].receiver"]
    assert "not a duration" in problems["route.group_wait"]
    assert "equal" in problems["inhibit_rules[0].equal"]
    assert "later than the step before" in problems["escalation.red[1].after"]
    assert "not a valid mainland mobile" in problems["duty_operator.phone"]
    assert "after starts_at" in problems["key_periods[0].ends_at"]
    assert "unknown key" in problems["colour"]
    assert str(exc.value).startswith("routes.yaml: ")


def test_missing_file_and_bad_yaml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RouteConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("route: [", encoding="utf-8")
    with pytest.raises(RouteConfigError, match="not valid YAML"):
        load_config(bad)


def test_unknown_label_and_missing_ladder_are_warnings() -> None:
    raw = raw_routes()
    raw["route"]["routes"][0]["matchers"].append('floor="3"')
    del raw["escalation"]["blue"]
    cfg = parse_config(raw, file="r.yaml")
    assert any("'floor' is not a standard alert label" in w for w in cfg.warnings)
    assert any("escalation.blue" in w for w in cfg.warnings)


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(30) == timedelta(seconds=30)
    for bad in ("5 minutes", "-1s", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


# --- grouping ---------------------------------------------------------------------------------

def _state(**kw) -> GroupState:  # type: ignore[no-untyped-def]
    base = dict(key="g", route_id="r", created_at=T, next_flush_at=T, last_flush_at=None, last_notify_at=None,
                notified_ids=frozenset(), resolved_ids=frozenset())
    base.update(kw)
    return GroupState(**base)  # type: ignore[arg-type]


def test_plan_flush_new_repeat_resolved_muted() -> None:
    iv, rep = timedelta(minutes=5), timedelta(hours=1)
    members = [GroupMember(f"a{i}", True, False, T + timedelta(seconds=i)) for i in range(3)]
    p = plan_flush(_state(), members, now=T, group_interval=iv, repeat_interval=rep, send_resolved=False)
    assert p.notify and p.reason == "new" and p.new_firing == ("a0", "a1", "a2") and p.next_flush_at == T + iv
    told = _state(notified_ids=p.notified_ids, last_notify_at=T)
    p2 = plan_flush(told, members, now=T + iv, group_interval=iv, repeat_interval=rep, send_resolved=False)
    assert not p2.notify
    p3 = plan_flush(told, members, now=T + rep, group_interval=iv, repeat_interval=rep, send_resolved=False)
    assert p3.reason == "repeat"
    done = [GroupMember(m.id, False, False, m.starts_at) for m in members]
    p4 = plan_flush(told, done, now=T + iv, group_interval=iv, repeat_interval=rep, send_resolved=True)
    assert p4.reason == "resolved" and p4.next_flush_at is None
    muted = [GroupMember("m", True, True, T)]
    p5 = plan_flush(_state(), muted, now=T, group_interval=iv, repeat_interval=rep, send_resolved=False)
    assert not p5.notify and p5.next_flush_at == T + iv  # kept alive: the silence may end


# --- inhibition -------------------------------------------------------------------------------

def test_inhibition_rules_of_the_sample_config() -> None:
    gw = {"kind": "device.offline", "hub": "true", "site_id": "S2", "panel": "G2"}
    kid = {"kind": "device.offline", "hub": "false", "site_id": "S2", "panel": "G2"}
    other = {"kind": "device.offline", "hub": "false", "site_id": "S2", "panel": "G9"}
    rules = CONFIG.inhibit_rules
    assert inhibitor("k", kid, [Candidate("g", gw)], rules) == ("hub-offline", "g")
    assert inhibitor("o", other, [Candidate("g", gw)], rules) is None
    assert inhibitor("g", gw, [Candidate("g", gw)], rules) is None  # never itself
    power = {"kind": "gas.power_loss", "site_id": "S2", "domain": "gas"}
    assert inhibitor("o", other, [Candidate("p", power)], rules) == ("power-loss", "p")
    fire = {"kind": "fire.alarm", "domain": "fire", "site_id": "S2", "panel": "P2"}
    fault = {"kind": "fire.fault", "domain": "fire", "site_id": "S2", "panel": "P2"}
    assert inhibitor("f", fault, [Candidate("a", fire)], rules) == ("fire-over-fault", "a")
    assert inhibitor("f", {**fault, "panel": "P3"}, [Candidate("a", fire)], rules) is None


# --- escalation -------------------------------------------------------------------------------

def _es(**kw) -> EscalationState:  # type: ignore[no-untyped-def]
    base = dict(starts_at=T, phase=AlertPhase.ALARM, acknowledged=False, verdict=None, escalation_step=0)
    base.update(kw)
    return EscalationState(**base)  # type: ignore[arg-type]


def test_ladder_steps_and_skips() -> None:
    red = CONFIG.policy(Severity.RED)
    d = decide(_es(), red, T + timedelta(minutes=4))
    assert d.issue == () and d.next_at == T + timedelta(minutes=5)
    d = decide(_es(), red, T + timedelta(minutes=20))  # after downtime: two steps at once
    assert [s.level.value for _, s, _ in d.issue] == ["reminder", "warning"] and d.escalation_step == 2
    assert d.next_at == T + timedelta(minutes=30)
    d = decide(_es(acknowledged=True), red, T + timedelta(minutes=31))
    assert d.skipped == (0, 1) and [s.level.value for _, s, _ in d.issue] == ["supervision"]
    d = decide(_es(phase=AlertPhase.HANDLING, escalation_step=3), red, T + timedelta(hours=3))
    assert d.issue == () and d.finished
    assert decide(_es(verdict=Verdict.FALSE, phase=AlertPhase.VERIFIED), red, T + timedelta(days=1)).finished
    half = decide(_es(timer_factor=0.5), red, T + timedelta(minutes=2, seconds=30))
    assert [s.level.value for _, s, _ in half.issue] == ["reminder"]


def test_key_periods_take_the_tightest_factor() -> None:
    p1 = KeyPeriod("a", "春节", T - timedelta(days=1), T + timedelta(days=1), 0.5)
    p2 = KeyPeriod("b", "寒潮", T - timedelta(days=1), T + timedelta(days=1), 0.25, domains=("gas",))
    p3 = KeyPeriod("c", "两会", T + timedelta(days=5), T + timedelta(days=6), 0.1)
    assert timer_factor([p1, p2, p3], T, "gas", "T1") == 0.25
    assert timer_factor([p1, p2, p3], T, "fire", "T1") == 0.5
    assert timer_factor([p3], T, "gas", "T1") == 1.0


# --- templates --------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(site=st.text(min_size=1, max_size=80), device=st.text(max_size=40), segments=st.integers(1, 4))
def test_rendered_sms_always_fits_and_keeps_the_code(site: str, device: str, segments: int) -> None:
    params = {"unit": site, "loc": device, "what": "可燃气体浓度超高限报警", "level": "红色报警",
              "reading": "23%LEL", "when": "11月3日09:00", "code": "123456", "token": "-" * 22}
    body, _ = render("alarm.biz.gas_leak_l", params, sign_name="区应急指挥中心", max_segments=segments,
                     deployment=Deployment("http://127.0.0.1:8080/ack"))
    if segments >= 3:
        assert sms_segments("【区应急指挥中心】" + body) <= segments
    assert "回复123456确认" in body and body.endswith("http://127.0.0.1:8080/ack/" + "-" * 22)


def test_segments_count() -> None:
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2
    assert sms_segments("中" * 70) == 1 and sms_segments("中" * 71) == 2 and sms_segments("中" * 134) == 2
    assert sms_segments("中" * 135) == 3


def test_every_template_renders() -> None:
    for name, tpl in TEMPLATES.items():
        body, params = render(name, {p: "测" for p in tpl.params})
        assert body and set(params) == set(tpl.params) | {"_tpl"}


# --- phones, outbox ---------------------------------------------------------------------------

def test_phone_normalisation() -> None:
    assert normalize_phone("+86 138-0000-1001") == "13800001001"
    assert normalize_phone("008613800001001") == "13800001001"
    assert normalize_phone("8613800001001") == "13800001001"
    for bad in ("12345", "010-12345678", "23800001001", "", None):
        assert normalize_phone(bad) is None


def test_notification_id_is_the_dedup_key() -> None:
    r = Recipient(role=RecipientRole.BUSINESS, name="老王", unit="老王饭店", phone="13800001001", rule="site:S1:contact")
    a = notification_id("alert-1", r, 0, "sms:alarm")
    assert a == notification_id("alert-1", r.model_copy(update={"rule": "other"}), 0, "sms:alarm")
    assert len({a, notification_id("alert-2", r, 0, "sms:alarm"), notification_id("alert-1", r, 1, "sms:alarm"),
                notification_id("alert-1", r, 0, "sms:resolved")}) == 4


def test_backoff_grows_caps_and_jitters_deterministically() -> None:
    p = OutboxPolicy(base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=5))
    d = [backoff(n, p, "x") for n in range(1, 9)]
    assert d == [backoff(n, p, "x") for n in range(1, 9)]
    assert timedelta(seconds=8) <= d[0] <= timedelta(seconds=12)
    assert d[3] > d[2] > d[1] > d[0]
    assert all(x <= timedelta(minutes=6) for x in d)


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10, 20, 30, 40, 50], 0.9) == pytest.approx(46)


def test_period_bounds_in_china_time() -> None:
    assert period_bounds("2026-11") == (datetime(2026, 10, 31, 16, tzinfo=UTC), datetime(2026, 11, 30, 16, tzinfo=UTC))
    assert period_bounds("2026-12")[1] == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert period_bounds("2026-Q4") == (datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC))
    assert period_bounds("2026")[0] == datetime(2025, 12, 31, 16, tzinfo=UTC)
