/* 通报 (issue 15): the official bulletin of a month, a quarter or a year — its title, overview with
   the headline figures and their 同比, 存在问题 and 下一步工作 as composed by alerting/bulletin (GET
   /api/bulletin/outline), and its files (Word, PDF with charts, Excel) from /api/bulletin/files/<fmt>.
   #/bulletin/2026-11, #/bulletin/2026-Q4 or #/bulletin/2026 open a period (China time). Loaded after
   app.js (h, api, show, toast, state). */
"use strict";

const bulletinForm = { kind: "month", year: "", month: "", quarter: "" };

function bulletinPeriod() {
  const f = bulletinForm;
  if (f.kind === "year") return f.year;
  if (f.kind === "quarter") return `${f.year}-Q${f.quarter || 1}`;
  return `${f.year}-${String(f.month || 1).padStart(2, "0")}`;
}
function bulletinFromArg(arg) {
  let m;
  const f = bulletinForm;
  if ((m = /^(\d{4})-(\d{2})$/.exec(arg))) Object.assign(f, { kind: "month", year: m[1], month: String(+m[2]) });
  else if ((m = /^(\d{4})-Q([1-4])$/.exec(arg))) Object.assign(f, { kind: "quarter", year: m[1], quarter: m[2] });
  else if ((m = /^(\d{4})$/.exec(arg))) Object.assign(f, { kind: "year", year: m[1] });
  else {
    // default: last month in China time (the month a bulletin is usually made for)
    const now = new Date(new Date().toLocaleString("en-US", { timeZone: "Asia/Shanghai" }));
    const last = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    Object.assign(f, { kind: "month", year: String(last.getFullYear()), month: String(last.getMonth() + 1) });
  }
}

function bulletinPicker() {
  const f = bulletinForm;
  const now = new Date(new Date().toLocaleString("en-US", { timeZone: "Asia/Shanghai" }));
  const years = [];
  for (let y = now.getFullYear(); y >= now.getFullYear() - 5; y--) years.push(String(y));
  const box = h("span", { class: "kpi-when" });
  const sel = (key, opts, label) => {
    const el = h("select", { "data-testid": `bulletin-${key}`, "aria-label": label,
      onchange: () => { f[key] = el.value; if (key === "kind") draw(); } },
    opts.map(([v, words]) => h("option", { value: v, selected: f[key] === v ? "selected" : null }, words)));
    return el;
  };
  const draw = () => {
    const parts = [sel("year", years.map((y) => [y, `${y}年`]), "年份")];
    if (f.kind === "month") parts.push(sel("month", Array.from({ length: 12 }, (_, i) => [String(i + 1), `${i + 1}月`]), "月份"));
    if (f.kind === "quarter") parts.push(sel("quarter", [["1", "第一季度"], ["2", "第二季度"], ["3", "第三季度"], ["4", "第四季度"]], "季度"));
    box.replaceChildren(...parts);
  };
  draw();
  return h("form", { class: "board-filters kpi-picker", "data-testid": "bulletin-picker",
    onsubmit: (ev) => {
      ev.preventDefault();
      const arg = bulletinPeriod();
      if (location.hash === `#/bulletin/${arg}`) VIEWS.bulletin.load(arg).catch((e) => toast(e.message));
      else location.hash = `#/bulletin/${arg}`;
    } },
  h("label", {}, "通报周期 ", sel("kind", [["month", "月度"], ["quarter", "季度"], ["year", "年度"]], "周期")),
  box, h("button", { type: "submit", "data-testid": "bulletin-apply" }, "生成"));
}

function bulletinDownloads(period) {
  const q = `period=${encodeURIComponent(period)}`;
  const link = (fmt, words) => h("a", { class: "button", href: `/api/bulletin/files/${fmt}?${q}`,
    download: "", "data-testid": `bulletin-${fmt}` }, words);
  return h("div", { class: "bulletin-files", "data-testid": "bulletin-files" },
    link("docx", "下载通报文档"), link("pdf", "下载带图表的通报"), link("xlsx", "下载通报表格"));
}

async function loadBulletinPage(arg) {
  bulletinFromArg(arg);
  const period = bulletinPeriod();
  const picker = bulletinPicker();
  show(h("h2", {}, "通报"), picker, h("p", { class: "muted" }, "正在生成……"));
  let doc;
  try {
    doc = await api("GET", `/api/bulletin/outline?period=${encodeURIComponent(period)}`);
  } catch (e) {
    show(h("h2", {}, "通报"), picker, h("p", { class: "error", "data-testid": "bulletin-error" }, e.message));
    return;
  }
  const secs = doc.sections.map((s) => h("section", { class: "bulletin-sec" }, h("h3", {}, s.heading),
    s.paragraphs.map((p) => h("p", {}, p)),
    s.tables.length ? h("p", { class: "muted" }, `表格：${s.tables.join("、")}（见下载文件）`) : null));
  show(h("h2", {}, "通报"), picker, bulletinDownloads(period),
    h("article", { class: "panel bulletin-doc", "data-testid": "bulletin-doc" },
      h("h3", { class: "bulletin-title", "data-testid": "bulletin-title" }, doc.title),
      h("p", { class: "bulletin-period" }, doc.period),
      h("p", { "data-testid": "bulletin-opening" }, doc.opening), secs));
}

VIEWS.bulletin = {
  load: (arg) => loadBulletinPage(arg),
  allowed: (role) => ["centre", "admin", "township", "department"].includes(role),
};
