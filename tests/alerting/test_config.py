"""routes.yaml validation beyond the Alertmanager conformance tests: one bad route does not
hide the problems of the others, problems come in the file's order, nothing crashes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from alerting_helpers import ROUTES

from alerting.config import AlertingConfig, parse_config
from alerting.errors import RouteConfigError


def raw_routes() -> dict[str, Any]:
    return yaml.safe_load(ROUTES.read_text(encoding="utf-8"))


def problems(raw: Any) -> dict[str, str]:
    with pytest.raises(RouteConfigError) as exc:
        parse_config(raw, file="routes.yaml")
    return dict(exc.value.problems)


def test_the_tree_is_checked_even_where_a_node_does_not_parse() -> None:
    raw = raw_routes()
    routes = raw["route"]["routes"]
    raw["route"]["group_wait"] = "soon"                  # the root's own key does not parse
    routes[0]["matchers"] = ['kind=~"("']                # nor a child's matchers
    routes[1]["receiver"] = "nobody"                     # a tree rule below both
    routes[2]["repeat_interval"] = "1s"                  # shorter than the inherited group_interval
    routes[3]["name"] = routes[4]["name"]
    got = problems(raw)
    assert "not a duration" in got["route.group_wait"]
    assert "bad regex" in got["route.routes[0].matchers[0]"]
    assert "unknown receiver 'nobody'" in got["route.routes[1].receiver"]
    assert "shorter than group_interval" in got["route.routes[2].repeat_interval"]
    assert "duplicate route name" in got["route.routes[4].name"]
    # a route whose matchers did not parse is not taken for a catch-all shadowing its siblings
    assert not [p for p in got if p.startswith("route.routes[") and got[p].startswith("never reached")]


def test_problems_come_in_the_order_of_the_file() -> None:
    raw = {"receivers": {"r": {"roles": ["mayor"]}}, "route": {"receiver": "x"},
           "duty_operator": {"phone": "1"}}
    with pytest.raises(RouteConfigError) as exc:
        parse_config(raw, file="routes.yaml")
    assert [p for p, _ in exc.value.problems] == [
        "receivers.r.roles[0]", "route.receiver", "duty_operator.phone"]


@pytest.mark.parametrize("bad", [[], {}, ["x"], 5, True])
def test_a_receiver_of_the_wrong_type_is_an_error_not_a_crash(bad: Any) -> None:
    raw = raw_routes()
    raw["route"]["receiver"] = bad
    assert "route.receiver" in problems(raw)


def test_unknown_keys_name_the_keys_expected_there() -> None:
    raw = raw_routes()
    raw["receivers"]["standard"]["role"] = ["business"]
    assert problems(raw)["receivers.standard.role"] == (
        "unknown key (expected one of channels, roles, send_resolved, webhook_url)")


def test_an_empty_ladder_is_refused_an_empty_section_is_not() -> None:
    raw = raw_routes()
    raw["escalation"]["red"] = None
    assert "list of steps" in problems(raw)["escalation.red"]
    raw = raw_routes()
    raw["inhibit_rules"] = None  # YAML `inhibit_rules:` with every rule commented out
    assert isinstance(parse_config(raw, file="routes.yaml"), AlertingConfig)
