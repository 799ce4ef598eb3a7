"""通知单台账 in real headless Chromium: a township signs and replies to the 区安委办's notice on the
page, the centre sees the reply and 办结s it. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import asyncpg
import pytest
from console_district import NOW
from test_console_browser import SHOTS, _in_thread, _login, browser_page, server  # noqa: F401

from alerting.store import notice_register as register

pytestmark = pytest.mark.browser


def _issue(dsn: str, alert_id: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            nid = await conn.fetchval(
                """INSERT INTO notices (alert_id, level, step, issued_at, deadline, issued_by, reason)
                   VALUES ($1,'warning',2,$2::timestamptz,$2::timestamptz + interval '15 minutes','区安委办','')
                   RETURNING id""",
                alert_id, NOW)
            await register.insert_notice_units(conn, nid, [
                register.RegisterUnit("township", "T1", "城关镇", ("township",)),
                register.RegisterUnit("department", "D-ZJ", "区住建局", ("department",))])
            return int(nid)
        finally:
            await conn.close()
    return _in_thread(go)


def test_a_township_replies_on_the_page_and_the_centre_closes_it(server, fresh_api, browser_page):  # noqa: F811
    page = browser_page
    nid = _issue(fresh_api.dsn, fresh_api.seeded.alerts["gas_s1"])
    _login(page, server.url, "town-t1")
    page.click("#nav a[data-view=notices]")
    row = page.wait_for_selector(f"[data-testid=notice-row][data-notice-id='{nid}']")
    assert "风险警示单" in row.inner_text() and "城关镇（镇街）" in row.inner_text() and "未签收" in row.inner_text()
    assert page.locator("[data-testid=notice-row]").count() == 1  # its own unit's row, not 住建's
    row.query_selector("[data-testid=notice-sign]").click()
    page.wait_for_selector(f"[data-testid=notice-row][data-notice-id='{nid}'] >> text=已签收")
    page.fill(f"[data-testid=notice-row][data-notice-id='{nid}'] [data-testid=notice-reply-text]",
              "已督促老王饭店关阀通风，责任人李值班，整改完毕")
    page.click(f"[data-testid=notice-row][data-notice-id='{nid}'] [data-testid=notice-reply]")
    page.wait_for_selector("text=已督促老王饭店关阀通风，责任人李值班，整改完毕")
    page.screenshot(path=str(SHOTS / "20_notices_township.png"))
    page.click("#logout")

    _login(page, server.url, "centre1")
    page.click("#nav a[data-view=notices]")
    page.wait_for_selector("[data-testid=notices]")
    rows = page.locator(f"[data-testid=notice-row][data-notice-id='{nid}']")
    assert rows.count() == 2  # 城关镇 and 区住建局
    township = rows.filter(has_text="城关镇")
    assert "已回复" in township.inner_text() and "待单位回复" in rows.filter(has_text="区住建局").inner_text()
    township.locator("[data-testid=notice-close-note]").fill("回复属实，同意办结")
    township.locator("[data-testid=notice-close]").click()
    page.wait_for_selector(f"[data-testid=notice-row][data-notice-id='{nid}'] >> text=已办结")
    page.screenshot(path=str(SHOTS / "21_notices_centre.png"))
    text = page.inner_text("main")
    assert "warning" not in text and "township" not in text and "D-ZJ" not in text  # words, not codes
