"""The SMS-code sign-in under hostile input (issue 14): codes that must not work, limits per
number and per address, forged origins, malformed forms, and an unknown number that must look
like a known one — in the answer and, within a bound a loaded machine passes, in its timing.
Each refusal: its Chinese words and its ``console_audit`` row (``otp.refused``, the reason).

Real services as in test_console_field_signin (PostgreSQL, the console app in process, the SMS
gateway simulator over HTTP reached by alerting's outbox sender); its ``field`` fixture is used
as it is, and :func:`roomy` is the same with limits wide enough to time many requests."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from console_district import seed_district
from test_console_field_signin import (  # noqa: F401  (field: the fixture, used by name)
    ACK_URL,
    GRID_V1,
    GRID_V2,
    KEY,
    ORIGIN,
    SECRET,
    SIGN,
    STRANGER,
    Clock,
    Field,
    field,
)

from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_aliyun import AliyunSms
from alerting.outbox import OutboxSender
from console.app import create_app
from console.auth import LoginLimits
from console.otp import SENT_TEXT, OtpLimits
from hazmon.settings import PostgresSettings, Settings, SmsSettings
from sim.gateway import SimulatorConfig, SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EVIL = {"Origin": "https://evil.example"}
WRONG = "验证码错误，请检查后重试"


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def _refusals(f: Field) -> list[dict[str, Any]]:
    """The ``otp.refused`` rows, oldest first: target (masked number) and detail."""
    import json

    return [{"target": a["target"], **json.loads(a["detail"])} for a in await f.audit("otp.refused")]


async def test_only_the_latest_code_of_that_number_signs_in(field: Field) -> None:  # noqa: F811
    await field.request(GRID_V1)
    first = await field.code(GRID_V1)
    field.clock.now += timedelta(seconds=61)
    await field.request(GRID_V1)
    latest = await field.code(GRID_V1)
    if latest == first:  # one in a million: the test means two different codes
        pytest.skip("the two codes happened to be equal")
    r = await field.login(GRID_V1, first)  # an older code, although never used
    assert (r.status_code, r.json()["detail"]) == (401, WRONG)
    await field.request(GRID_V2)
    r = await field.login(GRID_V2, latest)  # the right code, for another number
    assert (r.status_code, r.json()["detail"]) == (401, WRONG)
    for bad in ("12345a", "１２３４５６", "1234567"):  # not six ASCII digits: never right
        r = await field.login(GRID_V2, bad)
        assert r.status_code in (401, 422) and r.status_code != 200, (bad, r.text)
    field.clock.now += timedelta(minutes=5)  # exactly at the expiry: gone
    r = await field.login(GRID_V1, latest)
    assert (r.status_code, r.json()["detail"]) == (401, "验证码已过期（5分钟内有效），请重新获取")
    rows = await _refusals(field)
    assert [(x["target"], x["reason"]) for x in rows][:2] == [("139****1111", "wrong_code"),
                                                               ("139****2222", "wrong_code")]
    assert rows[-1]["reason"] == "expired"
    assert rows[-1]["message"] == "验证码已过期（5分钟内有效），请重新获取"
    assert all(x["step"] == "login" and x["ip"] for x in rows)


async def test_guesses_spread_over_many_numbers_lock_the_address(field: Field) -> None:  # noqa: F811
    """30 wrong sign-ins from one address (LoginLimits.per_ip here), each at another number:
    the next is refused before any code is looked at — also the right code of a real number."""
    for i in range(30):  # a forwarded-for header from a client that is no proxy changes nothing
        r = await field.client.post("/api/auth/otp/login",
                                    json={"phone": f"1370000{i:04d}", "code": "000000"},
                                    headers={"X-Forwarded-For": f"198.51.100.{i}"})
        assert r.status_code == 401, r.text
    await field.request(GRID_V1)
    code = await field.code(GRID_V1)
    r = await field.login(GRID_V1, code)
    assert r.status_code == 429 and r.json()["detail"].startswith("验证码错误次数过多，请在 "), r.text
    assert int(r.headers["retry-after"]) >= 60
    last = (await _refusals(field))[-1]
    assert (last["target"], last["reason"]) == ("139****1111", "throttled:source")
    async with field.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM console_sessions") == 0


async def test_another_spelling_of_a_number_is_the_same_number_to_the_limits(field: Field) -> None:  # noqa: F811
    assert (await field.request(GRID_V1)).status_code == 200
    for spelling in ("+86 139-0000-1111", "0086 13900001111", "86 139 0000 1111", "(139) 0000 1111"):
        r = await field.request(spelling)
        assert (r.status_code, r.json()["detail"]) == (429, "获取验证码过于频繁，请在 60 秒后重试"), spelling
    assert {x["target"] for x in await _refusals(field)} == {"139****1111"}
    await field.deliver()
    assert len(await field.sms(GRID_V1)) == 1


async def test_one_code_sent_twice_at_once_signs_in_once(field: Field) -> None:  # noqa: F811
    await field.request(GRID_V1)
    code = await field.code(GRID_V1)
    first, second = await asyncio.gather(field.login(GRID_V1, code), field.login(GRID_V1, code))
    assert sorted([first.status_code, second.status_code]) == [200, 401], (first.text, second.text)
    refused = first if first.status_code == 401 else second
    assert refused.json()["detail"] == "验证码已使用或已失效，请重新获取"
    assert [x["reason"] for x in await _refusals(field)] == ["used"]
    async with field.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM console_sessions") == 1


async def test_forged_origins_and_malformed_forms_are_refused_audited_and_do_nothing(field: Field) -> None:  # noqa: F811
    await field.request(GRID_V1)
    code = await field.code(GRID_V1)
    r = await field.client.post("/api/auth/otp/login", json={"phone": GRID_V1, "code": code}, headers=EVIL)
    assert (r.status_code, r.json()["detail"]) == (403, "跨站登录请求被拒绝")
    r = await field.client.post("/api/auth/otp/request", json={"phone": GRID_V1}, headers={"Origin": "null"})
    assert (r.status_code, r.json()["detail"]) == (403, "跨站请求被拒绝")
    r = await field.client.post("/login/sms/verify", content=f"phone={GRID_V1}&code={code}",
                                headers={**FORM, **EVIL})
    assert r.status_code == 400 and "请求无效，请重新打开登录页面" in r.text and "set-cookie" not in r.headers
    r = await field.client.post("/login/sms", content="phone=1&x=" + "9" * 3000,
                                headers={**FORM, **ORIGIN})
    assert r.status_code == 400 and "请求无效，请重新打开登录页面" in r.text  # larger than a form
    r = await field.client.post("/login/sms", content=b"phone=\xff\xfe", headers={**FORM, **ORIGIN})
    assert r.status_code == 400  # not UTF-8
    # a NUL and control characters in the number: a Chinese refusal, not a server error
    r = await field.client.post("/login/sms", content="phone=1390000%001111%1b", headers={**FORM, **ORIGIN})
    assert r.status_code == 400 and "手机号码格式不正确，请输入11位手机号码" in r.text, r.text
    r = await field.client.post("/login/sms/verify", content="phone=%00&code=%00%00",
                                headers={**FORM, **ORIGIN})
    assert r.status_code == 400 and "手机号码格式不正确" in r.text, r.text
    # a mangled SMS link: the page without the token, not an error
    for ack in ("x" * 300, "<script>", "%00"):
        r = await field.client.get("/login/sms", params={"ack": ack})
        assert r.status_code == 200 and "获取验证码" in r.text and 'name="ack"' not in r.text, r.text
    rows = await _refusals(field)
    assert [(x["step"], x["reason"]) for x in rows] == [
        ("login", "cross_site"), ("request", "cross_site"), ("login", "cross_site"),
        ("request", "bad_form"), ("request", "bad_form"), ("request", "bad_phone"), ("login", "bad_phone")]
    assert all(x["message"] for x in rows) and rows[-2]["target"] == "139****1111"
    # the code was never tried: it still signs in, once, from the console's own page
    r = await field.login(GRID_V1, code)
    assert r.status_code == 200, r.text
    async with field.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM console_sessions") == 1


async def test_an_unknown_number_gets_the_answer_of_a_known_one(field: Field) -> None:  # noqa: F811
    def shape(r: httpx.Response) -> tuple[int, Any, list[str]]:
        return r.status_code, r.json(), sorted(k for k in r.headers if k not in ("date", "content-length"))

    known, unknown = await field.request(GRID_V1), await field.request(STRANGER)
    assert shape(known) == shape(unknown) and known.json()["detail"] == SENT_TEXT
    again_k, again_u = await field.request(GRID_V1), await field.request(STRANGER)  # the same limit
    assert shape(again_k) == shape(again_u) and again_k.status_code == 429
    code = await field.code(GRID_V1)
    wrong_k, wrong_u = await field.login(GRID_V1, _wrong(code)), await field.login(STRANGER, _wrong(code))
    assert shape(wrong_k) == shape(wrong_u) and wrong_k.json()["detail"] == WRONG
    rows = [(x["target"], x["reason"]) for x in await _refusals(field)]
    assert rows == [("139****1111", "resend"), ("137****9999", "resend"),
                    ("139****1111", "wrong_code"), ("137****9999", "wrong_code")]


@pytest.fixture
async def roomy(pg_dsn: str) -> AsyncIterator[Field]:
    """``field`` with limits that never stop the timing runs (the limits have their own tests)."""
    clock = Clock()
    sim = SmsSimulator(SimulatorConfig(keys={KEY: SECRET}, ack_url=ACK_URL))
    await sim.start()
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=6)
    async with pool.acquire() as conn:
        seeded = await seed_district(conn)
    settings = Settings(postgres=PostgresSettings(dsn=pg_dsn),
                        sms=SmsSettings(provider="aliyun", sign_name=SIGN, ack_base_url=ACK_URL))
    app = create_app(settings, pool=pool, clock=clock, board_poll_s=0.2,
                     login_limits=LoginLimits(per_user=1000, per_ip=1000, window_s=900),
                     otp_limits=OtpLimits(per_phone=1000, per_source=1000, resend_s=0, per_code=1000))
    notifier = SmsNotifier(AliyunSms(f"{sim.url}/aliyun", KEY, SECRET, SIGN), timeout_s=2.0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            yield Field(client, pool, sim, OutboxSender(pool, {"sms": notifier}), clock, seeded)
    await notifier.aclose()
    await pool.close()
    await sim.stop()


async def test_a_known_number_takes_no_longer_to_answer_than_an_unknown_one(roomy: Field) -> None:
    """No enumeration by the clock: a code request and a wrong code cost a known number what
    they cost an unknown one (an argon2 hash or check either way; only the SMS row differs).
    Interleaved runs, medians compared; the bound (a third of the median, at least 80 ms) is
    one a loaded 2-core machine passes, while skipping the argon2 step for unknown numbers —
    the leak this guards against, some 50-100 ms a request here — fails it."""
    durations: dict[str, list[float]] = {"known": [], "unknown": []}
    logins: dict[str, list[float]] = {"known": [], "unknown": []}
    await roomy.request(GRID_V1)  # warm: the first request pays for connections and caches
    await roomy.request(STRANGER)
    for i in range(9):
        for who, phone in (("known", GRID_V1), ("unknown", STRANGER))[:: 1 if i % 2 else -1]:
            roomy.clock.now += timedelta(seconds=1)
            t = time.perf_counter()
            r = await roomy.request(phone)
            durations[who].append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
            t = time.perf_counter()
            r = await roomy.login(phone, "000000")
            logins[who].append(time.perf_counter() - t)
            assert r.status_code == 401, r.text
    for name, runs in (("request", durations), ("login", logins)):
        k, u = statistics.median(runs["known"]), statistics.median(runs["unknown"])
        bound = max(0.08, min(k, u) / 3)
        assert abs(k - u) <= bound, f"{name}: known {k * 1000:.0f} ms, unknown {u * 1000:.0f} ms"
        assert u >= 0.005, f"{name}: an unknown number answered in {u * 1000:.1f} ms: no argon2 step?"
