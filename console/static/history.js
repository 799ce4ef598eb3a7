/* 报警历史 (issue 14 item 7): the 办结 alarms, searched on the server (GET /api/board/history:
   site name or number, device, 镇街, 领域, 研判结论, a date range on the alarm's start; paged).
   A row opens the alarm with its whole timeline. Loaded after app.js and board.js (it uses h,
   api, show, fmtTime, state, the word tables of words.js and board.js's township list). */
"use strict";

const historyForm = { q: "", device_id: "", township_id: "", domain: "", verdict: "", from: "", to: "",
  page: 1 };
const HISTORY_PAGE = 20;

/* a day typed in the form (YYYY-MM-DD) as the start of that day in China Standard Time */
function cstDay(day, plusDays) {
  const t = new Date(`${day}T00:00:00+08:00`).getTime() + (plusDays || 0) * 86400000;
  return new Date(t).toISOString();
}
function historyField(key, attrs) {
  const el = h("input", { "data-testid": `history-${key}`, value: historyForm[key], ...attrs });
  el.addEventListener("input", () => { historyForm[key] = el.value; });
  return el;
}
function historySelect(key, opts) {
  const sel = h("select", { "data-testid": `history-${key}`, "aria-label": "筛选",
    onchange: () => { historyForm[key] = sel.value; } },
  opts.map(([v, words]) => h("option", { value: v, selected: historyForm[key] === v ? "selected" : null },
    words)));
  return sel;
}
async function loadHistory() {
  if (!boardExtra.townships) boardExtra.townships = await api("GET", "/api/townships").catch(() => []);
  const q = new URLSearchParams({ page: String(historyForm.page), page_size: String(HISTORY_PAGE) });
  for (const k of ["q", "device_id", "township_id", "domain", "verdict"]) {
    if (historyForm[k].trim()) q.set(k, historyForm[k].trim());
  }
  if (historyForm.from) q.set("since", cstDay(historyForm.from));
  if (historyForm.to) q.set("until", cstDay(historyForm.to, 1));
  const search = () => { historyForm.page = 1; loadHistory().catch((e) => toast(e.message)); };
  const form = h("form", { class: "board-filters history-form", "data-testid": "history-form",
    onsubmit: (ev) => { ev.preventDefault(); search(); } },
  h("label", {}, "场所或设备 ", historyField("q", { placeholder: "场所名称、场所编号或设备编号", maxlength: "64", size: "22" })),
  h("label", {}, "设备编号 ", historyField("device_id", { placeholder: "设备编号", maxlength: "128", size: "10" })),
  historySelect("township_id", [["", "全部镇街"], ...boardExtra.townships.map((t) => [t.id, t.name])]),
  historySelect("domain", BOARD_DOMAINS),
  historySelect("verdict", [["", "全部研判结论"], ...Object.entries(VERDICT_ZH)]),
  h("label", {}, "发生日期 ", historyField("from", { type: "date", "aria-label": "开始日期" }), " 至 ",
    historyField("to", { type: "date", "aria-label": "结束日期" })),
  h("button", { type: "submit", "data-testid": "history-search" }, "查询"));
  let d;
  try {
    d = await api("GET", `/api/board/history?${q}`);
  } catch (e) {
    show(h("h2", {}, "报警历史（已办结）"), form,
      h("p", { class: "error", "data-testid": "history-error" }, e.message));
    return;
  }
  if (state.view !== "history") return;
  const pages = Math.max(1, Math.ceil(d.total / HISTORY_PAGE));
  const go = (p) => { historyForm.page = p; loadHistory().catch((e) => toast(e.message)); };
  const table = d.items.length ? h("table", { class: "history", "data-testid": "history-table" },
    h("tr", {}, ["发生时间", "场所", "设备", "领域", "内容", "研判结论", "办结时间", "办结说明"].map((x) => h("th", {}, x))),
    d.items.map((a) => h("tr", { "data-testid": "history-row", "data-alert-id": a.id, class: "clickable",
      onclick: () => { location.hash = `#/alert/${encodeURIComponent(a.id)}`; } },
    h("td", {}, fmtTime(a.starts_at)), h("td", {}, `${a.site_name}（${a.township_name || ""}）`),
    h("td", {}, a.device_id),
    h("td", {}, zh(DOMAIN_ZH, a.domain, "其他领域")), h("td", {}, testTag(a), a.summary_zh || "报警"),
    h("td", {}, a.verdict ? VERDICT_ZH[a.verdict] || "—" : "—"), h("td", {}, fmtTime(a.closed_at)),
    h("td", {}, a.close_reason || "—"))))
    : h("p", { class: "muted", "data-testid": "history-empty" }, "没有符合条件的已办结报警");
  show(h("h2", {}, "报警历史（已办结）"), form,
    h("p", { class: "muted", "data-testid": "history-total" }, `共 ${d.total} 条，第 ${d.page} / ${pages} 页`),
    table,
    h("p", { class: "pager" },
      h("button", { class: "secondary", disabled: d.page <= 1, "data-testid": "history-prev",
        onclick: () => go(d.page - 1) }, "上一页"),
      " ",
      h("button", { class: "secondary", disabled: d.page >= pages, "data-testid": "history-next",
        onclick: () => go(d.page + 1) }, "下一页")));
}

VIEWS.history = { load: () => loadHistory(), allowed: (role) => role !== "vendor" };
