"""No internal codes or English where people look (issue 14 item 8): every page of the console,
for every role, in real headless Chromium (Debian's) at 1366×900 and 390×844, over demo-like data
(the test district, then alerting's own flush and 四单 over it: words_seed.py). Fails on any
ASCII identifier or English word in what the user reads: ``document.body.innerText``, the
document's title, and the title / placeholder / aria-label / alt of every element (SVG titles
too). Screenshots of the alert page: docs/screenshots/alert_{desktop,phone}.png."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
from pathlib import Path

import pytest
from console_district import PASSWORD, ROLE_USER
from console_server import ConsoleServer
from words_seed import seed_words

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
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
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}

#: The accounts walked, one per role (console_district.ROLE_USER). A role added there — the field
#: roles 网格员 and 维保单位 with their accounts — is walked too, with no change here.
ROLES: list[tuple[str, str]] = [(role.value, user) for role, user in ROLE_USER.items()]

#: What may stay Latin on a Chinese page, each for a reason:
#: - units people read on the devices and in the standards: %LEL (可燃气体), m/s, %/m (烟雾减光率);
#: - the ids people read off the hardware and the registry: device serials and site / hazard /
#:   silence numbers are shown as ids on purpose (设备 G1, 场所 S1, HZ-S1, sil-1) — matched only as
#:   a whole token of letters, digits and dashes that contains a digit;
#: - GB/T (the standard cited), JSON and SenML (the payload formats vendors configure);
#: - marked verbatim on purpose: 接入诊断's 技术说明 and 报文片段 (``data-verbatim``: the adapter's message
#:   and the vendor's own bytes, what its engineer fixes the payload from) and the process instance
#:   (host:pid) in 运行状态's tooltips (``data-verbatim-title``). Nothing else.
ALLOWED = re.compile(r"%LEL|m/s|%/m|GB/T|\bJSON\b|\bSenML\b|(?<![\w-])(?=[\w-]*\d)[A-Za-z][\w-]*(?![\w-])")
LATIN = re.compile(r"[A-Za-z]{2,}|[A-Za-z]+[_:.][A-Za-z0-9]")

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(
        "Debian's chromium is not installed (scripts/setup_browser.sh installs it)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")

#: everything the user reads on the page: shown text, the tab's title, tooltips, placeholders,
#: the names screen readers say, SVG titles (hover tooltips on the map and charts)
_VISIBLE_JS = """() => {
  const verbatim = [...document.querySelectorAll('[data-verbatim]')];
  for (const el of verbatim) el.style.display = 'none';
  const out = [document.title, document.body.innerText];
  for (const el of verbatim) el.style.display = '';
  for (const el of document.querySelectorAll('[title], [placeholder], [aria-label], [alt]')) {
    if (el.closest('[data-verbatim]')) continue;
    for (const a of ['title', 'placeholder', 'aria-label', 'alt'])
      if (el.getAttribute(a) && !(a === 'title' && el.hasAttribute('data-verbatim-title')))
        out.push(el.getAttribute(a));
  }
  for (const t of document.querySelectorAll('svg title')) out.push(t.textContent);
  for (const o of document.querySelectorAll('option')) out.push(o.textContent);
  return out.join('\\n');
}"""


def english(text: str) -> list[str]:
    """The lines of ``text`` with a Latin word or an ASCII identifier left after the allowlist."""
    return [ln for ln in text.splitlines() if LATIN.search(ALLOWED.sub("", ln))]


def test_the_allowlist_is_narrow():
    assert english("老王饭店 燃气浓度 32%LEL") == []
    assert english("设备 G1 · 燃气") == [] and english("HZ-S1 燃气管道老化") == []
    for leak in (
        "设备上报 trapped",
        "notify · system · alarm",
        "sms",
        "matrix:R-gas:department:D-ZJ",
        "gas_lel (%LEL)",
        "alert 'x' not found",
        "Field required",
        "site:S1:contact",
    ):
        assert english(leak), leak


def _seed(dsn: str) -> dict[str, str]:
    with concurrent.futures.ThreadPoolExecutor(1) as ex:  # the test thread belongs to Playwright
        return ex.submit(lambda: asyncio.run(seed_words(dsn))).result(timeout=120)


def _visit(page, hash_: str) -> None:
    page.evaluate("() => document.getElementById('main').replaceChildren()")
    # the page's own router draws the view (same hash: no hashchange, so call it)
    page.evaluate(f"() => {{ if (location.hash === {hash_!r}) route(); else location.hash = {hash_!r}; }}")
    page.wait_for_function("() => document.getElementById('main').children.length > 0", timeout=15_000)
    page.wait_for_timeout(400)  # a view's second request (考核指标's 通报) and the live stream's first event


def test_every_page_for_every_role_reads_in_chinese(fresh_api, tmp_path):
    extra = _seed(fresh_api.dsn)
    srv = ConsoleServer(fresh_api.dsn).start()
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    leaks: dict[str, list[str]] = {}
    walked: set[str] = set()
    try:
        with sync_api.sync_playwright() as p:
            for size, viewport in SIZES.items():
                for role, user in ROLES:
                    ctx = p.chromium.launch_persistent_context(
                        str(tmp_path / f"profile-{size}-{role}"),
                        executable_path=CHROMIUM,
                        headless=True,
                        args=ARGS,
                        viewport=viewport,
                        locale="zh-CN",
                    )
                    page = ctx.pages[0] if ctx.pages else ctx.new_page()
                    page.goto(srv.url + "/")
                    page.wait_for_selector("#login-form")
                    login = page.evaluate(_VISIBLE_JS)
                    leaks.update({f"{size} {role} 登录页": english(login)} if english(login) else {})
                    if role == ROLES[0][0]:  # the phone sign-in page (网格员, 维保单位), server-rendered
                        page.goto(srv.url + "/login/sms")
                        assert "手机验证码登录" in page.inner_text("body")
                        if bad := english(page.evaluate(_VISIBLE_JS)):
                            leaks[f"{size} /login/sms"] = bad
                        page.goto(srv.url + "/")
                        page.wait_for_selector("#login-form")
                    page.fill("#login-username", user)
                    page.fill("#login-password", "wrong password")
                    page.click("#login-submit")
                    page.wait_for_function("() => document.getElementById('login-error').textContent !== ''")
                    page.fill("#login-password", PASSWORD)
                    page.click("#login-submit")
                    page.wait_for_selector("#app-view:not(.hidden)")
                    views = page.eval_on_selector_all(
                        "#nav a:not(.hidden)", "as => as.map((a) => a.dataset.view)"
                    )
                    assert views, (role, "no page to open")
                    for view in views:
                        _visit(page, f"#/{view}")
                        walked.add(f"{role}:{view}")
                        if bad := english(page.evaluate(_VISIBLE_JS)):
                            leaks[f"{size} {role} #/{view}"] = bad
                    if "board" in views:
                        _visit(page, "#/board")
                        alerts = page.eval_on_selector_all(
                            "[data-testid=alert-card]", "cs => cs.map((c) => c.dataset.alertId)"
                        )
                        for aid in alerts:
                            _visit(page, f"#/alert/{aid}")
                            page.wait_for_selector("[data-testid=timeline]")
                            walked.add(f"{role}:alert")
                            if bad := english(page.evaluate(_VISIBLE_JS)):
                                leaks[f"{size} {role} #/alert/{aid}"] = bad
                            if role == "centre" and aid == extra["gas_s4"]:
                                page.screenshot(path=str(DOCS_SHOTS / f"alert_{size}.png"), full_page=True)
                        # an unknown (or someone else's) alarm's error, as the page shows it
                        if role == "centre" and alerts:
                            _visit(page, "#/alert/no-such-alert")
                            if bad := english(page.evaluate(_VISIBLE_JS)):
                                leaks[f"{size} {role} #/alert/no-such-alert"] = bad
                    ctx.close()
    finally:
        srv.stop()
    assert {
        "centre:board",
        "centre:alert",
        "centre:kpi",
        "centre:matrix",
        "centre:silences",
        "centre:system",
        "vendor:health",
        "business:board",
        "township:alert",
    } <= walked, walked
    assert not leaks, "\n".join(f"{where}: {lines}" for where, lines in leaks.items())
