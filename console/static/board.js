/* 报警看板 (issue 14 item 7): the duty operator's live board — open alarms by colour, from
   GET /api/board, kept current by app.js's live stream (it calls renderBoard on every change).
   Loaded after app.js (it uses h, api, show, fmtTime, state and the word tables of words.js). */
"use strict";

async function loadBoard() {
  const data = await api("GET", "/api/board");
  state.board = new Map(data.items.map((a) => [a.id, a]));
  renderBoard();
}
function renderBoard() {
  if (state.view !== "board") return;
  const items = [...state.board.values()].sort((a, b) => (a.starts_at < b.starts_at ? 1 : -1));
  const counts = Object.fromEntries(SEV.map((s) => [s, items.filter((a) => a.severity === s).length]));
  const tiles = h("div", { class: "counts", "data-testid": "board-counts" },
    SEV.map((s) => h("div", { class: `count sev-${s}`, "data-testid": `count-${s}` }, h("b", {}, counts[s]), `${SEV_ZH[s]}报警`)));
  const cols = SEV.map((s) => h("div", { class: `col ${s}`, "data-testid": `col-${s}` },
    h("h3", {}, `${SEV_ZH[s]} · ${counts[s]}`),
    items.filter((a) => a.severity === s).map(card)));
  show(h("h2", {}, "报警看板"), tiles, h("div", { class: "board", "data-testid": "board" }, cols));
  for (const a of items) a.fresh = false;
}
function card(a) {
  return h("div", { class: `card ${a.severity}${a.fresh ? " fresh" : ""}`, "data-testid": "alert-card", "data-alert-id": a.id,
    onclick: () => { location.hash = `#/alert/${encodeURIComponent(a.id)}`; } },
  h("div", { class: "site" }, a.site_name),
  h("div", {}, testTag(a), a.summary_zh || "报警"),
  h("div", { class: "meta" }, h("span", {}, `${zh(DOMAIN_ZH, a.domain, "其他领域")} · ${a.township_name || ""}`),
    h("span", {}, h("span", { class: `tag ${a.phase}` }, zh(PHASE_ZH, a.phase)), " ", fmtTime(a.starts_at))),
  a.suppressed_by ? h("div", { class: "meta" }, `已静默：${a.suppressed_zh || "静默规则"}`) : null);
}

VIEWS.board = { load: () => loadBoard(), allowed: (role) => role !== "vendor" };
