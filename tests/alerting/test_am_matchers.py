"""Conformance: label matchers follow Alertmanager's documented syntax and semantics.

Sources (prometheus/alertmanager, docs/configuration.md):
  [classic]     "Label matchers" → "Classic matchers" (three tokens, optional double quotes,
                OpenMetrics escapes \\" \\n \\\\, a lone backslash is literal, no unescaped quote inside)
  [compose]     "Label matchers" → "Composition of matchers" (comma list, optional braces — both or
                neither —, one trailing comma, whitespace outside quotes)
  [semantics]   "<matcher>": `=` equals, `!=` not equal, `=~` / `!~` regex; regexes are fully anchored
                (pkg/labels NewMatcher compiles "^(?:" + v + ")$"); a missing label is the empty string
  [yaml]        "Note: YAML quoting vs. matcher token quoting"
Vectors are written for hazmon from those texts, not copied from Alertmanager's tests.
Deliberate differences (refused at load) are in docs/alerting.md "Differences from Alertmanager".
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from alerting.config import parse_config
from alerting.errors import RouteConfigError
from alerting.labels import Matcher, parse_matcher, parse_matchers


def one(text: str) -> tuple[str, str, str]:
    m = parse_matcher(text)
    return m.name, m.op, m.value


# --- [classic] the three tokens -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    ('site_id="S1"', ("site_id", "=", "S1")),
    ("site_id=S1", ("site_id", "=", "S1")),                       # the value "may be enclosed in double quotes"
    ('  site_id  !=  "S1"  ', ("site_id", "!=", "S1")),           # whitespace before/after each token
    ("kind =~ fire\\..*", ("kind", "=~", "fire\\..*")),           # unquoted regex: backslash kept (lone \ is literal)
    ('kind!~"gas|fire"', ("kind", "!~", "gas|fire")),
    ('zone=""', ("zone", "=", "")),                              # "The 3rd token may be the empty string"
    ("zone=", ("zone", "=", "")),
    ('_x="1"', ("_x", "=", "1")),
    ('名称="煤气"', None),                                          # not a Prometheus label name
])
def test_classic_tokens(text: str, want: tuple[str, str, str] | None) -> None:
    if want is None:
        with pytest.raises(ValueError):
            parse_matcher(text)
    else:
        assert one(text) == want


@pytest.mark.parametrize(("text", "value"), [
    (r'quote="She said: \"Hi\""', 'She said: "Hi"'),     # \" is a double quote
    (r'path="C:\\tmp"', "C:\\tmp"),                      # \\ is one backslash
    (r'msg="line1\nline2"', "line1\nline2"),             # \n is a line feed
    (r'rx="\d+"', "\\d+"),                               # spurious escape: the backslash is literal
    ("v=abc\\", "abc\\"),                                # a trailing lone backslash is literal
    ('msg="a\nb"', "a\nb"),                              # a literal line feed is tolerated
    (r'v="\\\""', '\\"'),                                # \\ then \"
])
def test_classic_escapes_inside_the_value(text: str, value: str) -> None:
    assert parse_matcher(text).value == value


@pytest.mark.parametrize("text", [
    'v="a"b"',        # "Unescaped '\"' must not occur inside the 3rd token"
    'v="abc',         # opening quote without the closing one
    'v=abc"',         # a quote that is not the first character
    "1v=x",           # label names start with a letter or _
    "v-x=1",
    'v=="x"',         # '=' then a value beginning with '=' — no: '=="x"' leaves '"x"' after '=', see below
    "v",              # no operator
    "",
])
def test_classic_refusals(text: str) -> None:
    if text == 'v=="x"':
        # "=" then the value '="x"' whose quote is not the first character → unescaped quote
        with pytest.raises(ValueError, match="double quote"):
            parse_matcher(text)
        return
    with pytest.raises(ValueError):
        parse_matcher(text)


def test_single_quotes_are_not_quotes_in_alertmanager_so_hazmon_refuses_them() -> None:
    # [classic]: only double quotes delimit; Alertmanager's classic parser would keep 'S1' with its
    # quotes and match nothing. hazmon refuses instead of silently differing (docs/alerting.md).
    with pytest.raises(ValueError, match="single quotes"):
        parse_matcher("site_id='S1'")


@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
       op=st.sampled_from(["=", "!=", "=~", "!~"]),
       value=st.text(alphabet=st.sampled_from(['a', 'Z', '0', ' ', ',', '"', '\\', '\n', '煤', '{', '}']),
                     max_size=12))
def test_str_round_trips_through_the_parser(name: str, op: str, value: str) -> None:
    if op in ("=~", "!~"):
        value = value.replace("\\", "").replace("{", "").replace("}", "")  # keep it a valid regex
    m = Matcher(name, op, value)  # type: ignore[arg-type]
    assert parse_matcher(str(m)) == m
    assert parse_matchers(str(m)) == (m,)
    assert parse_matchers("{" + str(m) + ", " + str(m) + "}") == (m, m)


# --- [semantics] --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "labels", "hit"), [
    ('kind=~"fire"', {"kind": "fire.alarm"}, False),            # anchored at the end
    ('kind=~"alarm"', {"kind": "fire.alarm"}, False),           # anchored at the start
    ('kind=~"fire.*"', {"kind": "fire.alarm"}, True),
    ('kind=~"gas|fire"', {"kind": "gasfire"}, False),           # ^(?:gas|fire)$, not ^gas|fire$
    ('kind=~"gas|fire"', {"kind": "xfire"}, False),
    ('kind=~"gas|fire"', {"kind": "fire"}, True),
    ('kind!~"gas|fire"', {"kind": "gas.low"}, True),
    ('kind=~"fire\\\\.alarm"', {"kind": "fire.alarm"}, True),   # quoted: \\. is the regex \.
    ('kind=~"fire\\\\.alarm"', {"kind": "fireXalarm"}, False),
    ('zone=""', {}, True),                                      # missing label = empty string
    ('zone=""', {"zone": ""}, True),
    ('zone=""', {"zone": "A"}, False),
    ('zone!=""', {}, False),                                    # != "" means "present and non-empty"
    ('zone!=""', {"zone": "A"}, True),
    ('zone=~".*"', {}, True),
    ('zone=~".+"', {}, False),
    ('zone!~".+"', {}, True),
    ('hub!="true"', {}, True),
    ('site_id="S1"', {"site_id": "s1"}, False),                 # case-sensitive
    ('site_id=~"(?i)s1"', {"site_id": "S1"}, True),             # RE2 flag syntax
    ('n=~"\\\\d+"', {"n": "１２"}, False),                       # RE2's \d is ASCII only (full-width digits)
    ('n=~"\\\\d+"', {"n": "12"}, True),
])
def test_match_semantics(text: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(text).matches(labels) is hit


@pytest.mark.parametrize("rx", ["(?=a)a", "(?!a)b", "(?<=a)b", "(?<!a)b", "(a)\\1", "(?P<x>a)(?P=x)", "a*+",
                                "(?>a)"])
def test_regex_syntax_re2_refuses_is_refused(rx: str) -> None:
    # [semantics]: Alertmanager compiles with Go's RE2, which has no lookaround, backreferences,
    # possessive quantifiers or atomic groups — such a config does not load there, nor here.
    with pytest.raises(ValueError, match="RE2|not supported"):
        Matcher("kind", "=~", rx)


def test_bad_regex_is_refused() -> None:
    with pytest.raises(ValueError, match="regex"):
        parse_matcher('kind=~"("')


# --- [compose] ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    ('{domain="gas", severity!="blue", }', [("domain", "=", "gas"), ("severity", "!=", "blue")]),
    ("domain=gas,severity!=blue", [("domain", "=", "gas"), ("severity", "!=", "blue")]),
    ('{\n  domain = "gas",\n  kind =~ "gas.(low|high)",\n}', [("domain", "=", "gas"), ("kind", "=~", "gas.(low|high)")]),
    (r'{quote="She said: \"Hi, all!\"", b="c"}', [("quote", "=", 'She said: "Hi, all!"'), ("b", "=", "c")]),
    ('site_id="S1,S2"', [("site_id", "=", "S1,S2")]),              # a comma inside quotes is not a separator
    ("{}", []),
])
def test_comma_lists_and_braces(text: str, want: list[tuple[str, str, str]]) -> None:
    assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == want


@pytest.mark.parametrize("text", [
    '{domain="gas", severity="red"',      # "both must be either present or omitted"
    'domain="gas", severity="red"}',
    '{{domain="gas"}}',                   # "You cannot have duplicate open or close braces"
    'domain="gas",,severity="red"',       # an empty matcher between commas
])
def test_comma_list_refusals(text: str) -> None:
    with pytest.raises(ValueError):
        parse_matchers(text)


# --- in routes.yaml: [yaml] and errors naming the field --------------------------------------------

BASE = """
duty_operator: {name: 值班, phone: "13900000000"}
receivers:
  standard: {roles: [business]}
  life_safety: {roles: [business, covering_leader]}
route:
  receiver: standard
  routes:
    - name: gas-red
      receiver: life_safety
      matchers: MATCHERS
"""


def load(matchers: str) -> object:
    return parse_config(yaml.safe_load(BASE.replace("MATCHERS", matchers)), file="routes.yaml")


def test_one_yaml_string_may_hold_several_matchers() -> None:
    # [compose] example 3: matchers: [ '{foo="bar", dings!="bums"}' ] is two matchers
    cfg = load("""['{domain="gas", severity="red"}']""")
    route = cfg.routes_for({"domain": "gas", "severity": "red"})  # type: ignore[attr-defined]
    assert [r.id for r in route] == ["gas-red"]
    assert [r.id for r in cfg.routes_for({"domain": "gas", "severity": "blue"})] == ["route"]  # type: ignore[attr-defined]
    # the same without braces, and YAML's short form with plain scalars ([compose] example 2)
    cfg = load("""['domain="gas",severity="red"']""")
    assert [r.id for r in cfg.routes_for({"domain": "gas", "severity": "blue"})] == ["route"]  # type: ignore[attr-defined]
    cfg = load("[ domain = gas, severity = red ]")
    assert [r.id for r in cfg.routes_for({"domain": "gas", "severity": "red"})] == ["gas-red"]  # type: ignore[attr-defined]


def test_yaml_block_with_escaped_quotes() -> None:
    # [compose] example 4: a YAML block keeps the matcher's own escaping intact
    cfg = load('\n        - |\n          {component=~"1号\\"主\\"机.*"}\n')
    hit = cfg.routes_for({"component": '1号"主"机 A'})  # type: ignore[attr-defined]
    assert [r.id for r in hit] == ["gas-red"]


@pytest.mark.parametrize(("matchers", "path", "problem"), [
    ("""['domain="gas"', 'kind=~"("']""", "route.routes[0].matchers[1]", "regex"),
    ("""['domain="gas', 'kind="x"']""", "route.routes[0].matchers[0]", "double quote"),
    ("""['1domain="gas"']""", "route.routes[0].matchers[0]", "label name"),
    ("""["domain='gas'"]""", "route.routes[0].matchers[0]", "single quotes"),
    ("""['{domain="gas"']""", "route.routes[0].matchers[0]", "brace"),
    ("{domain: gas}", "route.routes[0].matchers", "list"),
])
def test_a_matcher_alertmanager_rejects_is_a_load_error_naming_the_field(matchers: str, path: str,
                                                                        problem: str) -> None:
    with pytest.raises(RouteConfigError) as exc:
        load(matchers)
    problems = dict(exc.value.problems)
    assert path in problems, exc.value.problems
    assert problem in problems[path]
    assert f"routes.yaml: {path}: " in str(exc.value)
