/* 大屏 (issue 14 item 7): the wall screen of a duty room, #/wall — the page alone (no navigation),
   large type readable from across the room at 1920×1080: open alarms by colour and by domain,
   how many the 四单 ladder escalated, the newest red alarms and the township ranking of open
   alarms, from GET /api/wall, refreshed every WALL_REFRESH_MS and on every live change.
   Loaded after app.js (it uses h, api, show, fmtTime, state, words.js's tables). */
"use strict";

const WALL_REFRESH_MS = 15000;
const WALL_ROLES = ["centre", "admin", "township", "department"];
const wall = { timer: null, clock: null, last: null };
const WALL_CLOCK = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric",
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

function wallLeave() {
  document.body.classList.remove("wall-mode");
  clearInterval(wall.timer); clearInterval(wall.clock);
  wall.timer = wall.clock = null;
}
window.addEventListener("hashchange", () => { if (!location.hash.startsWith("#/wall")) wallLeave(); });

function wallClock() {
  const el = $("wall-clock");
  if (el) el.textContent = WALL_CLOCK.format(new Date());
}
function wallFullscreen() {
  const el = document.documentElement;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else if (el.requestFullscreen) el.requestFullscreen().catch(() => toast("浏览器未允许全屏，请按 F11"));
}
async function wallRender() {
  const [d, orders] = await Promise.all([api("GET", "/api/wall"),
    // 逾期工单 (the 工单 API: 404 where there is none yet, 403 for a role without it)
    api("GET", "/api/workorders?state=overdue&page_size=1").catch(() => null)]);
  if (state.view !== "wall") return;
  wall.last = new Date().toISOString();
  const maxOpen = Math.max(1, ...d.townships.map((t) => t.open));
  const head = h("div", { class: "wall-head" },
    h("div", { class: "wall-title" }, "城市安全风险监测预警平台 · 报警态势"),
    h("div", { class: "wall-clock", id: "wall-clock" }),
    h("div", { class: "wall-tools" },
      h("button", { class: "secondary", "data-testid": "wall-fullscreen", onclick: wallFullscreen }, "全屏"),
      h("a", { href: "#/board", "data-testid": "wall-exit" }, "退出大屏")));
  const tiles = h("div", { class: "wall-tiles", "data-testid": "wall-counts" },
    SEV.map((s) => h("div", { class: `wall-tile sev-${s}`, "data-testid": `wall-count-${s}` },
      h("b", {}, d.counts[s] || 0), `${SEV_ZH[s]}报警`)),
    h("div", { class: "wall-tile wall-total" }, h("b", { "data-testid": "wall-total" }, d.total), "在办报警"),
    h("div", { class: "wall-tile wall-escalated" }, h("b", {}, d.escalated), "已升级（四单）"),
    orders ? h("div", { class: "wall-tile wall-escalated" }, h("b", { "data-testid": "wall-orders-overdue" },
      orders.total), "逾期工单") : null);
  const domains = h("div", { class: "wall-panel" }, h("h3", {}, "各领域在办报警"),
    h("table", { class: "wall-table", "data-testid": "wall-domains" },
      h("tr", {}, h("th", {}, "领域"), SEV.map((s) => h("th", {}, SEV_ZH[s])), h("th", {}, "合计")),
      d.domains.length ? d.domains.map((r) => h("tr", {}, h("td", {}, r.domain_zh),
        SEV.map((s) => h("td", { class: r.counts[s] ? `n-${s}` : "zero" }, r.counts[s] || 0)),
        h("td", {}, h("b", {}, r.total))))
        : h("tr", {}, h("td", { colspan: 6, class: "zero" }, "暂无在办报警"))));
  const towns = h("div", { class: "wall-panel" }, h("h3", {}, "镇街在办报警排名"),
    h("ol", { class: "wall-rank", "data-testid": "wall-townships" },
      d.townships.length ? d.townships.map((t) => h("li", {},
        h("span", { class: "wall-rank-name" }, t.township_name),
        h("span", { class: "wall-bar" }, h("span", { class: "wall-bar-fill", "data-w": t.open / maxOpen })),
        h("span", { class: "wall-rank-n" }, `${t.open}`, t.red ? h("small", {}, ` 红 ${t.red}`) : null)))
        : h("li", { class: "zero" }, "暂无")));
  const reds = h("div", { class: "wall-panel wall-reds" }, h("h3", {}, "最新红色报警"),
    d.newest_red.length ? h("ul", { "data-testid": "wall-red" }, d.newest_red.map((a) => h("li",
      { class: a.acked_at ? "" : "unacked" },
      h("span", { class: "wall-time" }, fmtTime(a.starts_at)), h("span", { class: "wall-site" }, a.site_name),
      h("span", {}, whatHappened(a)),
      h("span", { class: "wall-town" }, `${a.township_name || ""} · ${zh(PHASE_ZH, a.phase)}`),
      a.acked_at ? null : h("span", { class: "wall-flag" }, "未确认"))))
      : h("p", { class: "zero" }, "暂无红色报警"));
  show(h("div", { class: "wall", "data-testid": "wall" }, head, tiles,
    h("div", { class: "wall-grid" }, domains, towns), reds,
    h("div", { class: "wall-foot", "data-testid": "wall-updated" },
      `每 ${WALL_REFRESH_MS / 1000} 秒自动刷新 · 更新于 ${fmtTime(wall.last)}`)));
  // bar widths set as properties: the page's CSP forbids inline style attributes
  for (const el of document.querySelectorAll(".wall-bar-fill")) {
    el.style.width = `${Math.round(el.dataset.w * 100)}%`;
  }
  wallClock();
}
async function loadWall() {
  document.body.classList.add("wall-mode");
  clearInterval(wall.timer); clearInterval(wall.clock);
  wall.timer = setInterval(() => {
    if (state.view === "wall") wallRender().catch(() => {}); else wallLeave();
  }, WALL_REFRESH_MS);
  wall.clock = setInterval(wallClock, 1000);
  if (state.es && wall.listening !== state.es) {
    wall.listening = state.es;
    state.es.addEventListener("alert", () => { if (state.view === "wall") wallRender().catch(() => {}); });
  }
  await wallRender();
}

VIEWS.wall = { load: () => loadWall(), allowed: (role) => WALL_ROLES.includes(role) };
