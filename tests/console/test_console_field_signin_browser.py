"""手机验证码登录 in real headless Chromium (Debian's) at phone size (390×844): a grid member opens
the link of an alarm SMS, takes 登录查看报警详情, asks for a code, types it and lands on that
alarm in the console. The pages read in Chinese with no English word visible.

The SMS path itself (outbox → provider → the gateway simulator over HTTP) is tested in
test_console_field_signin.py; here the link and the code are read from the outbox rows they were
queued in (no sender runs), which is what the recipient's phone would show.
Screenshots: artifacts/screenshots/otp_*.png (copies in docs/screenshots/)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from console_district import NOW
from console_server import ConsoleServer

from alerting.outbox import NewNotification, enqueue
from alerting.templates import Deployment, ack_placeholder, render, variant
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
GRID_V1 = "13900001111"  # 东门社区's grid member (console_district)
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _db(dsn: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:  # the test thread belongs to Playwright
        return ex.submit(lambda: asyncio.run(go())).result(timeout=60)


def _alarm_sms(alert_id: str) -> Callable[[Any], Awaitable[str]]:
    async def go(conn: Any) -> str:
        name = variant("alarm", "sup", "gas.high", link=True)
        params = {"level": "红色报警", "unit": "老王饭店", "loc": "后厨", "what": "可燃气体浓度超标",
                  "reading": "32%LEL", "when": "11月20日09:56", "code": "000000", "token": ack_placeholder(),
                  "person": "王老板", "phone": "13812345678"}
        body, sent = render(name, params, sign_name="区应急指挥中心",
                            deployment=Deployment("http://127.0.0.1:8080/ack", "0571-88001110"))
        r = Recipient(role=RecipientRole.GRID_MEMBER, name="陈网格", unit="东门社区", phone=GRID_V1,
                      rule="territory:V1")
        req = NotificationRequest(id="n-browser-grid", alert_id=alert_id, channel="sms", recipient=r,
                                  template="alarm", body=body, created_at=NOW)
        await enqueue(conn, [NewNotification(req, sent)], now=NOW)
        body = await conn.fetchval("SELECT body FROM notifications WHERE id = 'n-browser-grid'")
        return re.search(r"/ack/([0-9A-Za-z_-]{22})$", body).group(1)  # type: ignore[union-attr]

    return go


async def _code(conn: Any) -> str:
    body = await conn.fetchval("SELECT body FROM notifications WHERE template = 'login_code'"
                               " ORDER BY created_at DESC LIMIT 1")
    return re.search(r"登录验证码为(\d{6})", body).group(1)  # type: ignore[union-attr]


def test_a_grid_member_opens_the_sms_link_signs_in_by_code_and_sees_the_alarm(fresh_api, tmp_path):
    gas = fresh_api.seeded.alerts["gas_s1"]
    token = _db(fresh_api.dsn, _alarm_sms(gas))
    srv = ConsoleServer(fresh_api.dsn).start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, args=ARGS, viewport=PHONE,
                                                       locale="zh-CN")
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.goto(f"{srv.url}/ack/{token}")
            assert "确认收到" in page.inner_text("body")
            page.screenshot(path=str(SHOTS / "otp_1_link_phone.png"), full_page=True)
            page.click("text=登录查看报警详情")

            page.wait_for_selector("#phone")
            page.fill("#phone", GRID_V1)
            texts = [page.inner_text("body")]
            page.screenshot(path=str(SHOTS / "otp_2_phone_phone.png"), full_page=True)
            page.click("text=获取验证码")

            page.wait_for_selector("#code")
            body = page.inner_text("body")
            texts.append(body)
            assert "验证码短信已发送" in body and "139****1111" in body, body
            code = _db(fresh_api.dsn, _code)
            page.fill("#code", code)
            page.screenshot(path=str(SHOTS / "otp_3_code_phone.png"), full_page=True)
            page.click("button:text-is('登录')")

            page.wait_for_url(re.compile(r"/#/field/"))  # on a phone: the field page of that alarm (field.js)
            page.wait_for_selector("[data-testid=field-alert-page]")
            assert page.url.endswith(f"/#/field/{gas}")
            assert "老王饭店" in page.inner_text("#main")
            assert "网格员" in page.inner_text("body")  # who is signed in: 陈网格（东门社区）（网格员）
            page.screenshot(path=str(SHOTS / "otp_4_alert_phone.png"), full_page=True)
            for text in texts:  # the sign-in pages: Chinese only
                assert LATIN_WORD.findall(text) == [], text
            ctx.close()
    finally:
        srv.stop()
