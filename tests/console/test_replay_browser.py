"""模拟回放 in real headless Chromium (Debian's): the centre picks the scripted morning
(replay_seed.py), the vendor model GD-1 and a proposed 低报 of 25 %LEL, and sees the alarm of the
first peak removed — judged 误报 live, so the period's 误报率 beside it is 100.0% — the SMS to
each role gone, in Chinese only. Screenshots: docs/screenshots/replay_desktop.png, replay_phone.png."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from console_district import PASSWORD
from console_server import ConsoleServer
from replay_seed import seed_replay
from test_console_browser import _in_thread, browser_page  # noqa: F401
from test_console_words_browser import english

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def replay_server(fresh_api):
    async def go() -> None:
        conn = await asyncpg.connect(fresh_api.dsn)
        try:
            await seed_replay(conn)
        finally:
            await conn.close()

    _in_thread(go)
    srv = ConsoleServer(fresh_api.dsn).start()
    yield srv
    srv.stop()


def _readable(page) -> str:
    return page.evaluate("""() => {
      const verbatim = [...document.querySelectorAll('[data-verbatim]')];
      for (const el of verbatim) el.style.display = 'none';
      const attrs = [...document.querySelectorAll('[title],[placeholder],[aria-label],[alt]')]
        .map((e) => ['title', 'placeholder', 'aria-label', 'alt']
          .map((a) => e.getAttribute(a) || '').join('\\n'));
      const text = document.body.innerText + '\\n' + document.title + '\\n' + attrs.join('\\n');
      for (const el of verbatim) el.style.display = '';
      return text;
    }""")


def test_the_replay_page_shows_the_effect_of_a_proposed_threshold(replay_server, browser_page):  # noqa: F811
    srv, page = replay_server, browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(srv.url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", "centre1")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=app-view]:not(.hidden)")
    assert page.locator("#nav a[data-view=replay]").is_visible()
    page.goto(srv.url + "/#/replay")
    page.wait_for_selector("[data-testid=replay-form]")
    page.fill("[data-testid=replay-start]", "2026-11-03 09:00")
    page.fill("[data-testid=replay-end]", "2026-11-03 10:31")
    page.select_option("[data-testid=replay-model]", "GD-1")
    page.fill("[data-testid=replay-param-low_lel]", "25")
    page.click("[data-testid=replay-run]")
    page.wait_for_selector("[data-testid=replay-result]", timeout=60_000)
    result = page.inner_text("[data-testid=replay-result]")
    assert "减少告警 1 起" in result and "新增告警 0 起" in result
    removed = page.inner_text("[data-testid=replay-removed]")
    assert (
        "G1" in removed and "老王饭店" in removed and "误报" in removed and "可燃气体浓度低限报警" in removed
    )
    assert "本时段误报率 100.0%" in page.inner_text("[data-testid=replay-false-rate]")
    models = page.inner_text("[data-testid=replay-models]")
    assert "艾克美" in models and "GD-1" in models and "100.0%" in models
    roles = page.inner_text("[data-testid=replay-roles]")
    assert "企业" in roles and "网格员" in roles
    assert not english(_readable(page)), english(_readable(page))
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "replay_desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert not english(_readable(page))
    page.screenshot(path=str(DOCS / "replay_phone.png"), full_page=True)

    # a thresholds file that fails validation: the loader's lines, nothing run
    page.set_viewport_size({"width": 1366, "height": 900})
    page.fill("[data-testid=replay-param-low_lel]", "")
    page.click("details summary")
    page.fill("[data-testid=replay-detectors]", "models:\n  GD-1:\n    gas:\n      low_lel: -5\n")
    page.click("[data-testid=replay-run]")
    page.wait_for_selector("[data-testid=replay-error]")
    err = page.inner_text("[data-testid=replay-error]")
    assert "阈值文件校验未通过" in err and "detectors.yaml: models.GD-1: gas.low_lel" in err
