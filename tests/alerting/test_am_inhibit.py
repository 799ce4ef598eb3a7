"""Conformance: inhibition rules follow Alertmanager's documented semantics.

Source (prometheus/alertmanager, docs/configuration.md, "<inhibit_rule>"):
  [rule]     "An inhibition rule mutes an alert (target) matching a set of matchers when an alert
             (source) exists that matches another set of matchers. Both target and source alerts
             must have the same label values for the label names in the `equal` list."
  [missing]  "a missing label and a label with an empty value are the same thing. Therefore, if
             all the label names listed in `equal` are missing from both the source and target
             alerts, the inhibition rule will apply."
  [self]     "an alert that matches _both_ the target and the source side of a rule cannot be
             inhibited by alerts for which the same is true (including itself)."
  [deprec]   source_match / target_match (and *_re) are DEPRECATED in favour of *_matchers.
Only firing alerts are sources (Alertmanager ignores resolved ones). Vectors are hazmon's own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import yaml
from alerting_helpers import ServiceFactory, config_with, ev, raw_routes

from alerting.clock import ManualClock
from alerting.config import parse_config
from alerting.errors import RouteConfigError
from alerting.inhibit import Candidate, InhibitRule, inhibitor
from alerting.labels import parse_matchers
from hazmon.contracts import Severity


def rule(src: str, tgt: str, equal: tuple[str, ...] = ("site_id",), name: str = "r") -> InhibitRule:
    return InhibitRule(name, parse_matchers(src), parse_matchers(tgt), equal)


def muted(target: dict[str, str], sources: dict[str, dict[str, str]], rules: list[InhibitRule],
          target_id: str = "t") -> tuple[str, str] | None:
    return inhibitor(target_id, target, [Candidate(i, lab) for i, lab in sources.items()], rules)


def test_source_and_target_with_equal_labels() -> None:  # [rule]
    r = rule('kind="site.power_loss"', 'kind="device.offline"')
    tgt = {"kind": "device.offline", "site_id": "S1"}
    assert muted(tgt, {"p": {"kind": "site.power_loss", "site_id": "S1"}}, [r]) == ("r", "p")
    assert muted(tgt, {"p": {"kind": "site.power_loss", "site_id": "S2"}}, [r]) is None   # equal differs
    assert muted(tgt, {"p": {"kind": "gas.low", "site_id": "S1"}}, [r]) is None           # not a source
    assert muted({"kind": "gas.low", "site_id": "S1"}, {"p": {"kind": "site.power_loss", "site_id": "S1"}},
                 [r]) is None                                                               # not a target


def test_equal_with_the_label_missing_on_both_sides_counts_as_equal() -> None:  # [missing]
    r = rule('kind="site.power_loss"', 'kind="device.offline"', equal=("zone",))
    assert muted({"kind": "device.offline"}, {"p": {"kind": "site.power_loss"}}, [r]) == ("r", "p")
    assert muted({"kind": "device.offline", "zone": ""}, {"p": {"kind": "site.power_loss"}}, [r]) == ("r", "p")
    assert muted({"kind": "device.offline", "zone": "A"}, {"p": {"kind": "site.power_loss"}}, [r]) is None


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:  # [self]
    r = rule('domain="fire"', 'domain="fire"')
    a = {"domain": "fire", "kind": "fire.alarm", "site_id": "S1"}
    assert muted(a, {"t": a}, [r], target_id="t") is None


def test_two_alerts_matching_both_sides_do_not_mute_each_other() -> None:  # [self]
    # the rule reads "any fire alert mutes fire alerts of the same site": both would go quiet
    r = rule('domain="fire"', 'domain="fire"')
    a = {"domain": "fire", "kind": "fire.alarm", "site_id": "S1", "device_id": "D1"}
    b = {"domain": "fire", "kind": "fire.alarm", "site_id": "S1", "device_id": "D2"}
    assert muted(a, {"a": a, "b": b}, [r], target_id="a") is None
    assert muted(b, {"a": a, "b": b}, [r], target_id="b") is None


def test_a_two_sided_target_is_still_muted_by_a_one_sided_source() -> None:  # [self]
    # source: fire alarms and faults; target: faults. A fault matches both sides; an alarm only the source.
    r = rule('kind=~"fire\\.(alarm|fault)"', 'kind="fire.fault"')
    fault = {"kind": "fire.fault", "site_id": "S1"}
    other_fault = {"kind": "fire.fault", "site_id": "S1", "device_id": "D9"}
    alarm = {"kind": "fire.alarm", "site_id": "S1"}
    assert muted(fault, {"f2": other_fault}, [r], target_id="f") is None     # two-sided source: disregarded
    assert muted(fault, {"f2": other_fault, "al": alarm}, [r], target_id="f") == ("r", "al")


def test_one_sided_target_is_muted_by_a_two_sided_source() -> None:  # [self]: only two-sided targets get the exception
    r = rule('domain="fire"', 'kind="fire.fault"', equal=("panel",))
    tgt = {"kind": "fire.fault", "panel": "P1"}          # domain missing: target only
    src = {"domain": "fire", "kind": "fire.fault", "panel": "P1"}  # matches both sides
    assert muted(tgt, {"s": src}, [r]) == ("r", "s")


def test_rules_are_independent_and_the_first_that_mutes_is_named() -> None:
    r1 = rule('kind="a"', 'kind="t"', name="r1")
    r2 = rule('kind="b"', 'kind="t"', name="r2")
    assert muted({"kind": "t", "site_id": "S1"}, {"x": {"kind": "b", "site_id": "S1"}}, [r1, r2]) == ("r2", "x")


def test_equal_on_a_label_shared_across_sites_works_across_sites() -> None:
    r = rule('kind="power.township_outage"', 'kind="device.offline"', equal=("township_id",))
    src = {"kind": "power.township_outage", "site_id": "S1", "township_id": "T1"}
    assert muted({"kind": "device.offline", "site_id": "S2", "township_id": "T1"}, {"p": src}, [r]) == ("r", "p")
    assert muted({"kind": "device.offline", "site_id": "S4", "township_id": "T2"}, {"p": src}, [r]) is None


@pytest.mark.parametrize(("key", "want"), [
    ("source_match", "source_matchers"), ("source_match_re", "source_matchers"),
    ("target_match", "target_matchers"), ("target_match_re", "target_matchers"),
])
def test_deprecated_forms_are_refused_with_the_rewrite(key: str, want: str) -> None:  # [deprec]
    raw = raw_routes()
    raw["inhibit_rules"][0][key] = {"kind": "device.offline"}
    with pytest.raises(RouteConfigError) as exc:
        parse_config(raw, file="routes.yaml")
    got = dict(exc.value.problems)[f"inhibit_rules[0].{key}"]
    assert want in got


def test_inhibit_matchers_accept_the_comma_list_form() -> None:
    raw = raw_routes()
    raw["inhibit_rules"][0]["source_matchers"] = ['{kind="device.offline", hub="true"}']
    c = parse_config(raw, file="routes.yaml")
    assert [str(m) for m in c.inhibit_rules[0].source] == ['kind="device.offline"', 'hub="true"']


def test_unknown_key_in_a_rule_is_refused() -> None:
    raw = yaml.safe_load("""{source_matchers: ['kind="a"'], target_matchers: ['kind="b"'], equal: [site_id],
                              equals: [panel]}""")
    full = raw_routes()
    full["inhibit_rules"] = [raw]
    with pytest.raises(RouteConfigError) as exc:
        parse_config(full, file="routes.yaml")
    assert "unknown key" in dict(exc.value.problems)["inhibit_rules[0].equals"]


# --- through the service: a township-wide cause mutes offline alarms at other sites ---------------

async def rows(pool: asyncpg.Pool, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def test_township_wide_source_inhibits_targets_at_other_sites_of_that_township(
    pool: asyncpg.Pool, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    rules = [{"name": "township-outage", "source_matchers": ['kind="power.township_outage"'],
              "target_matchers": ['kind="device.offline"'], "equal": ["township_id"]}]
    svc = await make_service(config=config_with(inhibit_rules=rules))
    y = Severity.YELLOW
    outage = ev("power.township_outage", "S1-GAS1", "S1", severity=Severity.ORANGE)   # S1 is in T1
    same_township = ev("device.offline", "G2-GAS1", "S2", severity=y)                 # S2 is in T1
    other_township = ev("device.offline", "S4-GAS1", "S4", severity=y)                # S4 is in T2
    await svc.handle_events([outage, same_township, other_township])
    clock.advance(timedelta(minutes=3))
    await svc.tick()
    sup = {r["id"]: r["suppressed_by"] for r in await rows(pool, "SELECT id, suppressed_by FROM alerts")}
    assert sup[same_township.id] == f"inhibit:township-outage:{outage.id}"
    assert sup[other_township.id] == ""
    assert sup[outage.id] == ""
