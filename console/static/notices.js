/* 通知单台账 (issue 14): the 四单 register per unit, from GET /api/notices. The centre sees every
   unit's notices (filters: level, state) and 办结s a unit's part once it replied; a township or a
   department sees its own and signs (签收) and replies (回复). Loaded after app.js (it uses h, api,
   show, toast, fmtTime). Errors are the server's Chinese words. */
"use strict";

const NOTICE_LEVEL_OPTS = [["", "全部通知单"], ["reminder", "工作提醒单"], ["warning", "风险警示单"],
  ["supervision", "问题督办单"], ["accountability", "问责建议单"]];
const NOTICE_STATE_OPTS = [["", "全部状态"], ["unsigned", "未签收"], ["unreplied", "未回复"], ["replied", "已回复"],
  ["closed", "已办结"], ["overdue", "逾期未回复"]];
const noticeFilter = { level: "", state: "" };

function noticeSelect(opts, key) {
  const sel = h("select", { "data-testid": `notices-${key}`, onchange: () => { noticeFilter[key] = sel.value; loadNotices(); } },
    opts.map(([v, words]) => h("option", { value: v, selected: noticeFilter[key] === v ? "selected" : null }, words)));
  return sel;
}

async function noticeAct(path, body, done) {
  try {
    const r = await api("POST", path, body);
    toast(r.result || "已完成");
    if (done) done();
    loadNotices();
  } catch (e) { toast(e.message); }
}

function noticeActions(n, role) {
  const unit = role === "township" || role === "department";
  const base = `/api/notices/${n.notice_id}`;
  if (n.closed_at) return h("span", { class: "muted" }, `${fmtTime(n.closed_at)} 办结`);
  if (unit) {
    const text = h("input", { "data-testid": "notice-reply-text", placeholder: "回复：处置措施、责任人、整改结果",
      maxlength: "2000", size: "24" });
    return h("span", {},
      n.signed_at ? null : h("button", { class: "secondary", "data-testid": "notice-sign",
        onclick: () => noticeAct(`${base}/sign`) }, "签收"), " ",
      text, " ", h("button", { "data-testid": "notice-reply", onclick: () => {
        if (!text.value.trim()) { toast("请填写回复内容"); return; }
        noticeAct(`${base}/reply`, { reply: text.value.trim() });
      } }, n.replied_at ? "补充回复" : "回复"));
  }
  if (!n.replied_at && (n.unit_kind === "township" || n.unit_kind === "department")) {
    return h("span", { class: "muted" }, "待单位回复");
  }
  const note = h("input", { "data-testid": "notice-close-note", placeholder: "办结意见", maxlength: "2000", size: "14" });
  return h("span", {}, note, " ", h("button", { "data-testid": "notice-close", onclick: () => {
    if (!note.value.trim()) { toast("请填写办结意见"); return; }
    noticeAct(`${base}/close`, { unit: `${n.unit_kind}:${n.unit_id}`, note: note.value.trim() });
  } }, "办结"));
}

async function loadNotices() {
  const role = state.me.role;
  const q = new URLSearchParams({ page_size: "200" });
  for (const [k, v] of Object.entries(noticeFilter)) if (v) q.set(k, v);
  const d = await api("GET", `/api/notices?${q}`);
  const mine = role === "township" || role === "department";
  const record = (n) => n.level === "accountability" && n.concerning.length
    ? h("div", { class: "muted" }, `涉及：${n.concerning.map((u) => u.name).join("、")}`) : null;
  show(h("h2", {}, `通知单台账 · ${d.total} 条`),
    h("p", { class: "muted" }, mine ? "本单位收到的四单：请签收，并在期限前回复处置情况。"
      : "区安委办下发的四单，按接收单位逐条登记签收、回复和办结；问责建议单为内部记录。"),
    h("div", { class: "filters" }, noticeSelect(NOTICE_LEVEL_OPTS, "level"), " ", noticeSelect(NOTICE_STATE_OPTS, "state")),
    d.items.length ? h("table", { "data-testid": "notices" },
      h("tr", {}, ["通知单", "接收单位", "场所与报警", "签发", "期限", "状态", "回复", "操作"].map((x) => h("th", {}, x))),
      d.items.map((n) => h("tr", { "data-testid": "notice-row", "data-notice-id": String(n.notice_id) },
        h("td", {}, `${n.level_zh}（第${n.notice_id}号）`, record(n)),
        h("td", {}, `${n.unit_name}（${n.unit_kind_zh}）`),
        h("td", {}, h("a", { href: `#/alert/${encodeURIComponent(n.alert_id)}` }, n.site_name)),
        h("td", {}, n.issued_by, h("div", { class: "muted" }, fmtTime(n.issued_at))),
        h("td", {}, fmtTime(n.deadline)),
        h("td", {}, n.state_zh),
        h("td", {}, n.reply || "—", n.replied_at ? h("div", { class: "muted" }, fmtTime(n.replied_at)) : null),
        h("td", {}, noticeActions(n, role)))))
      : h("p", { class: "muted" }, "暂无通知单"));
}
