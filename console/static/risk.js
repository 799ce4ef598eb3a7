/* 风险分级 (issue 15 item 2): 企业风险分级 红橙黄蓝 of the sites the reader sees, from GET /api/risk/sites —
   the count per grade (click to filter), filters by grade, 镇街 and 行业, each site with its grade, score
   and the reasons of its grade ("餐饮 +20；近30天真实报警 2 起 +30"), and its 变化记录 on request
   (GET /api/risk/sites/{id}/history). Loaded after app.js (h, api, show, toast, fmtTime, state). */
"use strict";

const RISK_GRADES = [["red", "红", "重大风险"], ["orange", "橙", "较大风险"], ["yellow", "黄", "一般风险"],
  ["blue", "蓝", "低风险"]];
const riskFilter = { grade: "", township: "", industry: "" };

function riskSelect(key, first, opts, reload) {
  const pick = () => { riskFilter[key] = sel.value; reload(); };
  const sel = h("select", { "data-testid": `risk-${key}`, onchange: pick },
    h("option", { value: "" }, first),
    opts.map(([v, words]) => h("option",
      { value: v, selected: riskFilter[key] === v ? "selected" : null }, words)));
  return sel;
}

async function riskHistory(item, box) {
  if (box.dataset.loaded) return;
  try {
    const d = await api("GET", `/api/risk/sites/${encodeURIComponent(item.site_id)}/history`);
    box.dataset.loaded = "1";
    box.append(h("ul", {}, d.items.map((x) => h("li", {},
      `${fmtTime(x.at)} ${x.from_zh}→${x.to_zh}（${x.score} 分，${x.by}）`))));
  } catch (e) { toast(e.message); }
}

function riskRow(item) {
  const box = h("details", { class: "risk-history", "data-testid": "risk-history",
    ontoggle: () => { if (box.open) riskHistory(item, box); } }, h("summary", {}, "变化记录"));
  return h("div", { class: `risk-card ${item.grade}`, "data-testid": "risk-card", "data-grade": item.grade },
    h("div", { class: "risk-head" },
      h("span", { class: `tag sev-${item.grade}` }, `${item.grade_zh} · ${item.grade_name}`), " ",
      h("b", {}, item.site_name), h("span", { class: "risk-score" }, `${item.score} 分`)),
    h("div", { class: "muted" }, [item.township_name, item.industry].filter(Boolean).join(" · ")),
    h("div", { class: "risk-reasons", "data-testid": "risk-reasons" },
      item.reasons.length ? item.reasons.join("；") : "无加分因素"),
    h("div", { class: "meta" }, `${fmtTime(item.since)}起为${item.grade_zh}色 · 最近评定${fmtTime(item.graded_at)}`),
    box);
}

async function loadRisk() {
  const all = await api("GET", "/api/risk/sites");
  const towns = [...new Map(all.items.map((i) => [i.township_id, i.township_name || "未知镇街"])).entries()]
    .sort((a, b) => a[1].localeCompare(b[1], "zh"));
  const industries = [...new Set(all.items.map((i) => i.industry).filter(Boolean))]
    .sort((a, b) => a.localeCompare(b, "zh"));
  const shown = all.items.filter((i) => (!riskFilter.grade || i.grade === riskFilter.grade)
    && (!riskFilter.township || i.township_id === riskFilter.township)
    && (!riskFilter.industry || i.industry === riskFilter.industry));
  const counts = h("div", { class: "risk-counts", "data-testid": "risk-counts" },
    RISK_GRADES.map(([g, zh, name]) => h("button", {
      class: `risk-count ${g}${riskFilter.grade === g ? " on" : ""}`, "data-testid": `risk-count-${g}`,
      onclick: () => { riskFilter.grade = riskFilter.grade === g ? "" : g; loadRisk(); } },
    h("b", {}, String(all.counts[g] || 0)), ` 家 ${zh}（${name}）`)));
  show(h("h2", {}, "企业风险分级"),
    h("p", { class: "muted" }, all.graded_at
      ? `按固有风险（行业、重点场所、用气、人员密集程度）和动态风险（报警频次、真实报警、隐患及逾期整改）评分定级，`
        + `最近评定于${fmtTime(all.graded_at)}。` : "尚未评定：风险分级由告警服务定时评定。"),
    counts,
    h("div", { class: "filters" },
      riskSelect("grade", "全部等级", RISK_GRADES.map(([g, zh, name]) => [g, `${zh}（${name}）`]), loadRisk), " ",
      riskSelect("township", "全部镇街", towns, loadRisk), " ",
      riskSelect("industry", "全部行业", industries.map((x) => [x, x]), loadRisk)),
    shown.length ? h("div", { class: "risk-list", "data-testid": "risk-list" }, shown.map(riskRow))
      : h("p", { class: "muted" }, "没有符合条件的场所"));
}

VIEWS.risk = { load: () => loadRisk(),
  allowed: (role) => ["centre", "admin", "township", "department"].includes(role) };
