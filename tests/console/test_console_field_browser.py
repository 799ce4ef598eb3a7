"""现场页 in real headless Chromium (Debian's) at phone size (390×844), issue 14's first Done-when:
a grid member gets the alarm SMS, opens its link, signs in by one-time code, lands on the field
page of that alarm, 确认s, checks in (the browser context grants a fixed position), uploads a real
JPEG with EXIF from the camera input and gives feedback; the centre closes the alarm and the
business receives the outcome SMS.

Real services: PostgreSQL (a fresh district), the console under uvicorn (ConsoleServer), the SMS
gateway simulator over HTTP in its 阿里云 shape, reached by alerting's own outbox sender — the
alarm SMS, the code SMS and the outcome SMS are read from the simulator, as the phones got them.
Screenshots: artifacts/screenshots/field_<n>_<step>_phone.png (copies in docs/screenshots/)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_district import PASSWORD
from console_server import ConsoleServer
from field_services import BOSS_S1, GRID_V1, Services
from PIL import Image
from test_console_attachments import jpeg_with_exif

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
HERE = {"latitude": 30.2001, "longitude": 120.1002, "accuracy": 12.4}  # at 老王饭店
#: what a person may read besides Chinese: units and ids with digits (the walker's allowlist)
ALLOWED = re.compile(r"%LEL|(?<![\w-])(?=[\w-]*\d)[A-Za-z][\w-]*(?![\w-])")
LATIN = re.compile(r"[A-Za-z]{2,}")

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(
        "Debian's chromium is not installed (scripts/setup_browser.sh installs it)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _wait(page: Any, testid: str, text: str) -> None:
    """The element ``testid`` shows ``text``, or the page's own error (in Chinese) is the failure."""
    page.wait_for_function(
        "([id, text]) => ((document.querySelector(`[data-testid=${id}]`) || {}).textContent || '')"
        ".includes(text) || (document.querySelector('[data-testid=field-error]') || {}).textContent",
        arg=[testid, text],
    )
    error = page.evaluate(
        "() => (document.querySelector('[data-testid=field-error]') || {}).textContent || ''"
    )
    assert not error, error


def _shot(page: Any, n: int, step: str) -> None:
    # no horizontal scroll at 390 px, and nothing but Chinese where a person reads
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{step}: the page is {width}px wide"
    text = page.inner_text("body")
    assert [w for ln in text.splitlines() for w in LATIN.findall(ALLOWED.sub("", ln))] == [], text
    page.screenshot(path=str(SHOTS / f"field_{n}_{step}_phone.png"), full_page=True)


def test_a_grid_member_signs_in_from_the_sms_checks_in_uploads_a_photo_and_gives_feedback(
    fresh_api, tmp_path
):
    gas = fresh_api.seeded.alerts["gas_s1"]
    centre = {"Authorization": f"Bearer {fresh_api.tokens['centre1'][0]}"}
    srv = ConsoleServer(fresh_api.dsn).start()
    svc = Services(fresh_api.dsn, srv.url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "IMG_20261120_100512.jpg"
    photo.write_bytes(jpeg_with_exif(1200, 900))
    try:
        svc.alarm_sms(gas)
        [alarm] = svc.sms(GRID_V1)
        token = re.search(r"/ack/([0-9A-Za-z_-]{22})", alarm).group(1)  # type: ignore[union-attr]
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport=PHONE,
                locale="zh-CN",
                geolocation=HERE,
                permissions=["geolocation"],
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.goto(f"{srv.url}/ack/{token}")
            _shot(page, 1, "link")
            page.click("text=登录查看报警详情")
            page.fill("#phone", GRID_V1)
            page.click("text=获取验证码")
            page.wait_for_selector("#code")
            code = re.search(r"登录验证码为(\d{6})", svc.sms(GRID_V1)[-1]).group(1)  # type: ignore[union-attr]
            page.fill("#code", code)
            _shot(page, 2, "code")
            page.click("button:text-is('登录')")

            # the SMS link's alarm opens on the field page
            page.wait_for_selector("[data-testid=field-alert-page]")
            assert page.url.endswith(f"/#/field/{gas}")
            main = page.inner_text("#main")
            assert "老王饭店" in main and "东门路1号" in main and "城关镇 · 东门社区" in main
            assert "可燃气体浓度超高限报警" in main and "关闭燃气阀门" in main  # what happened, what to do
            assert "可燃气体浓度（%LEL）" in page.inner_text("[data-testid=field-readings]")
            _shot(page, 3, "alarm")

            page.click("[data-testid=field-ack]")
            page.wait_for_selector("[data-testid=field-state]:has-text('已确认')")
            _shot(page, 4, "ack")

            # meanwhile the centre has verified the alarm and passed it to the village (the alarm's own
            # 派发 step, no work order: the work-order path is the next test's)
            r = httpx.post(
                f"{srv.url}/api/alerts/{gas}/verify",
                json={"verdict": "real", "reason": "浓度持续超限"},
                headers=centre,
            )
            assert r.status_code == 200, r.text
            svc.dispatch(gas, "东门社区")
            page.reload()
            page.wait_for_selector("[data-testid=field-state]:has-text('已派发')")

            page.click("[data-testid=field-checkin]")
            _wait(page, "field-done", "定位精度约12米")
            [checkin] = svc.sql("SELECT lat, lon, accuracy_m FROM field_checkins WHERE alert_id = $1", gas)
            assert tuple(checkin) == (30.2001, 120.1002, 12.4)
            assert page.inner_text("[data-testid=field-state]").startswith("处置中")
            _shot(page, 5, "checkin")

            page.set_input_files("[data-testid=photo-input]", str(photo))
            page.wait_for_selector("[data-testid=photo-preview][data-uploaded='1']")
            page.wait_for_function(
                "() => document.querySelector('[data-testid=photo-preview] img').naturalWidth > 0"
            )
            page.fill("[data-testid=field-note]", "已关闭燃气总阀并开窗通风，浓度降至2%LEL，无人员受伤")
            _shot(page, 6, "photo")
            page.click("[data-testid=field-send]")
            page.wait_for_selector("[data-testid=field-photos] img")
            page.wait_for_function(
                "() => document.querySelector('[data-testid=field-photos] img').naturalWidth > 0"
            )
            assert page.inner_text("[data-testid=field-state]").startswith("已反馈")
            _shot(page, 7, "feedback")

            # the stored photo: a JPEG without EXIF (no GPS, no maker), its sha256 kept
            [att] = svc.sql("SELECT id, sha256, width, height FROM attachments WHERE alert_id = $1", gas)
            served = page.request.get(f"{srv.url}/api/attachments/{att['id']}")
            assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
            data = served.body()
            assert hashlib.sha256(data).hexdigest() == att["sha256"]
            img = Image.open(io.BytesIO(data))
            assert (
                len(img.getexif()) == 0
                and b"TestPhoneMaker" not in data
                and (att["width"], att["height"]) == (900, 1200)
            )
            [fb] = svc.sql(
                "SELECT note, photo_ref FROM alert_transitions WHERE alert_id = $1 AND action = 'feedback'"
                " AND outcome = 'applied'",
                gas,
            )
            assert fb["photo_ref"] == att["id"] and fb["note"].startswith("已关闭燃气总阀")

            # the centre accepts the feedback and closes; the business is told the outcome
            r = httpx.post(
                f"{srv.url}/api/alerts/{gas}/close",
                json={"reason": "现场已处置，浓度恢复正常"},
                headers=centre,
            )
            assert r.status_code == 200, r.text
            assert svc.outcomes() >= 1
            told = [b for b in svc.sms(BOSS_S1) if "办结" in b]
            assert told and "老王饭店" in told[-1], svc.sms(BOSS_S1)
            page.reload()
            page.wait_for_selector("[data-testid=field-closed]")
            _shot(page, 8, "closed")

            page.click("text=← 我的待办")
            page.wait_for_selector("[data-testid=field-list]")
            assert "老王饭店" not in page.inner_text("[data-testid=field-list]")  # closed: off the list
            assert "城关商场" in page.inner_text("[data-testid=field-list]")  # the village's other alarm
            _shot(page, 9, "list")
            ctx.close()
    finally:
        svc.stop()
        srv.stop()


def test_the_centre_dispatches_a_work_order_the_grid_member_works_it_and_the_centre_approves(
    fresh_api, tmp_path
):
    """The work-order path (工单, contract14.md): 派发 to 东门社区's grid member → the order's SMS →
    its link and sign-in by code → 接单 → 到场签到 → 反馈 with a photo and 申请办结 → the centre's
    审核通过 closes the order and the alarm → the business's outcome SMS."""
    gas = fresh_api.seeded.alerts["gas_s1"]
    centre = {"Authorization": f"Bearer {fresh_api.tokens['centre1'][0]}"}
    srv = ConsoleServer(fresh_api.dsn).start()
    svc = Services(fresh_api.dsn, srv.url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "IMG_20261120_101130.jpg"
    photo.write_bytes(jpeg_with_exif(1200, 900))
    try:
        r = httpx.post(
            f"{srv.url}/api/alerts/{gas}/verify",
            json={"verdict": "real", "reason": "浓度持续超限"},
            headers=centre,
        )
        assert r.status_code == 200, r.text
        units = httpx.get(f"{srv.url}/api/alerts/{gas}/dispatch-options", headers=centre).json()["units"]
        grid = next(u for u in units if u["unit_kind"] == "grid")
        assert grid["unit_id"] == "V1" and grid["people"][0]["name"] == "陈网格"
        body = {
            "orders": [{"unit_id": "V1", "contact_id": grid["people"][0]["contact_id"]}],
            "deadline_minutes": 60,
            "note": "请到场核实处置",
        }
        r = httpx.post(f"{srv.url}/api/alerts/{gas}/dispatch", json=body, headers=centre)
        assert r.status_code == 200, r.text
        [order] = r.json()["orders"]
        assert svc.notify_orders() >= 1
        [told] = [b for b in svc.sms(GRID_V1) if "/ack/" in b]
        token = re.search(r"/ack/([0-9A-Za-z_-]{22})", told).group(1)  # type: ignore[union-attr]
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport=PHONE,
                locale="zh-CN",
                geolocation=HERE,
                permissions=["geolocation"],
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.goto(f"{srv.url}/ack/{token}")
            _shot(page, 10, "order_sms_link")
            page.click("text=登录查看报警详情")
            page.fill("#phone", GRID_V1)
            page.click("text=获取验证码")
            page.wait_for_selector("#code")
            code = re.search(r"登录验证码为(\d{6})", svc.sms(GRID_V1)[-1]).group(1)  # type: ignore[union-attr]
            page.fill("#code", code)
            page.click("button:text-is('登录')")
            page.wait_for_selector("[data-testid=field-accept]")
            assert page.url.endswith(f"/#/field/{gas}")
            assert "待接单" in page.inner_text("[data-testid=field-state]")
            _shot(page, 11, "order")

            page.click("[data-testid=field-accept]")
            _wait(page, "field-state", "已接单")
            _shot(page, 12, "accepted")
            page.click("[data-testid=field-checkin]")
            _wait(page, "field-done", "工单到场签到")
            [arrived] = svc.sql(
                "SELECT state, arrived_accuracy_m, arrived_lat FROM work_orders WHERE id = $1",
                order["order_id"],
            )
            assert tuple(arrived) == ("arrived", 12.4, 30.2001)
            _shot(page, 13, "arrived")

            page.set_input_files("[data-testid=photo-input]", str(photo))
            page.wait_for_selector("[data-testid=photo-preview][data-uploaded='1']")
            page.fill("[data-testid=field-note]", "已关闭燃气总阀、开窗通风，复测浓度为0，商户已整改软管")
            _shot(page, 14, "order_photo")
            page.click("[data-testid=field-close-request]")
            _wait(page, "field-state", "已申请办结")
            [fed] = svc.sql(
                "SELECT state, close_requested, attachment_ids FROM work_orders WHERE id = $1",
                order["order_id"],
            )
            [att] = svc.sql("SELECT id, sha256 FROM attachments WHERE alert_id = $1", gas)
            assert (fed["state"], fed["close_requested"], list(fed["attachment_ids"])) == (
                "fed_back",
                True,
                [att["id"]],
            )
            data = page.request.get(f"{srv.url}/api/attachments/{att['id']}").body()
            assert (
                hashlib.sha256(data).hexdigest() == att["sha256"]
                and len(Image.open(io.BytesIO(data)).getexif()) == 0
            )
            _shot(page, 15, "close_requested")

            # the centre accepts the feedback: the order and, its last open one, the alarm close
            r = httpx.post(
                f"{srv.url}/api/workorders/{order['order_id']}/approve",
                json={"reason": "real", "note": "处置到位，同意办结"},
                headers=centre,
            )
            assert r.status_code == 200, r.text
            [alert] = svc.sql("SELECT phase FROM alerts WHERE id = $1", gas)
            assert alert["phase"] == "closed"
            assert svc.outcomes() >= 1
            outcome = [b for b in svc.sms(BOSS_S1) if "办结" in b]
            assert outcome and "老王饭店" in outcome[-1], svc.sms(BOSS_S1)
            page.reload()
            page.wait_for_selector("[data-testid=field-closed]")
            _shot(page, 16, "order_closed")
            ctx.close()
    finally:
        svc.stop()
        srv.stop()


def _password_login(page: Any, url: str, username: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not(.hidden)")


def test_a_maintainer_records_its_arrival_at_a_trapped_passenger_and_a_business_lands_on_its_alarms(
    fresh_api, tmp_path
):
    """A 维保单位 on its phone: the 困人 alarm of its lift, 维保到场签到 with its position (the timer
    stops); a business signed in on a phone lands on its own open alarms."""
    elev = fresh_api.seeded.alerts["elev_s2"]
    srv = ConsoleServer(fresh_api.dsn).start()
    svc = Services(fresh_api.dsn, srv.url)
    svc.sql(
        "INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)"
        " VALUES ($1, 'E1', 'M1', now() - interval '5 minutes', now() + interval '25 minutes')"
        " RETURNING alert_id",
        elev,
    )
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport=PHONE,
                locale="zh-CN",
                geolocation={**HERE, "accuracy": 8.0},
                permissions=["geolocation"],
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            _password_login(page, srv.url, "maint-m1")
            page.wait_for_selector("[data-testid=field-list]")  # the landing page on a phone
            assert page.url.endswith("/#/field")
            page.click("[data-testid=field-alert]:has-text('城关商场')")
            page.wait_for_selector("[data-testid=field-checkin]:has-text('维保到场签到')")
            assert "维保单位到场救援" in page.inner_text("[data-testid=field-todo]")
            _shot(page, 17, "maintainer_trapped")
            page.click("[data-testid=field-checkin]")
            _wait(page, "field-done", "维保到场")
            [(arrived_by, accuracy)] = [
                tuple(r)
                for r in svc.sql(
                    "SELECT l.arrived_by, c.accuracy_m FROM lift_arrivals l JOIN field_checkins c"
                    " ON c.alert_id = l.alert_id AND c.kind = 'arrival' WHERE l.alert_id = $1",
                    elev,
                )
            ]
            assert arrived_by == "maintainer:maint-m1" and accuracy == 8.0
            _shot(page, 18, "maintainer_arrived")
            ctx.close()

            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile-biz"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport=PHONE,
                locale="zh-CN",
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            _password_login(page, srv.url, "biz-s1")
            page.wait_for_selector("[data-testid=field-alert]")
            listed = page.inner_text("[data-testid=field-list]")
            assert "老王饭店" in listed and "城关商场" not in listed  # its own site only
            _shot(page, 19, "business_list")
            ctx.close()
    finally:
        svc.stop()
        srv.stop()


def test_a_camera_photo_over_8_mb_is_scaled_on_the_phone_before_it_is_sent(fresh_api, tmp_path):
    """A 48-megapixel camera's photo would pass the server's 10 MB only now and then: the page
    scales a photo over 8 MB to 2560 px before sending it (what arrives is the smaller one)."""
    import numpy as np

    gas = fresh_api.seeded.alerts["gas_s1"]
    big = tmp_path / "IMG_48MP.jpg"
    noise = np.random.default_rng(14).integers(0, 255, (2600, 3400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big, "JPEG", quality=98)
    assert big.stat().st_size > 8 * 1024 * 1024
    srv = ConsoleServer(fresh_api.dsn).start()
    svc = Services(fresh_api.dsn, srv.url)
    centre = {"Authorization": f"Bearer {fresh_api.tokens['centre1'][0]}"}
    try:
        r = httpx.post(f"{srv.url}/api/alerts/{gas}/verify", json={"verdict": "real", "reason": "浓度超限"},
                       headers=centre)
        assert r.status_code == 200, r.text
        svc.dispatch(gas, "东门社区")
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS, viewport=PHONE,
                locale="zh-CN",
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            _password_login(page, srv.url, "grid-v1")
            page.goto(f"{srv.url}/#/field/{gas}")
            page.wait_for_selector("[data-testid=photo-input]", state="attached")
            page.set_input_files("[data-testid=photo-input]", str(big))
            page.wait_for_selector("[data-testid=photo-preview][data-uploaded='1']", timeout=60_000)
            ctx.close()
        [row] = svc.sql("SELECT source_bytes, width, height FROM attachments WHERE alert_id = $1", gas)
        assert row["source_bytes"] < big.stat().st_size and (row["width"], row["height"]) == (2560, 1958)
    finally:
        svc.stop()
        srv.stop()
