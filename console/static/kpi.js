/* 考核指标 (issue 15): the KPIs of a period (月/季/年 or 自定义) with 同比/环比 arrows, the ranking of
   镇街 and 部门, the vendor league (厂商排名) and the 通报 as text and CSV — all from GET /api/kpis and
   /api/bulletin (alerting/kpi). #/kpi/2026-11, #/kpi/2026-Q4, #/kpi/2026 or #/kpi/2026-11-03~2026-11-20
   open a period. Loaded after app.js (h, api, show, pct, dur, fmtDay, toast, state) and charts.js. */
"use strict";

const kpiForm = { kind: "month", year: "", month: "", quarter: "", from: "", to: "" };

/* the period of the form as the API's query (period=…, or since/until for 自定义) */
function kpiQuery() {
  const q = new URLSearchParams();
  const f = kpiForm;
  if (f.kind === "custom") {
    if (f.from) q.set("since", new Date(`${f.from}T00:00:00+08:00`).toISOString());
    if (f.to) q.set("until", new Date(new Date(`${f.to}T00:00:00+08:00`).getTime() + 86400000).toISOString());
  } else if (f.year) {
    q.set("period", f.kind === "year" ? f.year : f.kind === "quarter" ? `${f.year}-Q${f.quarter || 1}`
      : `${f.year}-${String(f.month || 1).padStart(2, "0")}`);
  }
  return q;
}
/* #/kpi/<arg> → the form */
function kpiFromArg(arg) {
  let m;
  if ((m = /^(\d{4})-(\d{2})$/.exec(arg))) Object.assign(kpiForm, { kind: "month", year: m[1], month: String(+m[2]) });
  else if ((m = /^(\d{4})-Q([1-4])$/.exec(arg))) Object.assign(kpiForm, { kind: "quarter", year: m[1], quarter: m[2] });
  else if ((m = /^(\d{4})$/.exec(arg))) Object.assign(kpiForm, { kind: "year", year: m[1] });
  else if ((m = /^(\d{4}-\d{2}-\d{2})~(\d{4}-\d{2}-\d{2})$/.exec(arg))) Object.assign(kpiForm, { kind: "custom", from: m[1], to: m[2] });
}
function kpiArg() {
  const q = kpiQuery();
  if (kpiForm.kind === "custom") return `${kpiForm.from}~${kpiForm.to}`;
  return q.get("period") || "";
}

/* 同比/环比 of one figure: ↑ +5.0个百分点 for a rate, ↑ +25.0% for a count; — when not comparable.
   ``better`` says which way is good (误报率 and 用时 and 逾期 down, the rest up). */
const KPI_RATES = new Set(["coverage_rate", "online_rate", "closure_rate", "false_alarm_rate", "rectification_rate"]);
const KPI_LOWER_BETTER = new Set(["false_alarm_rate", "ack_median_s", "arrive_median_s", "close_median_s",
  "overdue_alerts", "overdue_orders", "overdue_hazards"]);
function kpiChange(field, v, what) {
  if (v === null || v === undefined) return h("span", { class: "kpi-chg none" }, `${what} —`);
  const words = KPI_RATES.has(field) ? `${(v * 100 >= 0 ? "+" : "")}${(v * 100).toFixed(1)}个百分点`
    : `${(v * 100 >= 0 ? "+" : "")}${(v * 100).toFixed(1)}%`;
  const arrow = Math.abs(v) < 1e-9 ? "→" : v > 0 ? "↑" : "↓";
  const good = Math.abs(v) < 1e-9 ? "flat" : (v > 0) !== KPI_LOWER_BETTER.has(field) ? "good" : "bad";
  return h("span", { class: `kpi-chg ${good}`, "data-testid": `chg-${what === "同比" ? "yoy" : "mom"}-${field}` },
    `${what} ${arrow} ${words}`);
}
function kpiTile(row, field, title, value, id) {
  const c = (row.changes || {})[field] || {};
  return h("div", { class: "tile kpi-tile", "data-testid": id }, title, h("b", {}, value),
    h("div", { class: "kpi-chgs" }, kpiChange(field, c.yoy, "同比"), kpiChange(field, c.mom, "环比")));
}

function kpiPicker() {
  const f = kpiForm;
  const now = new Date(new Date().toLocaleString("en-US", { timeZone: "Asia/Shanghai" }));
  const years = [];
  for (let y = now.getFullYear(); y >= now.getFullYear() - 5; y--) years.push(String(y));
  const sel = (key, opts, label) => {
    const el = h("select", { "data-testid": `kpi-${key}`, "aria-label": label,
      onchange: () => { f[key] = el.value; if (key === "kind") draw(); } },
    opts.map(([v, words]) => h("option", { value: v, selected: f[key] === v ? "selected" : null }, words)));
    return el;
  };
  const box = h("span", { class: "kpi-when" });
  const draw = () => {
    const parts = [];
    if (f.kind === "custom") {
      const from = h("input", { type: "date", value: f.from, "data-testid": "kpi-from", "aria-label": "开始日期",
        oninput: () => { f.from = from.value; } });
      const to = h("input", { type: "date", value: f.to, "data-testid": "kpi-to", "aria-label": "结束日期",
        oninput: () => { f.to = to.value; } });
      parts.push(h("label", {}, "自 ", from), h("label", {}, " 至 ", to));
    } else {
      parts.push(sel("year", years.map((y) => [y, `${y}年`]), "年份"));
      if (f.kind === "month") parts.push(sel("month", Array.from({ length: 12 }, (_, i) => [String(i + 1), `${i + 1}月`]), "月份"));
      if (f.kind === "quarter") parts.push(sel("quarter", [["1", "第一季度"], ["2", "第二季度"], ["3", "第三季度"], ["4", "第四季度"]], "季度"));
    }
    box.replaceChildren(...parts);
  };
  draw();
  return h("form", { class: "board-filters kpi-picker", "data-testid": "kpi-picker",
    onsubmit: (ev) => {
      ev.preventDefault();
      if (f.kind === "custom" && (!f.from || !f.to)) { toast("请选择开始和结束日期"); return; }
      const arg = kpiArg();
      if (location.hash === `#/kpi/${arg}`) VIEWS.kpi.load(arg).catch((e) => toast(e.message));
      else location.hash = `#/kpi/${arg}`;
    } },
  h("label", {}, "统计周期 ", sel("kind", [["month", "月"], ["quarter", "季"], ["year", "年"], ["custom", "自定义"]], "周期")),
  box, h("button", { type: "submit", "data-testid": "kpi-apply" }, "查询"));
}

function kpiRanking(rows, title, id) {
  const ranked = rows.slice().sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9) || a.name.localeCompare(b.name, "zh"));
  const chg = (r, f) => kpiChange(f, ((r.changes || {})[f] || {}).yoy, "同比");
  return h("div", { class: "panel kpi-table" }, h("h3", {}, title),
    h("table", { "data-testid": id },
      h("tr", {}, ["排名", "名称", "综合得分", "覆盖率", "在线率", "处置率", "误报率", "整改率", "报警/办结", "逾期报警", "超时工单", "逾期隐患"]
        .map((x) => h("th", {}, x))),
      ranked.map((r) => h("tr", {},
        h("td", { class: "kpi-rank" }, r.rank ?? "—"), h("td", {}, r.name),
        h("td", {}, r.score === null ? "—" : (r.score * 100).toFixed(1)),
        h("td", {}, pct(r.coverage_rate), h("br"), chg(r, "coverage_rate")),
        h("td", {}, pct(r.online_rate), h("br"), chg(r, "online_rate")),
        h("td", {}, pct(r.closure_rate), h("br"), chg(r, "closure_rate")),
        h("td", {}, pct(r.false_alarm_rate), h("br"), chg(r, "false_alarm_rate")),
        h("td", {}, pct(r.rectification_rate), h("br"), chg(r, "rectification_rate")),
        h("td", {}, `${r.alerts}/${r.alerts_closed}`), h("td", {}, r.overdue_alerts),
        h("td", {}, r.overdue_orders), h("td", {}, r.overdue_hazards)))),
    h("p", { class: "muted" }, "综合得分：覆盖率、在线率、处置率、整改率的平均值减误报率；同比为与去年同期相比。"));
}

function kpiVendors(vendors) {
  return h("div", { class: "panel kpi-table" }, h("h3", {}, "厂商排名"),
    h("table", { "data-testid": "kpi-vendors" },
      h("tr", {}, ["排名", "厂商", "设备数", "在线率", "故障率", "误报率"].map((x) => h("th", {}, x))),
      vendors.map((v, i) => h("tr", {}, h("td", { class: "kpi-rank" }, i + 1), h("td", {}, v.name), h("td", {}, v.devices),
        h("td", {}, pct(v.online_rate)), h("td", {}, pct(v.fault_rate)), h("td", {}, pct(v.false_alarm_rate))))),
    h("p", { class: "muted" }, "按在线率从高到低排列；故障率＝报过故障的设备÷设备数，误报率＝误报÷已研判的报警。"));
}

async function loadKpiPage(arg) {
  if (arg) kpiFromArg(arg);
  const q = kpiQuery();
  const picker = kpiPicker();
  let k;
  try {
    k = await api("GET", `/api/kpis?${q}`);
  } catch (e) {
    // a period not begun yet or without data: said in words, the picker stays to choose another
    show(h("h2", {}, "考核指标"), picker, h("p", { class: "error", "data-testid": "kpi-error" }, e.message));
    return;
  }
  if (!kpiForm.year) {  // the default period (this month) shown in the picker
    const s = new Date(new Date(k.start).getTime() + 8 * 3600000);
    Object.assign(kpiForm, { year: String(s.getUTCFullYear()), month: String(s.getUTCMonth() + 1) });
  }
  const last = new Date(new Date(k.end).getTime() - 1000).toISOString();
  const compare = [k.previous ? `环比：${k.previous.label}` : "环比：上期无数据",
    k.year_ago ? `同比：${k.year_ago.label}` : "同比：去年同期无数据"].join("　");
  const nodes = [h("h2", {}, `考核指标 · ${k.label}`), kpiPicker(),
    h("p", { class: "muted", "data-testid": "kpi-span" }, `${fmtDay(k.start)} 至 ${fmtDay(last)}　${compare}`)];
  const total = k.rows.find((r) => r.dimension === "total");
  if (total) {
    nodes.push(h("div", { class: "tiles kpi-tiles", "data-testid": "kpi-tiles" },
      kpiTile(total, "coverage_rate", "安装覆盖率", `${pct(total.coverage_rate)}`, "kpi-coverage"),
      kpiTile(total, "online_rate", "设备在线率", pct(total.online_rate), "kpi-online"),
      kpiTile(total, "closure_rate", "报警处置率", pct(total.closure_rate), "kpi-closure"),
      kpiTile(total, "alerts", "报警/办结", `${total.alerts}/${total.alerts_closed}`, "kpi-alerts"),
      kpiTile(total, "false_alarm_rate", "误报率", pct(total.false_alarm_rate), "kpi-false"),
      kpiTile(total, "rectification_rate", "隐患整改率", pct(total.rectification_rate), "kpi-rect"),
      kpiTile(total, "ack_median_s", "确认中位用时", dur(total.ack_median_s), "kpi-ack"),
      kpiTile(total, "arrive_median_s", "到场中位用时", dur(total.arrive_median_s), "kpi-arrive"),
      kpiTile(total, "close_median_s", "办结中位用时", dur(total.close_median_s), "kpi-close"),
      kpiTile(total, "overdue_alerts", "逾期报警", total.overdue_alerts, "kpi-overdue-alerts"),
      kpiTile(total, "overdue_orders", "超时工单", total.overdue_orders, "kpi-overdue-orders"),
      kpiTile(total, "overdue_hazards", "逾期隐患", total.overdue_hazards, "kpi-overdue-hazards")));
    nodes.push(h("p", { class: "muted" },
      `研判：真实 ${total.real} 起、误报 ${total.false} 起、测试 ${total.test} 起、故障 ${total.fault} 起；`
      + `确认 90%用时 ${dur(total.ack_p90_s)}，到场 90%用时 ${dur(total.arrive_p90_s)}，办结 90%用时 ${dur(total.close_p90_s)}。`
      + "处置率＝办结÷报警；误报率＝误报÷已研判的报警；办结用时不计误报和测试。"));
  }
  const towns = k.rows.filter((r) => r.dimension === "township");
  if (towns.length) {
    nodes.push(h("div", { class: "panel" }, h("h3", {}, "各镇街报警处置率"), bars(towns)));
    nodes.push(kpiRanking(towns, "镇街排名", "kpi-rank-township"));
  }
  const depts = k.rows.filter((r) => r.dimension === "department");
  if (depts.length) nodes.push(kpiRanking(depts, "部门排名", "kpi-rank-department"));
  if (k.vendors && k.vendors.length) nodes.push(kpiVendors(k.vendors));
  const text = await api("GET", `/api/bulletin?${q}`);
  const csv = new URLSearchParams(q); csv.set("format", "csv");
  nodes.push(h("div", { class: "panel" }, h("h3", {}, "通报"),
    h("p", {}, h("a", { href: `/api/bulletin?${csv}`, download: "考核指标.csv", "data-testid": "kpi-csv" }, "下载表格文件")),
    h("div", { class: "bulletin", "data-testid": "bulletin" }, text)));
  show(...nodes);
}

VIEWS.kpi = {
  load: (arg) => loadKpiPage(arg),
  allowed: (role) => ["centre", "admin", "township", "department"].includes(role),
};
