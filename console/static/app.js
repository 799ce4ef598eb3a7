/* hazmon console page: plain JS, no framework, no CDN. Every node is built with textContent
   (no innerHTML with data), so a site name can never inject markup. CSP forbids inline code. */
"use strict";

const state = { me: null, board: new Map(), es: null, view: "board", alertId: null };
/* Pages in their own files register here, loaded after app.js: VIEWS.name = { load, allowed(role) }.
   load(arg) renders the page (arg: the hash's second part); allowed decides its navigation link. */
const VIEWS = {};

/* ---------- tiny DOM helpers ---------- */
function h(tag, attrs, ...children) {
  const isSvg = ["svg", "circle", "line", "polyline", "rect", "text", "g", "path", "title"].includes(tag);
  const el = isSvg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
/* operators read China Standard Time whatever the browser's zone */
const CST_FMT = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const CST_DAY = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" });
/* "老王饭店 燃气浓度 32%LEL": the site, then what happened, without the site twice (a detector's
   summary often starts with it) */
function siteSummary(a) {
  const what = a.summary_zh || "报警";
  return what.startsWith(a.site_name) ? what : `${a.site_name} ${what}`;
}
/* what happened, for a card that shows the site on its own line: the summary without its leading
   site name ("燃气浓度 32%LEL", not "老王饭店 燃气浓度 32%LEL" under "老王饭店") */
function whatHappened(a) {
  const what = a.summary_zh || "报警";
  const rest = a.site_name && what.startsWith(a.site_name) ? what.slice(a.site_name.length).trim() : what;
  return rest || "报警";
}
function fmtTime(iso) { return iso ? CST_FMT.format(new Date(iso)) : "—"; }
function fmtDay(iso) { return iso ? CST_DAY.format(new Date(iso)) : "—"; }
function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
function dur(s) {
  if (s === null || s === undefined) return "—";
  if (s < 120) return Math.round(s) + "秒";
  if (s < 7200) return Math.round(s / 60) + "分";
  return (s / 3600).toFixed(1) + "时";
}
function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.classList.remove("hidden");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add("hidden"), 3500);
}

/* ---------- API ---------- */
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.me) headers["X-CSRF-Token"] = state.me.csrf_token;
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin" });
  } catch (e) { throw new Error("无法连接操作台服务器，请检查网络后重试"); }
  if (r.status === 401 && path !== "/api/auth/login") { showLogin(); throw new Error("请先登录"); }
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    // the server's errors are Chinese (console/words.py); anything else is said in words here
    const detail = data && typeof data.detail === "string" ? data.detail
      : (data && data.problem) || `请求未完成（状态码 ${r.status}）`;
    const err = new Error(data && data.problem ? data.problem : detail);
    err.status = r.status; err.data = data;
    throw err;
  }
  return data;
}

/* ---------- login ---------- */
function showLogin() {
  if (state.es) { state.es.close(); state.es = null; }
  state.me = null;
  $("app-view").classList.add("hidden");
  $("login-view").classList.remove("hidden");
}
async function doLogin(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("POST", "/api/auth/login", { username: $("login-username").value, password: $("login-password").value });
    $("login-password").value = "";
    await start();
  } catch (e) { $("login-error").textContent = e.message; }
}
async function start() {
  state.me = await api("GET", "/api/auth/me");
  $("login-view").classList.add("hidden");
  $("app-view").classList.remove("hidden");
  $("who-name").textContent = `${state.me.display_name || state.me.username}（${state.me.role_zh}）`;
  const vendor = state.me.role === "vendor";
  const centre = ["centre", "admin"].includes(state.me.role);
  for (const a of document.querySelectorAll("#nav a")) {
    const v = a.dataset.view;
    const allowed = vendor ? ["health", "diagnostics"].includes(v)
      : (v === "diagnostics" || v === "system") ? centre
      : v === "notices" ? ["centre", "admin", "township", "department"].includes(state.me.role)
      : v === "hazards" ? state.me.role !== "maintainer"
      : VIEWS[v] ? VIEWS[v].allowed(state.me.role) : true;  // 网格员/维保单位: issue 14
    a.classList.toggle("hidden", !allowed);
  }
  if (!vendor) connectLive();
  if (VIEWS.field) VIEWS.field.landing(state.me.role);  // 网格员/维保单位/企业 on a phone: field.js
  if (!location.hash || location.hash === "#/") location.hash = vendor ? "#/health" : "#/board";
  route();
}

/* ---------- live board (SSE) ---------- */
function connectLive() {
  if (state.es) state.es.close();
  const es = new EventSource("/api/stream");
  state.es = es;
  if (typeof onLiveStream === "function") onLiveStream(es);  // alarm.js: 红色报警声光提示
  es.addEventListener("hello", () => { setLive(true); if (state.view === "board") loadBoard(); });
  es.addEventListener("alert", (ev) => {
    const msg = JSON.parse(ev.data);
    const a = msg.alert;
    const isNew = !state.board.has(a.id);
    if (a.phase === "closed") state.board.delete(a.id); else state.board.set(a.id, { ...a, fresh: isNew });
    if (state.view === "board") renderBoard();
    if (state.view === "alert" && state.alertId === a.id && a.version > (state.shownVersion || 0)) loadAlert(a.id);
    if (isNew && a.phase !== "closed") toast(`新报警：${siteSummary(a)}`);
  });
  es.addEventListener("resync", () => loadBoard());
  // the server ended the stream: the session ended (→ the login form), or the console stops
  es.addEventListener("bye", (ev) => {
    setLive(false);
    if (JSON.parse(ev.data || "{}").reason === "session") { es.close(); retryLive(es, 0); }
  });
  es.onerror = () => {
    setLive(false);
    // EventSource gives up for good on a non-200 answer (429 over the stream cap, 503 while the
    // database restarts): try again later ourselves
    if (es.readyState === EventSource.CLOSED) retryLive(es, 5000);
  };
}
/* reopen the live stream after delayMs if the session still holds (a 401 shows the login form
   via api(); a 503 tries again later) */
function retryLive(es, delayMs) {
  setTimeout(() => {
    if (state.es !== es || !state.me) return;  // replaced meanwhile, or signed out
    api("GET", "/api/auth/me")
      .then(() => { if (state.es === es) connectLive(); })
      .catch(() => { if (state.es === es && state.me) retryLive(es, 5000); });
  }, delayMs);
}
function setLive(on) {
  const el = $("live");
  el.textContent = on ? "● 实时" : "● 离线";
  el.className = "live " + (on ? "on" : "off");
}

/* ---------- router ---------- */
window.addEventListener("hashchange", () => route());
function route() {
  if (!state.me) return;
  const [, view, arg] = (location.hash || "#/board").split("/");
  state.view = view || "board";
  state.alertId = view === "alert" ? decodeURIComponent(arg || "") : null;
  state.shownAlertId = null;  // navigating (even to the same alert) renders afresh
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === state.view);
  if (typeof keyPeriodBanner === "function") keyPeriodBanner();  // keyperiods.js: 重点时段 banner on every page
  const views = { alert: () => loadAlert(state.alertId), health: loadHealth,
    diagnostics: loadDiagnostics,  // matrix.js, reports.js (#/silences): their own files
    system: loadSystem, notices: loadNotices };  // system.js (监测系统运行状态), notices.js (通知单台账)
  const own = VIEWS[state.view];
  (own ? () => own.load(arg ? decodeURIComponent(arg) : "") : views[state.view] || loadBoard)().catch((e) => show(h("p", { class: "error" }, e.message)));
}
function show(...nodes) { const m = $("main"); m.replaceChildren(...nodes); }

/* 测试: a GB/T 26875.3 part in 测试状态 (fire.test, label test) — shown as a test, never as a real 火警 */
function isTest(a) { return a.kind === "fire.test" || !!(a.labels && a.labels.test); }
function testTag(a) { return isTest(a) ? [h("span", { class: "tag test", "data-testid": "alert-test" }, "测试"), " "] : null; }
/* ---------- 报警详情 ---------- */
/* What the operator has typed or chosen in the shown page's fields, by data-testid: a live
   update re-renders the alert, and must not throw away a half-written 办结说明. */
function typedFields() {
  const out = {};
  for (const el of $("main").querySelectorAll("input[data-testid], textarea[data-testid], select[data-testid]")) {
    const changed = el.tagName === "SELECT"
      ? el.selectedIndex !== Math.max(0, [...el.options].findIndex((o) => o.defaultSelected))
      : el.value !== el.defaultValue;
    if (changed) out[el.dataset.testid] = el.value;
  }
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.testid : null;
  return { values: out, focused };
}
function restoreFields({ values, focused }) {
  for (const [id, value] of Object.entries(values)) {
    const el = $("main").querySelector(`[data-testid="${id}"]`);
    if (el) el.value = value;
  }
  const el = focused && $("main").querySelector(`[data-testid="${focused}"]`);
  if (el) el.focus();
}
async function loadAlert(id) {
  const a = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
  if (state.alertId !== id) return;  // the user moved on meanwhile
  // an action's own reload and the live update it caused race: render each version once
  if (state.shownAlertId === id && a.version <= (state.shownVersion || 0)) return;
  const typed = state.shownAlertId === id ? typedFields() : { values: {}, focused: null };
  state.shownAlertId = id;
  state.shownVersion = a.version;
  const info = h("div", { class: "kv" },
    h("div", {}, "级别"), h("div", {}, h("span", { class: `tag sev-${a.severity}` }, SEV_ZH[a.severity])),
    h("div", {}, "场所"), h("div", {}, `${a.site_name}（${a.township_name}）`),
    h("div", {}, "设备"), h("div", {}, `${a.device_id} · ${zh(DOMAIN_ZH, a.domain, "其他领域")}`),
    h("div", {}, "内容"), h("div", {}, testTag(a), a.summary_zh || "报警"),
    h("div", {}, "发生"), h("div", {}, fmtTime(a.starts_at)),
    // a late or mis-clocked alarm (issue 18): when hazmon learned of it; its 四单 count from there
    ...(a.time_flag && a.reported_at ? [h("div", {}, "接报"), h("div", { "data-testid": "alert-reported" },
      fmtTime(a.reported_at), `（${zh(TIME_FLAG_ZH, a.time_flag, "设备时间异常")}，四单按接报时间计）`)] : []),
    h("div", {}, "状态"), h("div", { "data-testid": "alert-phase" }, zh(PHASE_ZH, a.phase),
      a.verdict ? `（${VERDICT_ZH[a.verdict]}）` : "", a.state === "resolved" ? " · 已恢复" : " · 持续中"),
    h("div", {}, "确认"), h("div", {}, a.acked_at ? `${a.acked_by_zh || actorZh(a.acked_by)} ${fmtTime(a.acked_at)}` : "未确认"),
    h("div", {}, "四单升级"), h("div", {}, a.escalation_step ? NOTICE_ZH[["", "reminder", "warning", "supervision", "accountability"][a.escalation_step]] : "未升级"));
  const timeline = h("ul", { class: "timeline", "data-testid": "timeline" },
    a.transitions.map((t) => h("li", { class: t.outcome === "rejected" ? "rejected" : "" },
      h("b", {}, t.action_zh || zh(ACTION_ZH, t.action, "操作")), ` ${fmtTime(t.at)} · ${t.actor_zh || actorZh(t.actor)}`,
      t.outcome === "rejected" ? h("span", { class: "muted" }, `（未执行：${t.problem_zh || "不符合当前状态"}）`) : null,
      t.verdict ? ` · ${VERDICT_ZH[t.verdict]}` : "", t.reason_zh ? ` · ${t.reason_zh}` : "", t.note ? ` · ${t.note}` : "")));
  const notified = a.notifications.length ? h("table", { class: "notified", "data-testid": "notifications" },
    h("tr", {}, ["时间", "对象", "单位", "电话", "渠道", "依据", "状态"].map((x) => h("th", {}, x))),
    a.notifications.map((n) => h("tr", {}, h("td", {}, fmtTime(n.created_at)), h("td", {}, n.recipient_name),
      h("td", {}, n.recipient_unit), h("td", {}, n.recipient_phone || ""), h("td", {}, n.channel_zh || zh(CHANNEL_ZH, n.channel)),
      h("td", { class: "rule", "data-testid": "notify-rule" }, n.rule_zh || "—"),
      h("td", { class: n.status === "undeliverable" ? "rejected" : "" }, n.status_zh || zh(NOTIFY_STATUS_ZH, n.status),
        (n.status === "undeliverable" || n.status === "failed") && n.error_zh ? `：${n.error_zh}` : ""))))
    : h("p", { class: "muted" }, "暂无通知记录");
  const notices = a.notices.length ? h("ul", {}, a.notices.map((n) =>
    h("li", {}, `${zh(NOTICE_ZH, n.level, "四单")} · ${fmtTime(n.issued_at)} · 期限 ${fmtTime(n.deadline)} · ${n.status_zh || zh(NOTICE_STATUS_ZH, n.status)}`))) : h("p", { class: "muted" }, "未升级");
  show(h("p", {}, h("a", { href: "#/board" }, "← 返回看板")),
    h("h2", {}, `报警详情 · ${a.site_name}`),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, info, h("h3", {}, "处置操作"), actions(a)),
      h("div", { class: "panel" }, h("h3", {}, "读数曲线"), chart(a.readings, a.starts_at, a.metric_zh || {}))),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h3", {}, "处置时间线"), timeline),
      h("div", { class: "panel" }, h("h3", {}, "四单升级"), notices)),
    // full width: each message's recipient, channel and the rule that chose it, in words
    h("div", { class: "panel" }, h("h3", {}, "通知记录（接收人、渠道与依据）"), notified));
  restoreFields(typed);
}
function actions(a) {
  const role = state.me.role;
  const centre = role === "centre" || role === "admin";
  const box = h("div", { class: "actions", "data-testid": "actions" });
  const msg = h("p", { class: "error", "data-testid": "action-error" });
  const hz = VIEWS.hazards && VIEWS.hazards.alertAction(a); if (hz) box.append(hz);  // 转隐患 (hazards.js)
  async function act(path, body) {
    msg.textContent = "";
    try {
      await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/${path}`, { ...body, expected_version: a.version });
      // what was submitted is done with: the next render must not carry it over
      for (const el of box.querySelectorAll("input, select")) el.value = el.tagName === "SELECT" ? el.options[0].value : el.defaultValue;
      toast("操作成功");
      await loadAlert(a.id);
    } catch (e) { msg.textContent = e.message; }
  }
  if (a.phase === "closed") { box.append(h("span", {}, `已办结：${a.close_reason || ""}`)); return h("div", {}, box, msg); }
  if (!a.acked_at) box.append(h("button", { "data-testid": "btn-ack", onclick: () => act("acknowledge", {}) }, "确认"));
  if (centre && a.arrival && !a.arrival.arrived_at) {  // 维保单位到场计时 (alerting/arrival.py)
    box.append(h("span", {}, `维保单位应于 ${new Date(a.arrival.due_at).toLocaleTimeString("zh-CN")} 前到场`),
      h("button", { "data-testid": "btn-arrival", onclick: () => act("arrival", { note: "" }) }, "维保到场"));
  }
  if (centre && a.phase === "alarm") {
    const v = h("select", { "data-testid": "verdict" }, Object.entries(VERDICT_ZH).map(([k, t]) => h("option", { value: k }, t)));
    const r = h("input", { placeholder: "研判依据", "data-testid": "verify-reason" });
    box.append(v, r, h("button", { "data-testid": "btn-verify", onclick: () => act("verify", { verdict: v.value, reason: r.value }) }, "研判"));
  }
  if (VIEWS.workorders) box.append(VIEWS.workorders.alertPanel(a));  // 派发 from the 责任矩阵, the 工单 (workorders.js)
  if (a.phase === "dispatched") box.append(h("button", { "data-testid": "btn-handle", onclick: () => act("handle", { note: "" }) }, "开始处置"));
  if (["dispatched", "handling"].includes(a.phase)) {
    const n = h("input", { placeholder: "反馈内容", "data-testid": "feedback-note" });
    box.append(n, h("button", { "data-testid": "btn-feedback", onclick: () => act("feedback", { note: n.value }) }, "反馈"));
  }
  const closable = a.phase === "feedback" || (a.phase === "verified" && a.verdict !== "real");
  if (centre && closable) {
    const r = h("input", { placeholder: "办结说明", "data-testid": "close-reason" });
    box.append(r, h("button", { "data-testid": "btn-close", onclick: () => act("close", { reason: r.value }) }, "办结"));
  }
  return h("div", {}, box, msg);
}

/* 辖区地图: map.js */

/* ---------- 设备健康 ---------- */
async function loadHealth() {
  const d = await api("GET", "/api/health/devices?page_size=100");
  const c = d.counts;
  const tiles = h("div", { class: "tiles", "data-testid": "health-tiles" },
    [["设备总数", c.total], ["在线率", pct(c.online_rate)], ["离线", c.offline], ["从未上线", c.never_seen], ["数据停更", c.stale], ["电量低", c.low_battery]]
      .map(([t, v]) => h("div", { class: "tile" }, t, h("b", {}, v))));
  const table = h("table", { "data-testid": "health-table" },
    h("tr", {}, ["设备", "场所", "领域", "厂商", "问题", "最后上报"].map((x) => h("th", {}, x))),
    d.items.map((r) => h("tr", {}, h("td", {}, r.id), h("td", {}, r.site_name || r.site_id), h("td", {}, zh(DOMAIN_ZH, r.domain, "其他领域")),
      h("td", {}, r.vendor_name || "未登记厂商"), h("td", {}, zh(PROBLEM_ZH, r.problem)), h("td", {}, fmtTime(r.last_reading || r.last_seen)))));
  show(h("h2", {}, "设备健康"), tiles, h("p", { class: "muted" }, `共 ${d.total} 台设备有问题（显示前 ${d.items.length} 台）`), table);
}

/* 考核指标: kpi.js */

/* ---------- 接入诊断 (隐患台账: hazards.js) ---------- */
async function loadDiagnostics() {
  const [sum, d] = await Promise.all([api("GET", "/api/diagnostics/summary"), api("GET", "/api/diagnostics/deadletters?page_size=50")]);
  show(h("h2", {}, "接入诊断（被拒报文）"),
    h("table", {}, h("tr", {}, ["厂商", "原因", "次数", "最近"].map((x) => h("th", {}, x))),
      sum.items.map((r) => h("tr", {}, h("td", {}, r.vendor_name || "未登记厂商"), h("td", {}, r.reason_zh), h("td", {}, r.n),
        h("td", {}, fmtTime(r.last_at))))),
    h("h3", {}, "最近被拒报文"),
    // 技术说明 and 报文片段 are the adapter's message and the vendor's own bytes, verbatim on purpose
    // (data-verbatim): the vendor's engineer fixes the payload from them
    h("table", { "data-testid": "deadletters" }, h("tr", {}, ["时间", "厂商", "设备", "原因", "技术说明（原文）", "报文片段"].map((x) => h("th", {}, x))),
      d.items.map((r) => h("tr", {}, h("td", {}, fmtTime(r.received_at)), h("td", {}, r.vendor_name || "未登记厂商"), h("td", {}, r.device_id),
        h("td", {}, r.reason_zh), h("td", { class: "rule" }, h("code", { "data-verbatim": "" }, r.detail)),
        h("td", { class: "rule" }, h("code", { "data-verbatim": "" }, r.raw_preview))))));
}

/* ---------- boot ---------- */
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", doLogin);
  $("logout").addEventListener("click", async () => { try { await api("POST", "/api/auth/logout"); } finally { showLogin(); } });
  start().catch(() => showLogin());
});
