"""网格员 and 维保单位: sign-in by phone and one-time SMS code, and what each then sees (issue 14).

On real services: PostgreSQL (a fresh district per test), the console app in process, and the
SMS gateway simulator over HTTP in its 阿里云 shape, reached by alerting's own outbox sender —
the code travels the way every SMS travels (console/otp.py, alerting/login_code.py). The SMS
link of an alarm (/ack/<token>) offers 登录查看报警详情, which lands its recipient on the alarm.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from console_district import NOW, Seeded, seed_district, sessions_for

from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_aliyun import AliyunSms
from alerting.outbox import NewNotification, OutboxSender, enqueue
from alerting.templates import ack_placeholder, render, variant
from console.app import create_app
from console.auth import LoginLimits
from console.otp import SENT_TEXT, OtpLimits
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.settings import PostgresSettings, Settings, SmsSettings
from sim.gateway import SimulatorConfig, SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY, SECRET, SIGN = "otp-key", "otp-secret", "区应急指挥中心"
ACK_URL = "http://console.test/ack"
GRID_V1 = "13900001111"  # villages.grid_member_phone of V1 东门社区 (S1 老王饭店, S2 城关商场)
GRID_V2 = "13900002222"  # V2 河西村 (S3, S4)
MAINT_M1 = "13900003333"  # maintainers.duty_mobile of M1, the lift E1 at S2
STRANGER = "13700009999"
CODE = re.compile(r"登录验证码为(\d{6})")
ORIGIN = {"Origin": "http://console.test"}


class Clock:
    """The console's clock, moved by the tests (expiry, limits)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # noqa: ANN204
        return self.now


@dataclass
class Field:
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    sim: SmsSimulator
    sender: OutboxSender
    clock: Clock
    seeded: Seeded

    async def deliver(self) -> None:
        """One pass of alerting's outbox sender: what is queued goes to the simulator."""
        await self.sender.run_once(self.clock.now)

    async def sms(self, phone: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"{self.sim.url}/messages", params={"phone": phone})).json()

    async def code(self, phone: str) -> str:
        await self.deliver()
        bodies = [m["body"] for m in await self.sms(phone) if CODE.search(m["body"])]
        assert bodies, await self.sms(phone)
        return CODE.search(bodies[-1]).group(1)  # type: ignore[union-attr]

    async def request(self, phone: str) -> httpx.Response:
        return await self.client.post("/api/auth/otp/request", json={"phone": phone})

    async def login(self, phone: str, code: str) -> httpx.Response:
        return await self.client.post("/api/auth/otp/login", json={"phone": phone, "code": code})

    async def audit(self, action: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch("SELECT * FROM console_audit WHERE action = $1 ORDER BY id", action)


@pytest.fixture
async def field(pg_dsn: str) -> AsyncIterator[Field]:
    clock = Clock()
    sim = SmsSimulator(SimulatorConfig(keys={KEY: SECRET}, ack_url=ACK_URL))
    await sim.start()
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=6)
    async with pool.acquire() as conn:
        seeded = await seed_district(conn)
    settings = Settings(postgres=PostgresSettings(dsn=pg_dsn),
                        sms=SmsSettings(provider="aliyun", sign_name=SIGN, ack_base_url=ACK_URL))
    app = create_app(settings, pool=pool, clock=clock, board_poll_s=0.2,
                     login_limits=LoginLimits(per_user=5, per_ip=30, window_s=900),
                     otp_limits=OtpLimits(per_phone=3, per_source=6, window_s=3600, resend_s=60, per_code=3))
    notifier = SmsNotifier(AliyunSms(f"{sim.url}/aliyun", KEY, SECRET, SIGN), timeout_s=2.0)
    sender = OutboxSender(pool, {"sms": notifier})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            yield Field(client, pool, sim, sender, clock, seeded)
    await notifier.aclose()
    await pool.close()
    await sim.stop()


async def test_a_code_by_sms_signs_a_grid_member_in_to_their_village_only(field: Field) -> None:
    r = await field.request("139 0000 1111")
    assert r.status_code == 200 and r.json()["detail"] == SENT_TEXT, r.text
    code = await field.code(GRID_V1)
    [sms] = await field.sms(GRID_V1)
    assert sms["body"] == (f"您的登录验证码为{code}，5分钟内有效，仅用于登录监测平台查看和处置报警，"
                           "请勿告诉他人；如非本人操作，请忽略本短信。")
    async with field.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT code_hash FROM console_login_codes WHERE phone = $1", GRID_V1)
    assert stored.startswith("$argon2id$") and code not in stored  # hashed at rest

    r = await field.login(GRID_V1, code)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == {"username": f"gm{GRID_V1}", "role": "grid_member",
                                "display_name": "陈网格（东门社区）"}
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    me = (await field.client.get("/api/auth/me", headers=auth)).json()
    assert me["role_zh"] == "网格员" and me["village_ids"] == ["V1"]
    alerts = (await field.client.get("/api/alerts", headers=auth)).json()["items"]
    assert {a["site_id"] for a in alerts} == {"S1", "S2"}  # 东门社区's sites, not 河西村's S3
    sites = (await field.client.get("/api/sites", headers=auth)).json()["items"]
    assert {s["id"] for s in sites} == {"S1", "S2"}

    # another village's alarm: 403 in Chinese, and a row in the audit
    fire = field.seeded.alerts["fire_s3"]
    r = await field.client.get(f"/api/alerts/{fire}", headers=auth)
    assert r.status_code == 403 and r.json()["detail"] == "无权查看：该报警不在您负责的村（社区）", r.text
    r = await field.client.post(f"/api/alerts/{fire}/acknowledge", headers=auth, json={})
    assert r.status_code == 403
    refused = await field.audit("alert.refused")
    assert [(a["actor"], a["target"]) for a in refused] == [(f"grid_member:gm{GRID_V1}", fire)] * 2
    # its own village's alarm opens, and it may acknowledge it
    gas = field.seeded.alerts["gas_s1"]
    assert (await field.client.get(f"/api/alerts/{gas}", headers=auth)).status_code == 200
    r = await field.client.post(f"/api/alerts/{gas}/acknowledge", headers=auth, json={})
    assert r.status_code == 200 and r.json()["applied"], r.text

    async with field.pool.acquire() as conn:
        user = await conn.fetchrow("SELECT * FROM console_users WHERE username = $1", f"gm{GRID_V1}")
        body = await conn.fetchval("SELECT body FROM notifications WHERE template = 'login_code'")
    assert user["source"] == "registry" and user["village_ids"] == ["V1"] and user["phone"] == GRID_V1
    assert code not in body and "••••••" in body  # the used code is gone from the outbox row too
    assert [a["target"] for a in await field.audit("otp.login")] == ["139****1111"]


async def test_an_unknown_number_gets_the_same_answer_and_no_sms(field: Field) -> None:
    known, unknown = await field.request(GRID_V2), await field.request(STRANGER)
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    await field.deliver()
    assert len(await field.sms(GRID_V2)) == 1 and await field.sms(STRANGER) == []
    r = await field.login(STRANGER, "123456")  # a guess at a number with no code: a wrong code
    assert r.status_code == 401 and r.json()["detail"] == "验证码错误，请检查后重试"
    sent = {a["target"]: a["detail"] for a in await field.audit("otp.request")}
    assert '"sent": false' in sent["137****9999"] and '"sent": true' in sent["139****2222"]
    # a number held by a deactivated account is never made again from the registry
    async with field.pool.acquire() as conn:
        await conn.execute("INSERT INTO console_users (username, role, password_hash, village_ids, phone,"
                           " active)"
                           " VALUES ('gm-old', 'grid_member', '!', '{V1}', $1, false)", GRID_V1)
    field.clock.now += timedelta(minutes=2)
    assert (await field.request(GRID_V1)).status_code == 200
    await field.deliver()
    assert await field.sms(GRID_V1) == []


async def test_wrong_expired_and_reused_codes_are_refused_in_chinese_and_audited(field: Field) -> None:
    await field.request(GRID_V1)
    code = await field.code(GRID_V1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = await field.login(GRID_V1, wrong)
    assert r.status_code == 401 and r.json()["detail"] == "验证码错误，请检查后重试"
    assert (await field.login(GRID_V1, code)).status_code == 200
    r = await field.login(GRID_V1, code)  # single use
    assert r.status_code == 401 and r.json()["detail"] == "验证码已使用或已失效，请重新获取"

    field.clock.now += timedelta(minutes=1, seconds=1)
    await field.request(GRID_V1)
    code = await field.code(GRID_V1)
    field.clock.now += timedelta(minutes=5, seconds=1)  # valid 5 minutes
    r = await field.login(GRID_V1, code)
    assert r.status_code == 401 and r.json()["detail"] == "验证码已过期（5分钟内有效），请重新获取"

    # per_code (3 here) wrong tries spend the code: the right one no longer works
    await field.request(GRID_V1)
    code = await field.code(GRID_V1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    details = [(await field.login(GRID_V1, wrong)).json()["detail"] for _ in range(3)]
    assert details[-1] == "验证码错误次数过多，该验证码已失效，请重新获取"
    # the password login's throttle too: 5 failures of this number from this address since the
    # last success (reused, expired, 3 wrong) lock it for a minute (console.auth)
    r = await field.login(GRID_V1, code)
    assert r.status_code == 429 and r.json()["detail"] == "验证码错误次数过多，请在 60 秒后重试"
    assert r.headers["retry-after"] == "60"
    field.clock.now += timedelta(seconds=61)
    r = await field.login(GRID_V1, code)  # the right code, but spent
    assert r.status_code == 401 and r.json()["detail"] == "验证码已使用或已失效，请重新获取"
    reasons = [a["detail"]["reason"] if isinstance(a["detail"], dict) else a["detail"]
               for a in await field.audit("otp.refused")]
    text = " ".join(str(x) for x in reasons)
    for reason in ("wrong_code", "used", "expired", "too_many_tries", "throttled:failures"):
        assert reason in text, (reason, text)


async def test_code_requests_are_limited_per_number_and_per_address(field: Field) -> None:
    assert (await field.request(GRID_V1)).status_code == 200
    r = await field.request(GRID_V1)  # one a minute
    assert r.status_code == 429 and r.json()["detail"] == "获取验证码过于频繁，请在 60 秒后重试"
    assert r.headers["retry-after"] == "60"
    for _ in range(2):
        field.clock.now += timedelta(seconds=61)
        assert (await field.request(GRID_V1)).status_code == 200
    field.clock.now += timedelta(seconds=61)
    r = await field.request(GRID_V1)  # per_phone = 3 an hour
    assert r.status_code == 429
    assert r.json()["detail"].startswith("该号码获取验证码次数过多（60 分钟内 3 次）")
    await field.deliver()
    assert len(await field.sms(GRID_V1)) == 3  # nothing sent for a refused request
    # per address (6 an hour here, refused ones not counted), whatever the numbers
    for phone in (GRID_V2, MAINT_M1, STRANGER):
        assert (await field.request(phone)).status_code == 200
    r = await field.request("13700008888")
    assert r.status_code == 429 and r.json()["detail"].startswith("本地址获取验证码次数过多")
    r = await field.request("12345")
    assert r.status_code == 400 and r.json()["detail"] == "手机号码格式不正确，请输入11位手机号码"
    reasons = [str(a["detail"]) for a in await field.audit("otp.refused")]
    kinds = ("resend", "per_phone", "per_source", "bad_phone")
    assert [next(x for x in kinds if x in d) for d in reasons] == list(kinds)


async def test_a_maintainer_signs_in_by_its_duty_mobile_and_sees_its_lifts(field: Field) -> None:
    await field.request(MAINT_M1)
    r = await field.login(MAINT_M1, await field.code(MAINT_M1))
    assert r.status_code == 200 and r.json()["user"]["role"] == "maintainer", r.text
    assert r.json()["user"]["display_name"] == "张工（钱江电梯维保）"
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    alerts = (await field.client.get("/api/alerts", headers=auth)).json()["items"]
    assert [a["id"] for a in alerts] == [field.seeded.alerts["elev_s2"]]
    devices = (await field.client.get("/api/devices", headers=auth)).json()["items"]
    assert [d["id"] for d in devices] == ["E1"]  # S2's lift, not the site's other devices
    r = await field.client.get(f"/api/alerts/{field.seeded.alerts['gas_s1']}", headers=auth)
    assert r.status_code == 403 and r.json()["detail"] == "无权查看：该报警不是您维保的电梯"
    assert (await field.client.get("/api/hazards", headers=auth)).status_code == 403  # not its to read


async def _alarm_sms_to(field: Field, phone: str, alert_id: str) -> str:
    """An alarm SMS with its link to ``phone`` (a grid member told of the alarm), through the
    outbox as flush queues one; returns the link token the simulator received."""
    name = variant("alarm", "sup", "gas.high", link=True)
    params = {"level": "红色报警", "unit": "老王饭店", "loc": "后厨", "what": "可燃气体浓度超标",
              "reading": "32%LEL",
              "when": "11月20日09:56", "code": "000000", "token": ack_placeholder(), "person": "王老板",
              "phone": "13812345678"}
    body, sent = render(name, params, sign_name=SIGN, provider="aliyun")
    r = Recipient(role=RecipientRole.GRID_MEMBER, name="陈网格", unit="东门社区", phone=phone,
                  rule="territory:V1")
    req = NotificationRequest(id=f"n-{alert_id[:8]}-{phone}", alert_id=alert_id, channel="sms", recipient=r,
                              template="alarm", body=body, created_at=field.clock.now)
    async with field.pool.acquire() as conn:
        await enqueue(conn, [NewNotification(req, sent)], now=field.clock.now)
    await field.deliver()
    [m] = [m for m in await field.sms(phone) if "/ack/" in m["body"]]
    return re.search(r"/ack/([0-9A-Za-z_-]{22})$", m["body"]).group(1)  # type: ignore[union-attr]


async def test_the_sms_link_signs_its_recipient_in_and_opens_the_alarm(field: Field) -> None:
    gas = field.seeded.alerts["gas_s1"]
    token = await _alarm_sms_to(field, GRID_V1, gas)
    page = await field.client.get(f"/ack/{token}")
    assert page.status_code == 200 and "确认收到" in page.text and "登录查看报警详情" in page.text
    assert f'href="/login/sms?ack={token}"' in page.text and "老王饭店" not in page.text  # GET tells nothing

    form = await field.client.get(f"/login/sms?ack={token}")
    assert form.status_code == 200 and "获取验证码" in form.text and f'value="{token}"' in form.text
    sent = await field.client.post("/login/sms", content=f"phone={GRID_V1}&ack={token}", headers={
        **ORIGIN, "Content-Type": "application/x-www-form-urlencoded"})
    assert sent.status_code == 200 and "输入短信验证码" in sent.text and "139****1111" in sent.text
    code = await field.code(GRID_V1)
    r = await field.client.post("/login/sms/verify", content=f"phone={GRID_V1}&code={code}&ack={token}",
                                headers={**ORIGIN, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303 and r.headers["location"] == f"/#/alert/{gas}", r.text
    assert r.cookies.get("hazmon_session") and "httponly" in r.headers["set-cookie"].lower()
    alarm = await field.client.get(f"/api/alerts/{gas}")  # by the session cookie the page set
    assert alarm.status_code == 200 and alarm.json()["site_name"] == "老王饭店"
    again = await field.client.get(f"/login/sms?ack={token}")  # signed in already: no second code
    assert again.status_code == 303 and again.headers["location"] == f"/#/alert/{gas}", again.text

    # the acknowledgement of the link works as before, as that recipient
    acked = await field.client.post(f"/ack/{token}")
    assert acked.status_code == 200 and "已确认收到" in acked.text and "登录查看报警详情" in acked.text

    # the link forwarded to the 维保单位: signed in, but not landed on someone else's alarm
    field.clock.now += timedelta(seconds=61)
    await field.request(MAINT_M1)
    code = await field.code(MAINT_M1)
    r = await field.client.post("/login/sms/verify", content=f"phone={MAINT_M1}&code={code}&ack={token}",
                                headers={**ORIGIN, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403 and "该报警短信不是发给本号码的" in r.text
    [refused] = await field.audit("ack.login_refused")
    assert refused["target"] == "139****3333" and "other_recipient" in str(refused["detail"])
    # signed in as the 维保单位, the forwarded link asks for the recipient's own code again
    form = await field.client.get(f"/login/sms?ack={token}")
    assert form.status_code == 200 and "获取验证码" in form.text


async def test_the_phone_pages_refuse_a_foreign_origin_and_a_wrong_code_in_chinese(field: Field) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await field.client.post("/login/sms", content=f"phone={GRID_V1}",
                                headers={**form, "Origin": "https://evil.example"})
    assert r.status_code == 400 and "请求无效，请重新打开登录页面" in r.text
    r = await field.client.post("/api/auth/otp/request", json={"phone": GRID_V1},
                                headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["detail"] == "跨站请求被拒绝"
    refused = [str(a["detail"]) for a in await field.audit("otp.refused")]
    assert len(refused) == 2 and all("cross_site" in d for d in refused), refused
    await field.deliver()
    assert await field.sms(GRID_V1) == []  # a cross-site request sends nothing

    r = await field.client.post("/login/sms", content=f"phone={GRID_V1}", headers={**form, **ORIGIN})
    assert r.status_code == 200 and r.headers["referrer-policy"] == "same-origin"
    code = await field.code(GRID_V1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = await field.client.post("/login/sms/verify", content=f"phone={GRID_V1}&code={wrong}",
                                headers={**form, **ORIGIN})
    assert r.status_code == 401 and "验证码错误，请检查后重试" in r.text and "set-cookie" not in r.headers
    r = await field.client.post("/login/sms/verify", content=f"phone={GRID_V1}&code={code}",
                                headers={**form, **ORIGIN})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no SMS link: the console's start


async def test_an_account_the_admin_gave_a_phone_signs_in_by_code(field: Field) -> None:
    """Not in the registry: the admin's account (console/users.py), its own villages."""
    async with field.pool.acquire() as conn:
        token = (await sessions_for(conn, ["admin1"], now=NOW))["admin1"][0]
    admin = {"Authorization": f"Bearer {token}"}
    body = {"username": "gm-zhou", "password": "a long password", "role": "grid_member",
            "display_name": "周网格", "village_ids": ["V2"], "phone": "136 0000 1234"}
    r = await field.client.post("/api/users", headers=admin, json=body)
    assert r.status_code == 201, r.text
    r = await field.client.post("/api/users", headers=admin, json={**body, "username": "gm-zhou2"})
    assert r.status_code == 400 and "已属于另一个账号" in r.json()["detail"]  # one active account a number
    r = await field.client.post("/api/users", headers=admin,
                                json={**body, "username": "gm-x", "village_ids": []})
    assert r.status_code == 400, r.text  # a grid member needs its villages (the text: console/words.py)
    await field.request("13600001234")
    r = await field.login("13600001234", await field.code("13600001234"))
    assert r.status_code == 200 and r.json()["user"] == {"username": "gm-zhou", "role": "grid_member",
                                                         "display_name": "周网格"}
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    alerts = (await field.client.get("/api/alerts", headers=auth)).json()["items"]
    assert [a["id"] for a in alerts] == [field.seeded.alerts["fire_s3"]]  # 河西村's S3
