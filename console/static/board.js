/* 报警看板 (issue 14 item 7): the duty operator's live board — open alarms by colour, from
   GET /api/board, kept current by app.js's live stream (it calls renderBoard on every change).
   Filters by 镇街, 领域 and 阶段 go to the server (a district's open list can be long) and are
   applied to live changes here too. 逾期 (an alarm past its 到场, 确认/处置/办结 timers: the server's
   words in item.overdue) and overdue 工单 (GET /api/workorders?state=overdue; 404: none) are
   highlighted. Sound and flashing for unacknowledged red alarms: alarm.js.
   Loaded after app.js (it uses h, api, show, fmtTime, state and the word tables of words.js). */
"use strict";

const boardFilter = { township_id: "", domain: "", stage: "" };
/* the closed loop's open stages as operators name them, and the phases each holds */
const BOARD_STAGES = [["", "全部阶段"], ["verify", "研判"], ["dispatch", "派发"], ["handle", "处置"],
  ["feedback", "反馈"]];
const STAGE_PHASES = { verify: ["alarm", "verified"], dispatch: ["dispatched"], handle: ["handling"],
  feedback: ["feedback"] };
const BOARD_DOMAINS = [["", "全部领域"], ["gas", "燃气"], ["elevator", "电梯"], ["fire", "消防"]];
const boardExtra = { overdue: new Map(), orders: [], ordersNote: "", townships: null, timer: null, seq: 0 };
/* a long shift: the board re-reads itself so timers that pass show without a live change */
const BOARD_REFRESH_MS = 30000;

function boardQuery() {
  const q = new URLSearchParams({ limit: "500" });
  if (boardFilter.township_id) q.set("township_id", boardFilter.township_id);
  if (boardFilter.domain) q.set("domain", boardFilter.domain);
  for (const p of STAGE_PHASES[boardFilter.stage] || []) q.append("phase", p);
  return q;
}
function boardMatches(a) {
  return (!boardFilter.township_id || a.township_id === boardFilter.township_id)
    && (!boardFilter.domain || a.domain === boardFilter.domain)
    && (!boardFilter.stage || STAGE_PHASES[boardFilter.stage].includes(a.phase));
}
async function boardOrders() {
  try {
    const d = await api("GET", "/api/workorders?state=overdue&page_size=100");
    boardExtra.orders = d.items || [];
    boardExtra.ordersNote = "";
  } catch (e) {
    boardExtra.orders = [];
    // 404: no 工单 yet on this server; 403: this role has none
    boardExtra.ordersNote = e.status === 404 || e.status === 403 ? "" : `逾期工单读取失败：${e.message}`;
  }
}
async function loadBoard() {
  if (!boardExtra.townships) {
    boardExtra.townships = await api("GET", "/api/townships").catch(() => []);
  }
  const seq = ++boardExtra.seq;  // filters changed quickly: only the latest answer is drawn
  const [data] = await Promise.all([api("GET", `/api/board?${boardQuery()}`), boardOrders()]);
  boardExtra.warn = typeof warnBoardMark === "function" ? await warnBoardMark() : null;  // warnings.js: 区域预警
  if (seq !== boardExtra.seq) return;
  state.board = new Map(data.items.map((a) => [a.id, a]));
  boardExtra.overdue = new Map(data.items.filter((a) => a.overdue && a.overdue.length)
    .map((a) => [a.id, a.overdue]));
  renderBoard();
  clearTimeout(boardExtra.timer);
  boardExtra.timer = setTimeout(() => {
    if (state.view === "board") loadBoard().catch(() => {});
  }, BOARD_REFRESH_MS);
}
function boardSelect(key, opts) {
  const sel = h("select", { "data-testid": `board-filter-${key}`, "aria-label": "筛选",
    onchange: () => { boardFilter[key] = sel.value; loadBoard().catch((e) => toast(e.message)); } },
  opts.map(([v, words]) => h("option", { value: v, selected: boardFilter[key] === v ? "selected" : null },
    words)));
  return sel;
}
function boardFilters() {
  const towns = [["", "全部镇街"], ...(boardExtra.townships || []).map((t) => [t.id, t.name])];
  const any = boardFilter.township_id || boardFilter.domain || boardFilter.stage;
  return h("div", { class: "board-filters", "data-testid": "board-filters" },
    boardSelect("township_id", towns), boardSelect("domain", BOARD_DOMAINS),
    boardSelect("stage", BOARD_STAGES),
    any ? h("button", { class: "secondary", "data-testid": "board-filter-clear", onclick: () => {
      Object.assign(boardFilter, { township_id: "", domain: "", stage: "" });
      loadBoard().catch((e) => toast(e.message));
    } }, "清除筛选") : null,
    h("a", { href: "#/history", class: "board-link" }, "报警历史查询"),
    ["centre", "admin", "township", "department"].includes(state.me.role)
      ? h("a", { href: "#/wall", class: "board-link" }, "大屏") : null);
}
/* what is overdue about one alarm: the server's words, and its overdue 工单 */
function boardOverdueOf(a) {
  const words = [...(a.overdue || boardExtra.overdue.get(a.id) || [])];
  for (const o of boardExtra.orders) if (o.alert_id === a.id) words.push(`工单逾期：${o.unit_name}`);
  return words;
}
function ordersPanel() {
  if (boardExtra.ordersNote) return h("p", { class: "error" }, boardExtra.ordersNote);
  if (!boardExtra.orders.length) return null;
  return h("div", { class: "panel overdue-orders", "data-testid": "overdue-orders" },
    h("h3", {}, `逾期工单 · ${boardExtra.orders.length}`),
    h("ul", {}, boardExtra.orders.map((o) => h("li", { "data-testid": "overdue-order" },
      h("a", { href: `#/alert/${encodeURIComponent(o.alert_id)}` }, o.alert_title || "报警"),
      ` · ${o.unit_name}${o.assignee_name ? "（" + o.assignee_name + "）" : ""} · ${o.state_zh || "未完成"}`
        + ` · 期限 ${fmtTime(o.deadline)}`))));
}
function renderBoard() {
  if (state.view !== "board") return;
  const items = [...state.board.values()].filter(boardMatches)
    .sort((a, b) => (a.starts_at < b.starts_at ? 1 : -1));
  const counts = Object.fromEntries(SEV.map((s) => [s, items.filter((a) => a.severity === s).length]));
  const late = items.filter((a) => boardOverdueOf(a).length).length;
  const tiles = h("div", { class: "counts", "data-testid": "board-counts" },
    SEV.map((s) => h("div", { class: `count sev-${s}`, "data-testid": `count-${s}` },
      h("b", {}, counts[s]), `${SEV_ZH[s]}报警`)),
    h("div", { class: "count overdue-count", "data-testid": "count-overdue" }, h("b", {}, late), "逾期报警"));
  const cols = SEV.map((s) => h("div", { class: `col ${s}`, "data-testid": `col-${s}` },
    h("h3", {}, `${SEV_ZH[s]} · ${counts[s]}`),
    items.filter((a) => a.severity === s).map(card)));
  show(...[h("h2", {}, "报警看板"), boardExtra.warn, boardFilters(), tiles, ordersPanel(),
    h("div", { class: "board", "data-testid": "board" }, cols)].filter(Boolean));
  for (const a of items) a.fresh = false;
  if (typeof alarmRefresh === "function") alarmRefresh();
}
function card(a) {
  const late = boardOverdueOf(a);
  const ringing = typeof alarmRinging === "function" && alarmRinging(a);
  const cls = `card ${a.severity}${a.fresh ? " fresh" : ""}${late.length ? " overdue" : ""}`
    + (ringing ? " ringing" : "");
  return h("div", { class: cls,
    "data-testid": "alert-card", "data-alert-id": a.id, "data-overdue": late.length ? "1" : null,
    onclick: () => { location.hash = `#/alert/${encodeURIComponent(a.id)}`; } },
  h("div", { class: "site" }, a.site_name),
  h("div", {}, testTag(a), whatHappened(a)),
  h("div", { class: "meta" }, h("span", {}, `${zh(DOMAIN_ZH, a.domain, "其他领域")} · ${a.township_name || ""}`),
    h("span", {}, h("span", { class: `tag ${a.phase}` }, zh(PHASE_ZH, a.phase)), " ", fmtTime(a.starts_at))),
  late.map((w) => h("div", { class: "late", "data-testid": "alert-overdue" }, `逾期：${w}`)),
  a.suppressed_by ? h("div", { class: "meta" }, `已静默：${a.suppressed_zh || "静默规则"}`) : null);
}

VIEWS.board = { load: () => loadBoard(), allowed: (role) => role !== "vendor" };
