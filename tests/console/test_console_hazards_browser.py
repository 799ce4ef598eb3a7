"""隐患台账 from the page, in real headless Chromium at phone size (390×844): a township user turns
an alarm into a hazard (转隐患) and takes it through 挂牌督办 (五落实) → 整改 (a photo uploaded
through POST /api/attachments) → 复查 → 销号; no English word or code on the way but the
hazard's own number. Screenshots of each step: docs/screenshots/hazard_<n>_<step>_phone.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from test_console_browser import _login, browser_page, server  # noqa: F401

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _shot(page, n: int, step: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"hazard_{n}_{step}_phone.png"), full_page=True)


def _no_codes(page, hazard_id: str) -> None:
    text = page.inner_text("main").replace(hazard_id, "")
    assert not re.search(r"[A-Za-z]{2,}", text), text


def test_a_township_turns_an_alarm_into_a_hazard_and_strikes_it_off(server, fresh_api, browser_page,  # noqa: F811
                                                                     tmp_path):
    page = browser_page
    page.set_viewport_size(PHONE)
    photo = tmp_path / "整改后.jpg"
    Image.new("RGB", (800, 600), (90, 140, 200)).save(photo, "JPEG")
    aid = fresh_api.seeded.alerts["gas_s1"]
    _login(page, server.url, "town-t1")
    page.goto(f"{server.url}/#/alert/{aid}")
    page.click("[data-testid=btn-to-hazard]")
    page.fill("[data-testid=to-hazard-title]", "后厨燃气软管老化漏气")
    page.select_option("[data-testid=to-hazard-grade]", "major")
    _shot(page, 1, "to_hazard")
    page.click("[data-testid=to-hazard-submit]")
    page.wait_for_selector("[data-testid=hz-phase] >> text=已登记")
    hid = page.url.rsplit("/", 1)[-1]
    assert hid.startswith("HZ-")
    assert "来源报警" in page.inner_text("[data-testid=hz-info]")
    _no_codes(page, hid)
    _shot(page, 2, "registered")

    page.click("[data-testid=hz-supervise]")  # the 五落实 left empty: refused in Chinese
    err = page.wait_for_selector("[data-testid=hz-error]:has-text('五落实')")
    assert "缺少：责任人、整改措施、整改资金、应急预案" in err.inner_text()
    page.fill("[data-testid=hz-sup-owner]", "王老板 13900001234")
    page.fill("[data-testid=hz-sup-measures]", "更换金属波纹软管，加装燃气切断阀")
    page.fill("[data-testid=hz-sup-funds]", "企业自筹2000元")
    page.fill("[data-testid=hz-sup-plan]", "整改期间停用后厨燃气，配备灭火器")
    page.click("[data-testid=hz-supervise]")
    page.wait_for_selector("[data-testid=hz-phase] >> text=挂牌督办中")
    info = page.inner_text("[data-testid=hz-info]")
    assert "企业自筹2000元" in info and "王老板 13900001234" in info
    _shot(page, 3, "supervised")

    page.set_input_files("[data-testid=hz-rect-photo]", str(photo))
    page.wait_for_selector("[data-testid=hz-rect-photos] img")
    page.fill("[data-testid=hz-rect-note]", "已更换金属软管并加装切断阀，现场拍照")
    _shot(page, 4, "rectify")
    page.click("[data-testid=hz-rectify]")
    page.wait_for_selector("[data-testid=hz-phase] >> text=已整改待复查")
    img = page.wait_for_selector("[data-testid=hz-photos] img")
    assert page.evaluate("(el) => el.complete && el.naturalWidth > 0", img)  # the photo is served back
    _shot(page, 5, "rectified")

    page.fill("[data-testid=hz-review-note]", "现场复查：软管与切断阀符合要求")
    page.click("[data-testid=hz-review-pass]")
    page.wait_for_selector("[data-testid=hz-phase] >> text=复查通过待销号")
    _shot(page, 6, "reviewed")
    page.click("[data-testid=hz-strike]")
    page.wait_for_selector("[data-testid=hz-phase] >> text=已销号")
    timeline = page.inner_text("[data-testid=hz-timeline]")
    for step in ("排查发现", "登记", "挂牌督办", "整改", "复查", "销号"):
        assert step in timeline, timeline
    assert "整改照片1张" in timeline and "复查通过，待销号" in timeline
    _no_codes(page, hid)
    _shot(page, 7, "struck_off")

    page.goto(f"{server.url}/#/alert/{aid}")  # the alarm names the hazard it became
    page.wait_for_selector("[data-testid=alert-hazards] >> text=已转隐患：后厨燃气软管老化漏气（重大隐患，已销号）")
    page.goto(f"{server.url}/#/hazards/{hid}")
    page.click("text=← 返回隐患台账")
    page.wait_for_selector(f"[data-testid=hz-row][data-hazard-id='{hid}'] >> text=已销号")
    assert "辖区内重大隐患已清零" in page.inner_text("[data-testid=hz-clearance]")
    _shot(page, 8, "ledger")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # no sideways scroll
    page.set_viewport_size({"width": 1366, "height": 900})
    page.click(f"[data-testid=hz-row][data-hazard-id='{hid}'] [data-testid=hz-open]")
    page.wait_for_selector("[data-testid=hz-timeline]")
    page.screenshot(path=str(DOCS / "hazard_9_detail_desktop.png"), full_page=True)


def test_the_centre_filters_the_ledger_by_township_and_grade(server, fresh_api, browser_page):  # noqa: F811
    page = browser_page
    _login(page, server.url, "centre1")
    page.goto(f"{server.url}/#/hazards")
    page.wait_for_selector("[data-testid=hz-row]")
    assert page.locator("[data-testid=hz-row]").count() == 2  # HZ-S1 (城关镇) and HZ-S3 (新河街道)
    page.select_option("[data-testid=hz-filter-township_id]", "T2")
    page.wait_for_selector("[data-testid=hz-row][data-hazard-id='HZ-S1']", state="detached")
    assert page.locator("[data-testid=hz-row]").count() == 1
    assert "新河五金厂" in page.inner_text("[data-testid=hazards]")
    page.select_option("[data-testid=hz-filter-grade]", "major")
    page.wait_for_selector("text=暂无隐患")
    _no_codes(page, "")
