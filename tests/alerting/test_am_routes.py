"""Conformance: the route tree of routes.yaml follows Alertmanager's documented semantics.

Sources (prometheus/alertmanager, docs/configuration.md):
  [route]     "<route>": the top-level route must match all alerts (no matchers); an alert walks the
              children, stops at the first matching child unless that child has `continue: true`;
              with no matching child the current node handles it; optional settings are inherited
              from the parent when not set
  [group_by]  "<route>" group_by: "the special value '...' as the sole label name" groups by all labels
  [deprec]    "<route>": `match` / `match_re` are DEPRECATED in favour of `matchers`
  [config]    configuration validation (config/config.go): "cannot have continue in root route",
              "invalid label name in group_by", "duplicated label in group_by", "cannot have
              wildcard group_by (`...`) and other labels at the same time", "group_interval cannot be
              zero", "repeat_interval cannot be zero"
Vectors are hazmon's own; deliberate differences: docs/alerting.md "Differences from Alertmanager".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from alerting.config import AlertingConfig, parse_config
from alerting.errors import RouteConfigError
from alerting.route import group_key

HEAD = """
duty_operator: {name: 值班, phone: "13900000000"}
receivers:
  standard: {roles: [business]}
  life_safety: {roles: [business, covering_leader]}
  maintenance: {roles: [grid_member]}
"""


def cfg(route_yaml: str, **top: Any) -> AlertingConfig:
    raw = yaml.safe_load(HEAD + route_yaml)
    raw.update(top)
    return parse_config(raw, file="routes.yaml")


def problems(route_yaml: str) -> dict[str, str]:
    with pytest.raises(RouteConfigError) as exc:
        cfg(route_yaml)
    return dict(exc.value.problems)


TREE = """
route:
  receiver: standard
  group_by: [site_id, kind]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - name: fire
      matchers: ['domain="fire"']
      receiver: life_safety
      group_wait: 10s
      routes:
        - name: fire-fault
          matchers: ['kind=~"fire\\\\.(fault|supervisory)"']
          receiver: maintenance
          repeat_interval: 12h
        - name: fire-s2
          matchers: ['site_id="S2"']
    - name: gas-red
      matchers: ['domain="gas"', 'severity="red"']
      receiver: life_safety
      continue: true
      group_by: [site_id]
    - name: gas
      matchers: ['domain="gas"']
    - name: never-for-gas
      matchers: ['domain="gas"']
      receiver: maintenance
"""


def ids(c: AlertingConfig, labels: dict[str, str]) -> list[str]:
    return [r.id for r in c.routes_for(labels)]


def test_first_matching_child_wins_and_the_deepest_node_handles() -> None:
    c = cfg(TREE)
    assert ids(c, {"domain": "fire", "kind": "fire.fault", "site_id": "S2"}) == ["fire-fault"]  # not also fire-s2
    assert ids(c, {"domain": "fire", "kind": "fire.alarm", "site_id": "S2"}) == ["fire-s2"]
    assert ids(c, {"domain": "fire", "kind": "fire.alarm", "site_id": "S1"}) == ["fire"]  # no child matched
    assert ids(c, {"domain": "elevator"}) == ["route"]  # nothing matched: the root handles it


def test_continue_goes_on_to_the_next_siblings_and_stops_at_the_first_without_it() -> None:
    c = cfg(TREE)
    assert ids(c, {"domain": "gas", "severity": "red"}) == ["gas-red", "gas"]  # never-for-gas is not reached
    assert ids(c, {"domain": "gas", "severity": "yellow"}) == ["gas"]


def test_children_inherit_receiver_group_by_and_timers_unless_set() -> None:
    c = cfg(TREE)
    byid = {r.id: r for r in c.route.walk()}
    root, fire, fault, s2, gas_red, gas = (byid[k] for k in ("route", "fire", "fire-fault", "fire-s2", "gas-red",
                                                               "gas"))
    assert (fire.receiver, fire.group_by, fire.group_wait) == ("life_safety", ("site_id", "kind"),
                                                                timedelta(seconds=10))
    assert (fire.group_interval, fire.repeat_interval) == (root.group_interval, root.repeat_interval)
    # a grandchild inherits from its parent (the fire route), not from the root
    assert (s2.receiver, s2.group_wait) == ("life_safety", timedelta(seconds=10))
    assert (fault.receiver, fault.group_wait, fault.repeat_interval) == ("maintenance", timedelta(seconds=10),
                                                                        timedelta(hours=12))
    assert gas_red.group_by == ("site_id",) and gas.group_by == ("site_id", "kind") and gas.receiver == "standard"
    # continue is not inherited
    assert gas_red.continue_ and not gas.continue_


def test_group_by_dots_groups_by_every_label() -> None:
    c = cfg("""
route:
  receiver: standard
  group_by: ['...']
""")
    root = c.route
    a = {"site_id": "S1", "kind": "gas.low", "device_id": "D1"}
    b = {"site_id": "S1", "kind": "gas.low", "device_id": "D2"}
    assert group_key(root, a) != group_key(root, b)           # every label set is its own group
    assert group_key(root, a) == group_key(root, dict(reversed(list(a.items()))))  # order does not matter
    assert not [w for w in c.warnings if "group_by" in w]


def test_group_by_empty_list_puts_every_alert_of_the_route_in_one_group() -> None:
    c = cfg("""
route:
  receiver: standard
  group_by: []
""")
    assert group_key(c.route, {"site_id": "S1"}) == group_key(c.route, {"site_id": "S2"})


def test_a_root_without_group_by_is_warned_of_hazmons_default() -> None:
    """docs/alerting.md, *Differences from Alertmanager*: Alertmanager's root without group_by puts
    every alert of a route in one group; hazmon's default is [site_id, panel, kind], so it says so."""
    c = cfg("""
route:
  receiver: standard
""")
    assert c.route.group_by == ("site_id", "panel", "kind")
    [w] = [w for w in c.warnings if "group_by" in w]
    assert w.startswith("route.group_by: not given; hazmon groups by ['site_id', 'panel', 'kind']"), w
    assert "write group_by: [] for that" in w
    stated = cfg("""
route:
  receiver: standard
  group_by: [site_id, panel, kind]
""")
    assert not [w for w in stated.warnings if "group_by" in w]


def test_group_key_separates_values_that_a_naive_join_would_confuse() -> None:
    c = cfg("""
route:
  receiver: standard
  group_by: [site_id, panel]
""")
    a = {"site_id": 'S1",panel="x', "panel": ""}
    b = {"site_id": "S1", "panel": 'x",panel="'}
    assert group_key(c.route, a) != group_key(c.route, b)


@pytest.mark.parametrize(("yaml_text", "path", "problem"), [
    ("route: {receiver: standard, matchers: ['domain=\"gas\"']}", "route.matchers", "root route"),
    ("route: {receiver: standard, continue: true}", "route.continue", "root route"),
    ("route: {routes: []}", "route.receiver", "missing"),
    ("route: {receiver: standard, group_by: ['...', site_id]}", "route.group_by", "'...'"),
    ("route: {receiver: standard, group_by: [site_id, site_id]}", "route.group_by[1]", "duplicate"),
    ("route: {receiver: standard, group_by: ['site-id']}", "route.group_by[0]", "label name"),
    ("route: {receiver: standard, group_interval: 0s}", "route.group_interval", "zero"),
    ("route: {receiver: standard, repeat_interval: 0s}", "route.repeat_interval", "zero"),
    ("route: {receiver: standard, routes: [{match: {domain: gas}}]}", "route.routes[0].match",
     'matchers: [\'domain="gas"\']'),
    ("route: {receiver: standard, routes: [{match_re: {kind: 'gas\\..*'}}]}", "route.routes[0].match_re",
     "matchers: ['kind=~"),
    ("route: {receiver: standard, routes: [{continue: yes please}]}", "route.routes[0].continue", "true or false"),
])
def test_config_validation_names_the_field(yaml_text: str, path: str, problem: str) -> None:
    got = problems(yaml_text)
    assert path in got, got
    assert problem in got[path]


def test_a_route_after_a_catch_all_without_continue_is_never_reached() -> None:
    got = problems("""
route:
  receiver: standard
  routes:
    - {name: all, receiver: maintenance}
    - {name: gas, matchers: ['domain="gas"']}
""")
    assert "never reached" in got["route.routes[1]"]
    # with continue: true on the catch-all the next sibling is reached ([route])
    c = cfg("""
route:
  receiver: standard
  routes:
    - {name: all, receiver: maintenance, continue: true}
    - {name: gas, matchers: ['domain="gas"']}
""")
    assert ids(c, {"domain": "gas"}) == ["all", "gas"]


@pytest.mark.parametrize(("text", "want"), [
    # docs/configuration.md "<duration>": units y w d h m s ms in that order, e.g. 1d, 1h30m, 5m, 10s
    ("1h30m", timedelta(minutes=90)), ("1d", timedelta(days=1)), ("1w", timedelta(days=7)),
    ("2m30s", timedelta(seconds=150)), ("1s500ms", timedelta(seconds=1.5)), ("0s", timedelta(0)), ("0", timedelta(0)),
    ("1.5h", timedelta(minutes=90)),  # hazmon's extension (documented)
])
def test_durations_as_alertmanager_writes_them(text: str, want: timedelta) -> None:
    from alerting.config import parse_duration

    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["30m1h", "1h 30m", "h", "", "5 minutes", "1.5h30m", "-5m"])
def test_durations_out_of_order_or_malformed_are_refused(text: str) -> None:
    from alerting.config import parse_duration

    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# --- through the service: continue: true makes a second group whose receiver is told ------------

async def test_continue_true_makes_a_second_group_and_notifies_its_receiver(
    pool: Any, sim: Any, clock: Any, make_service: Any,
) -> None:
    # [route]: "If continue is true on a matching node, the alert will continue matching against
    # subsequent siblings" — and each matching route handles it (its own group and receiver).
    from alerting_helpers import T0, config_with, ev, messages, raw_routes

    raw = raw_routes()
    raw["receivers"]["regulator"] = {"roles": ["department"], "channels": ["sms"]}
    raw["route"]["routes"] = [
        {"name": "gas-business", "matchers": ['domain="gas"'], "receiver": "maintenance", "continue": True,
         "group_wait": "0s"},
        {"name": "gas-regulator", "matchers": ['severity=~"red|orange"'], "receiver": "regulator",
         "group_by": ["township_id"], "group_wait": "1m"},
        {"name": "never", "matchers": ['domain="gas"'], "receiver": "life_safety"},
    ]
    svc = await make_service(config=config_with(route=raw["route"], receivers=raw["receivers"]))
    e = ev("gas.high", "S1-GAS1", "S1", at=T0)
    await svc.handle_events([e])
    async with pool.acquire() as conn:
        groups = {r["route_id"]: r["key"] for r in await conn.fetch("SELECT key, route_id FROM alert_groups")}
    assert set(groups) == {"gas-business", "gas-regulator"}
    assert groups["gas-regulator"] == 'gas-regulator:{township_id="T1"}'
    await svc.tick()  # group_wait 0s: the first group is told at once
    phones = {m["phone"] for m in await messages(sim)}
    assert "13800001001" in phones and "13800000301" not in phones   # business yes, regulator not yet
    clock.advance(timedelta(minutes=1))
    await svc.tick()  # the second group's group_wait is over: its receiver (the 住建局 duty) is told
    phones = {m["phone"] for m in await messages(sim)}
    assert "13800000301" in phones
    assert "13800000401" not in phones  # the route after the one without continue is never reached
    # one message per person: the business is not told a second time by the second group
    assert sum(1 for m in await messages(sim) if m["phone"] == "13800001001" and m["template"] == "alarm") == 1


async def test_two_alerts_of_one_group_resolved_in_one_batch(
    pool: Any, sim: Any, clock: Any, make_service: Any,
) -> None:
    from alerting_helpers import T0, ev, resolved

    svc = await make_service()
    a = ev("fire.alarm", "P2-D01", "S2", at=T0)
    b = ev("fire.alarm", "P2-D02", "S2", at=T0)
    await svc.handle_events([a, b])
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    assert await svc.handle_events([resolved(a, clock.now()), resolved(b, clock.now())]) == ["resolved", "resolved"]


def test_routes_an_alert_can_reach_after_another() -> None:
    c = cfg(TREE)
    # gas-red has continue: true, so its later siblings can be reached after it (and their children)
    assert c.later_route_ids() == frozenset({"gas", "never-for-gas"})
    assert cfg("route: {receiver: standard}").later_route_ids() == frozenset()
