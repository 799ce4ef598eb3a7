"""工单 in real headless Chromium: the centre 研判s an alarm, opens the 派发 picker (the units and
people of the alarm's 责任矩阵 as checkboxes), picks the grid member with a deadline and 派发s;
the grid member's 工单 page lists it, overdue highlighted once its deadline passed, and takes
接单 → 到场签到 → 反馈; the centre's 工单 page approves it and the alarm is 办结. Every word on
the pages is Chinese (the words walker's check)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import asyncpg
import pytest
from console_district import PASSWORD
from console_server import ConsoleServer
from test_console_browser import ARGS, CHROMIUM, sync_api
from test_console_words_browser import _VISIBLE_JS, english

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _db(dsn: str, sql: str, *args):
    async def go():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: asyncio.run(go())).result(timeout=60)


def test_dispatch_picker_and_the_workorder_page(fresh_api, tmp_path):
    aid = fresh_api.seeded.alerts["gas_s1"]
    srv = ConsoleServer(fresh_api.dsn).start()
    try:
        with sync_api.sync_playwright() as p:
            def open_as(user: str, width: int, height: int):
                ctx = p.chromium.launch_persistent_context(
                    str(tmp_path / f"{user}-{width}"), executable_path=CHROMIUM, headless=True, args=ARGS,
                    locale="zh-CN", viewport={"width": width, "height": height})
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(srv.url + "/")
                page.fill("#login-username", user)
                page.fill("#login-password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_selector("#app-view:not(.hidden)")
                page.wait_for_timeout(1500)  # the landing page (a phone's: 现场处置) drawn first
                return ctx, page

            ctx, page = open_as("centre1", 1366, 900)
            page.goto(f"{srv.url}/#/alert/{aid}")
            page.select_option("[data-testid=verdict]", "real")
            page.fill("[data-testid=verify-reason]", "视频复核属实")
            page.click("[data-testid=btn-verify]")
            page.wait_for_selector("[data-testid=btn-dispatch]").click()
            page.wait_for_selector("[data-testid=dispatch-person]")
            page.locator("[data-testid=dispatch-picker]").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "workorders_1_dispatch_desktop.png"))
            units = page.inner_text("[data-testid=dispatch-picker]")
            for words in ("老王饭店", "企业主体责任", "东门社区", "属地（网格员）", "陈网格", "城关镇", "区住建局",
                          "行业监管（三管三必须）"):
                assert words in units, (words, units)
            page.locator(".wo-unit", has_text="东门社区").locator("[data-testid=dispatch-person]").check()
            page.select_option("[data-testid=dispatch-deadline]", "30")
            page.click("[data-testid=dispatch-submit]")
            page.wait_for_selector("[data-testid=alert-workorders] [data-testid=wo-row]")
            assert "待接单" in page.inner_text("[data-testid=alert-workorders]")
            assert not english(page.evaluate(_VISIBLE_JS)), english(page.evaluate(_VISIBLE_JS))
            page.locator("[data-testid=alert-workorders]").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "workorders_2_dispatched_desktop.png"))
            ctx.close()
            # the deadline passed: the order is overdue on the grid member's phone
            _db(fresh_api.dsn, "UPDATE work_orders SET created_at = created_at - interval '2 hours',"
                " deadline = deadline - interval '2 hours'")
            ctx, page = open_as("grid-v1", 390, 844)
            page.goto(f"{srv.url}/#/workorders")
            page.wait_for_selector("[data-testid=wo-row].wo-overdue [data-testid=wo-overdue]")
            page.screenshot(path=str(SHOTS / "workorders_3_overdue_phone.png"), full_page=True)
            assert not english(page.evaluate(_VISIBLE_JS)), english(page.evaluate(_VISIBLE_JS))
            page.click("[data-testid=wo-accept]")
            page.wait_for_selector("[data-testid=wo-arrive]").click()  # no location granted: without
            page.wait_for_selector("[data-testid=wo-feedback-note]").fill("已关阀通风，软管已更换")
            page.check("[data-testid=wo-request-close]")
            page.click("[data-testid=wo-feedback]")
            page.wait_for_selector("text=已申请办结")
            assert "已反馈待审核" in page.inner_text("[data-testid=workorders]")
            ctx.close()
            ctx, page = open_as("centre1", 1280, 900)
            page.goto(f"{srv.url}/#/workorders")
            page.wait_for_selector("[data-testid=wo-approve]")
            page.screenshot(path=str(SHOTS / "workorders_4_approve_desktop.png"))
            page.select_option("[data-testid=wo-approve-reason]", "real")
            page.fill("[data-testid=wo-approve-note]", "处置到位")
            page.click("[data-testid=wo-approve]")
            page.wait_for_selector("text=暂无工单")  # 未办结: none left
            ctx.close()
        assert _db(fresh_api.dsn, "SELECT phase FROM alerts WHERE id=$1", aid) == "closed"
        assert _db(fresh_api.dsn, "SELECT close_reason FROM alerts WHERE id=$1", aid) == "工单全部办结：真实警情，处置到位"
    finally:
        srv.stop()
