"""Authorization matrix: every role (and no one) against every endpoint of the app.

Parametrised from the app's own route list, so an endpoint added without an ``x-roles`` rule,
or without an entry here, fails this test. Allowed roles must get past the guard (any answer
but 401/403/500); other roles get 403; no session gets 401.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_district import NOW, ROLE_USER, sessions_for

from console.app import create_app, iter_api_routes
from console.auth import PUBLIC
from console.scope import Role
from hazmon.settings import Settings

_APP = create_app(Settings())
ROUTES = sorted(
    ((m, r.path, r) for r in iter_api_routes(_APP) for m in r.methods if m != "HEAD"),
    key=lambda t: (t[1], t[0]),
)
ALERT = "{alert}"

PATH_VALUES = {
    "site_id": "S1", "device_id": "G1", "alert_id": ALERT, "event_id": ALERT, "hazard_id": "HZ-S1",
    "silence_id": "sil-1", "rule_id": "R-authz", "username": "victim", "code": "000000",
    "token": "AAAAAAAAAAAAAAAAAAAAAA", "notice_id": "999999999", "attachment_id": "att-authz",
    "period_id": "kp-authz", "broadcast_id": "bc-authz",  # 重点时段, 公益短信 (issue 14 item 6)
}
LATER = (NOW + timedelta(days=3)).isoformat()
PATH_VALUES["order_id"] = "WO-authz"  # 工单 (issue 14 item 3): unknown, so 404 past the guard
PATH_VALUES["fmt"] = "xlsx"  # 通报 files (issue 15): docx, pdf or xlsx
LATER2, SOON = (NOW + timedelta(days=4)).isoformat(), (NOW + timedelta(hours=2)).isoformat()
BODIES: dict[tuple[str, str], dict | None] = {
    ("POST", "/api/auth/login"): {"username": "nobody", "password": "wrong password"},
    ("POST", "/api/auth/logout"): None,
    ("POST", "/api/auth/otp/request"): {"phone": "13000000000"},
    ("POST", "/api/auth/otp/login"): {"phone": "13000000000", "code": "000000"},
    ("POST", "/api/users"): {"username": "authz-new", "password": "a long password", "role": "centre"},
    ("POST", "/api/alerts/{alert_id}/verify"): {"verdict": "real", "reason": "视频复核"},
    ("POST", "/api/alerts/{alert_id}/acknowledge"): {},
    ("POST", "/api/alerts/{alert_id}/dispatch"): {"orders": [{"unit_id": "T1"}], "deadline_minutes": 60},
    ("POST", "/api/workorders/{order_id}/accept"): {},
    ("POST", "/api/workorders/{order_id}/arrive"): {"lat": 30.2, "lon": 120.1, "accuracy_m": 10},
    ("POST", "/api/workorders/{order_id}/feedback"): {"note": "已关阀通风", "attachment_ids": []},
    ("POST", "/api/workorders/{order_id}/approve"): {"reason": "real"},
    ("POST", "/api/workorders/{order_id}/return"): {"reason": "照片不清"},
    ("POST", "/api/alerts/{alert_id}/handle"): {"note": "到场"},
    ("POST", "/api/alerts/{alert_id}/feedback"): {"note": "已关阀通风"},
    ("POST", "/api/alerts/{alert_id}/arrival"): {"note": "维保人员已到场"},
    ("POST", "/api/alerts/{alert_id}/checkin"): {"lat": 30.2, "lon": 120.1, "accuracy_m": 10},
    ("POST", "/api/alerts/{alert_id}/close"): {"reason": "处置完毕"},
    ("POST", "/api/silences"): {"matchers": [{"name": "site_id", "op": "=", "value": "S2"}], "ends_at": LATER,
                                "reason": "电梯维保"},
    ("POST", "/api/silences/{silence_id}/expire"): {"reason": "维保结束"},
    ("POST", "/api/reports"): {"site_id": "S1", "device_ids": ["G1"], "kind": "维保", "ends_at": SOON,
                               "reason": "燃气报警器年检"},
    ("POST", "/api/reports/{silence_id}/end"): {"reason": "维保结束"},
    ("POST", "/api/key-periods"): {"name": "授权测试", "starts_at": LATER, "ends_at": LATER2, "reason": "测试"},
    ("POST", "/api/key-periods/{period_id}/end"): {"reason": "测试"},
    ("POST", "/api/broadcasts/preview"): {"body": "冬季请注意用气安全", "industries": ["餐饮"]},
    ("POST", "/api/broadcasts"): {"body": "冬季请注意用气安全", "industries": ["餐饮"], "reason": "授权测试"},
    ("POST", "/api/broadcasts/{broadcast_id}/approve"): {},
    ("POST", "/api/broadcasts/{broadcast_id}/reject"): {"reason": "不同意"},
    ("PUT", "/api/matrix/{rule_id}"): {"domain": "gas", "department_ids": ["D-ZJ"], "reason": "authz test"},
    ("POST", "/api/matrix/{rule_id}/delete"): {"reason": "authz test"},
    ("POST", "/api/hazards"): {"site_id": "S1", "domain": "gas", "title": "软管老化"},
    ("POST", "/api/hazards/{hazard_id}/register"): {"reason": "入账"},
    ("POST", "/api/hazards/{hazard_id}/supervise"): {"reason": "督办", "deadline": LATER, "supervisor": "区安委办",
                                                     "owner": "店主", "measures": "换管", "funds": "自筹",
                                                     "plan": "处置方案"},
    ("POST", "/api/hazards/{hazard_id}/rectify"): {"reason": "已整改"},
    ("POST", "/api/hazards/{hazard_id}/review"): {"reason": "复查合格", "passed": True},
    ("POST", "/api/alerts/{alert_id}/to-hazard"): {"title": "燃气软管老化"},
    ("POST", "/api/hazards/{hazard_id}/strike-off"): {"reason": "验收销号"},
    ("POST", "/api/notices/{notice_id}/reply"): {"reply": "已督促企业处置"},
    ("POST", "/api/notices/{notice_id}/close"): {"unit": "township:T1", "note": "同意办结"},
    ("POST", "/api/replay"): {"start": (NOW - timedelta(days=1)).isoformat(), "end": NOW.isoformat()},  # 模拟回放
    ("POST", "/api/accidents"): {"occurred_at": (NOW - timedelta(days=1)).isoformat(), "township_id": "T1",
                                 "domain": "gas", "level": "general", "title": "燃气爆燃事故"},  # 登记生产安全事故
}
QUERIES = {"/api/stream": {"once": "true"}, "/api/board": {"phase": "alarm", "domain": "gas"},
           "/api/board/history": {"q": "老王", "verdict": "false"}}
#: the board's views for a long shift (issue 14 item 7): who may read them
BOARD_VIEW_ROLES = {
    "/api/board/history": {"centre", "admin", "department", "township", "business", "grid_member", "maintainer"},
    "/api/wall": {"centre", "admin", "department", "township"},
}


def test_board_views_roles():
    declared = {p: set((r.openapi_extra or {}).get("x-roles", [])) for m, p, r in ROUTES if p in BOARD_VIEW_ROLES}
    assert declared == BOARD_VIEW_ROLES


def test_every_route_declares_roles():
    missing = [f"{m} {p}" for m, p, r in ROUTES if not (r.openapi_extra or {}).get("x-roles")]
    assert not missing, f"endpoints without an access rule (x-roles): {missing}"


def test_every_body_route_has_an_example():
    missing = [f"{m} {p}" for m, p, r in ROUTES if r.body_field is not None and (m, p) not in BODIES]
    assert not missing, f"add a valid body to BODIES for: {missing}"


def _url(path: str, alert_id: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", alert_id if value == ALERT else value)
    assert "{" not in path, f"no test value for a path parameter in {path}"
    return path


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("who", [*[r.value for r in Role], "anonymous"])
@pytest.mark.parametrize(("method", "path", "route"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_role_against_endpoint(api, method, path, route, who):
    allowed = set((route.openapi_extra or {}).get("x-roles", []))
    # an alarm in the role's scope (a 维保单位 sees only its lifts: the 困人 at S2), so the scope's
    # own refusal of a field user (403 无权查看) is not read as the guard's
    url = _url(path, api.seeded.alerts["elev_s2" if who == Role.MAINTAINER else "gas_s1"])
    headers = {}
    if who != "anonymous":
        user = ROLE_USER[Role(who)]
        if path == "/api/auth/logout":  # a throwaway session: logging out must not end the shared one
            async with api.pool.acquire() as conn:
                token = (await sessions_for(conn, [user], now=NOW))[user][0]
        else:
            token = api.tokens[user][0]
        headers["Authorization"] = f"Bearer {token}"
    body = BODIES.get((method, path))
    r = await api.client.request(method, url, headers=headers, params=QUERIES.get(path),
                                 json=body if route.body_field is not None else None)
    assert r.status_code != 500, r.text
    if PUBLIC in allowed:
        assert r.status_code not in (403,), r.text
    elif who == "anonymous":
        assert r.status_code == 401, r.text
    elif who in allowed:
        assert r.status_code not in (401, 403), f"{who} should be admitted to {method} {path}: {r.text}"
    else:
        assert r.status_code == 403, f"{who} must be refused {method} {path}: {r.status_code} {r.text}"
        assert f"无权访问：{Role(who).zh}" in r.json()["detail"]
