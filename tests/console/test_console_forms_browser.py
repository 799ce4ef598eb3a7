"""The forms of issue 14 item 6 in real headless Chromium (Debian's), at 1366×900 and 390×844: a
business files a 测试 报备 for its own device on the page (an over-long one refused in Chinese);
the centre drafts a 安全公益短信 with its preview, its own approval is refused, another user
approves and it is sent; a 重点时段 added on the page shows its banner on every page; the 责任矩阵
form changes a rule with its reason. Screenshots: docs/screenshots/forms_<name>_{desktop,phone}.png."""

# ruff: noqa: F811  (the fixtures imported from test_console_browser are the parameters)
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from console_district import PASSWORD
from test_console_browser import browser_page, server  # noqa: F401

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _login(page, url: str, user: str) -> None:  # noqa: ANN001
    """Sign in and wait for the console (a field role on a phone lands on its own page, not the board)."""
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not(.hidden) #who-name:not(:empty)")
    page.wait_for_selector("#main h2")  # the landing page rendered: nothing of it overwrites the next one


def _errors(page) -> list[str]:  # noqa: ANN001
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _shot(page, name: str, size: str) -> None:  # noqa: ANN001
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"forms_{name}_{size}.png"), full_page=True)


#: what shows that each page has rendered
READY = {
    "silences": "[data-testid=reports], [data-testid=reports-empty]",
    "broadcasts": "[data-testid=bc-form]",
    "keyperiods": "[data-testid=kp-form]",
    "matrix": "[data-testid=matrix]",
    "board": "[data-testid=board]",
    "hazards": "main h2",
}


def _open(page, url: str, view: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/#/{view}")
    page.wait_for_selector(READY[view])


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_business_files_a_test_report_for_its_own_device(
    server, fresh_api, browser_page, size  # noqa: F811
):
    page = browser_page
    errors = _errors(page)
    page.set_viewport_size(SIZES[size])
    _login(page, server.url, "biz-s1")
    _open(page, server.url, "silences")
    page.wait_for_selector("[data-testid=report-form]")
    assert page.locator("[data-testid=report-site] option").all_inner_texts() == ["老王饭店"]  # its own only
    assert page.is_checked("[data-testid=report-device-G1]")
    page.select_option("[data-testid=report-kind]", "测试")
    page.fill("[data-testid=report-reason]", "燃气报警器联动测试")
    start = datetime.strptime(page.input_value("[data-testid=report-start]"), "%Y-%m-%dT%H:%M")
    page.fill("[data-testid=report-end]", f"{start + timedelta(hours=9):%Y-%m-%dT%H:%M}")  # > 8 h: refused
    page.click("[data-testid=report-submit]")
    page.wait_for_selector(
        "[data-testid=report-error] >> text=报备时长不能超过8小时，如需更长请联系区应急指挥中心"
    )
    assert page.locator("[data-testid=report-row]").count() == 0
    page.fill("[data-testid=report-end]", f"{start + timedelta(hours=2):%Y-%m-%dT%H:%M}")
    page.click("[data-testid=report-submit]")
    row = page.wait_for_selector("[data-testid=report-row]")
    text = row.inner_text()
    assert "老王饭店" in text and "测试" in text and "火警照常通知" in text and "生效中" in text, text
    _shot(page, "reports", size)
    assert not errors, errors


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_broadcast_is_drafted_refused_to_its_author_approved_by_another_and_sent(
    server, fresh_api, browser_page, size
):  # noqa: F811
    page = browser_page
    errors = _errors(page)
    page.set_viewport_size(SIZES[size])
    _login(page, server.url, "centre1")
    _open(page, server.url, "broadcasts")
    page.fill("[data-testid=bc-body]", "请拨打13812345678咨询")
    page.wait_for_selector("[data-testid=bc-problems] >> text=正文不能含手机号或固定电话")
    text = "冬季使用燃气请保持通风，发现泄漏立即关阀，切勿开关电器，到室外拨打119。"
    page.fill("[data-testid=bc-body]", text)
    page.check("[data-testid=bc-industry-餐饮]")
    page.wait_for_selector("[data-testid=bc-ok]")
    count = page.inner_text("[data-testid=bc-count]")
    assert "按1条短信计费" in count and "发送对象2人" in count, count
    assert page.inner_text("[data-testid=bc-text]") == f"【区应急指挥中心】安全提示：{text}"
    page.fill("[data-testid=bc-reason]", "寒潮来临前的燃气安全提示")
    _shot(page, "broadcasts", size)  # the text as the phone shows it, its length and count
    page.click("[data-testid=bc-draft]")
    row = page.wait_for_selector("[data-testid=bc-row] >> text=待审批")
    page.click("[data-testid=bc-approve]")
    page.wait_for_selector("[data-testid=bc-row] >> text=不能审批自己起草的短信")
    _shot(page, "broadcasts_approval", size)
    page.click("#logout")
    _login(page, server.url, "admin1")
    _open(page, server.url, "broadcasts")
    page.click("[data-testid=bc-approve]")
    page.wait_for_selector("[data-testid=bc-status] >> text=已审批待发送")
    page.click("[data-testid=bc-send]")
    page.wait_for_selector("[data-testid=bc-status] >> text=已发送")
    assert "2人" in page.inner_text("[data-testid=bc-row]")
    assert row is not None and not errors, errors


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_key_period_added_on_the_page_shows_its_banner_everywhere(
    server, fresh_api, browser_page, size  # noqa: F811
):
    page = browser_page
    errors = _errors(page)
    page.set_viewport_size(SIZES[size])
    _login(page, server.url, "centre1")
    assert page.is_hidden("[data-testid=kp-banner]")
    _open(page, server.url, "keyperiods")
    page.fill("[data-testid=kp-name]", "元旦假期")
    page.select_option("[data-testid=kp-kind]", "holiday")
    page.fill("[data-testid=kp-reason]", "区安委办通知")
    page.wait_for_selector("[data-testid=kp-town-T1]")
    page.check("[data-testid=kp-town-T1]")
    page.click("[data-testid=kp-submit]")
    page.wait_for_selector("[data-testid=kp-row] >> text=进行中")
    banner = page.wait_for_selector("[data-testid=kp-banner]:not(.hidden)")
    assert "重点时段：元旦假期（节假日，城关镇·全部领域" in banner.inner_text()
    _shot(page, "keyperiods", size)
    for view in ("board", "hazards", "matrix"):
        _open(page, server.url, view)
        assert "元旦假期" in page.inner_text("[data-testid=kp-banner]"), view
    _shot(page, "keyperiods_banner", size)
    page.click("#logout")
    _login(page, server.url, "biz-s1")  # every role sees it
    page.wait_for_selector("[data-testid=kp-banner]:not(.hidden) >> text=元旦假期")
    assert not errors, errors


@pytest.mark.parametrize("size", sorted(SIZES))
def test_the_matrix_form_changes_a_rule_with_its_reason(server, fresh_api, browser_page, size):  # noqa: F811
    page = browser_page
    errors = _errors(page)
    page.set_viewport_size(SIZES[size])
    _login(page, server.url, "centre1")
    _open(page, server.url, "matrix")
    page.click("[data-testid=mx-row][data-rule-id=R-gas] [data-testid=mx-edit]")
    page.wait_for_selector("[data-testid=mx-editor] >> text=修改规则")
    page.check("[data-testid=mx-dept-D-YJ]")
    page.click("[data-testid=mx-save]")
    page.wait_for_selector("[data-testid=mx-error] >> text=请填写变更原因")
    page.fill("[data-testid=mx-reason]", "区政府分工调整")
    page.click("[data-testid=mx-save]")
    page.wait_for_selector("[data-testid=mx-row][data-rule-id=R-gas] >> text=区住建局、区应急管理局")
    assert "区政府分工调整" in page.inner_text("[data-testid=mx-audit]")
    _shot(page, "matrix", size)
    assert not errors, errors
