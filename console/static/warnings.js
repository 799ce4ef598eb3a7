/* 区域预警 (issue 15 item 3): the 三色 area warnings in force by 片 (镇街), 线 (行业领域) and 点 (重点点位),
   each with its reasons and its history (发布、升级、降级、解除, who was told), from GET /api/area-warnings;
   the centre's form 登记生产安全事故 (POST /api/accidents), counted at the next evaluation; and the
   mark on the duty board (warnBoardMark, called by board.js). Loaded after app.js and forms.js. */
"use strict";

const WARN_SCOPES = [["township", "片区（镇街）"], ["industry", "行业领域"], ["site", "重点点位"]];
const WARN_LEVELS = [["red", "红色"], ["orange", "橙色"], ["yellow", "黄色"]];
const WARN_ACC_LEVELS = [["general", "一般事故（死亡1至2人或无死亡）"], ["larger", "较大事故（死亡3至9人）"],
  ["major", "重大事故（死亡10至29人）"], ["especially_major", "特别重大事故（死亡30人以上）"]];
const WARN_DOMAINS = [["gas", "燃气"], ["fire", "消防"], ["elevator", "电梯（特种设备）"], ["hazchem", "危险化学品"],
  ["power", "电力"], ["traffic", "道路交通"], ["water", "水利"], ["forest_fire", "森林防火"]];

function warnCard(w) {
  const hist = h("details", { class: "warn-history", "data-testid": "warn-history" },
    h("summary", {}, `变化记录（${w.history.length}）`),
    h("ul", {}, w.history.map((x) => h("li", {},
      `${fmtTime(x.at)} ${x.action_zh}`,
      x.action === "lift" ? `（原为${x.from_level_zh}）`
        : x.from_level_zh ? `：${x.from_level_zh}→${x.to_level_zh}` : `：${x.to_level_zh}`,
      ` · ${x.actor_zh}`,
      x.told.length ? ` · 已通知：${x.told.join("、")}` : ["lower", "lift"].includes(x.action) ? " · 不发通知" : ""))));
  return h("div", { class: `warn-card ${w.level}${w.lifted_at ? " lifted" : ""}`, "data-testid": "warn-card",
    "data-scope": w.scope, "data-level": w.level },
  h("div", { class: "warn-head" }, h("span", { class: `tag sev-${w.level}` }, `${w.level_zh}预警`), " ",
    h("b", {}, w.name),
    w.scope === "site" && w.township_name ? h("span", { class: "muted" }, ` · ${w.township_name}`) : null),
  h("ul", { class: "warn-reasons", "data-testid": "warn-reasons" }, w.reasons.map((r) => h("li", {}, r))),
  h("div", { class: "meta" }, w.lifted_at ? `已于${fmtTime(w.lifted_at)}解除` : `发布于${fmtTime(w.since)}`,
    !w.lifted_at && w.level_since !== w.since ? `，${fmtTime(w.level_since)}起为${w.level_zh}` : "",
    `，最近研判${fmtTime(w.evaluated_at)}`),
  hist);
}

function warnAccidentForm(reload) {
  const at = h("input", { type: "datetime-local", "data-testid": "acc-at",
    value: cstInputValue(new Date()) });
  const town = h("select", { "data-testid": "acc-town" }, h("option", { value: "" }, "请选择镇街"));
  const site = h("select", { "data-testid": "acc-site" }, h("option", { value: "" }, "不在登记场所（如道路、工地）"));
  const options = (pairs) => pairs.map(([v, w]) => h("option", { value: v }, w));
  const domain = h("select", { "data-testid": "acc-domain" }, options(WARN_DOMAINS));
  const level = h("select", { "data-testid": "acc-level" }, options(WARN_ACC_LEVELS));
  const title = h("input", { "data-testid": "acc-title", maxlength: "100", placeholder: "例如：某饭店燃气泄漏闪爆" });
  const deaths = h("input", { type: "number", min: "0", value: "0", "data-testid": "acc-deaths" });
  const injuries = h("input", { type: "number", min: "0", value: "0", "data-testid": "acc-injuries" });
  const err = h("p", { class: "error", "data-testid": "acc-error", role: "alert" });
  api("GET", "/api/townships").then((d) => {
    const list = Array.isArray(d) ? d : (d.items || []);
    for (const t of list) town.append(h("option", { value: t.id }, t.name));
  }).catch(() => {});
  town.addEventListener("change", async () => {
    site.replaceChildren(h("option", { value: "" }, "不在登记场所（如道路、工地）"));
    if (!town.value) return;
    try {
      const d = await api("GET", `/api/sites?township_id=${encodeURIComponent(town.value)}&page_size=500`);
      for (const s of d.items || []) site.append(h("option", { value: s.id }, s.name));
    } catch (e) { /* the site stays optional */ }
  });
  const add = h("button", { "data-testid": "acc-submit", onclick: async () => {
    if (!town.value || !title.value.trim()) { err.textContent = "请选择镇街并填写事故名称"; return; }
    const body = { occurred_at: cstIso(at.value), township_id: town.value, site_id: site.value || null,
      domain: domain.value, level: level.value, title: title.value.trim(),
      deaths: Number(deaths.value || 0), injuries: Number(injuries.value || 0) };
    if (await formAct(() => api("POST", "/api/accidents", body), "事故已登记，下次区域预警研判时计入", err)) reload();
  } }, "登记事故");
  return h("details", { class: "panel", "data-testid": "acc-form" }, h("summary", {}, "登记生产安全事故"),
    h("div", { class: "form" }, formField("发生时间", at), formField("镇街", town), formField("场所", site),
      formField("行业领域", domain), formField("事故等级", level, "按《生产安全事故报告和调查处理条例》"),
      formField("事故名称", title), formField("死亡人数", deaths), formField("受伤人数", injuries)),
    h("div", { class: "form-actions" }, add), err);
}

async function loadWarnings(arg) {
  const all = arg === "all";
  const d = await api("GET", `/api/area-warnings${all ? "?all=true" : ""}`);
  const items = d.items || [];
  const live = items.filter((w) => !w.lifted_at);
  const tiles = h("div", { class: "counts", "data-testid": "warn-counts" }, WARN_LEVELS.map(([lv, zh]) =>
    h("div", { class: `count sev-${lv}`, "data-testid": `warn-count-${lv}` },
      h("b", {}, live.filter((w) => w.level === lv).length), `${zh}预警`)));
  const toggle = h("a", { href: all ? "#/warnings" : "#/warnings/all", "data-testid": "warn-toggle" },
    all ? "只看生效中的预警" : "同时显示已解除的预警");
  const cols = WARN_SCOPES.map(([scope, zh]) => {
    const mine = items.filter((w) => w.scope === scope);
    return h("div", { class: "panel warn-col", "data-testid": `warn-col-${scope}` },
      h("h3", {}, `${zh} · ${mine.filter((w) => !w.lifted_at).length} 条`),
      mine.length ? mine.map(warnCard) : h("p", { class: "muted" }, "无预警"));
  });
  const centre = ["centre", "admin"].includes(state.me.role);
  showAll(h("h2", {}, "区域预警（三色）"),
    h("p", { class: "muted" }, "按片（镇街）、线（行业领域）、点（重点点位）汇总报警研判、隐患和事故情况，按规则发布红、橙、黄三色预警；"
      + "新发布或升级时通知属地值班、行业主管部门或企业和网格员。 ", toggle),
    tiles, h("div", { class: "warn-grid" }, cols), centre ? warnAccidentForm(() => loadWarnings(arg)) : null);
}

/* the duty board's mark: the red and orange area warnings in force, one line above the columns */
async function warnBoardMark() {
  let d;
  try { d = await api("GET", "/api/area-warnings"); } catch (e) { return null; }
  const order = { township: 0, industry: 1, site: 2 };
  const grave = (d.items || []).filter((w) => w.level !== "yellow")
    .sort((a, b) => (a.level === b.level ? order[a.scope] - order[b.scope] : a.level === "red" ? -1 : 1));
  if (!grave.length) return null;
  return h("a", { class: "warn-mark", href: "#/warnings", "data-testid": "board-warn-mark" },
    `区域预警：${grave.slice(0, 3).map((w) => `${w.level_zh}·${w.name}`).join("、")}`
      + (grave.length > 3 ? `等${grave.length}处` : "") + "（查看）");
}

VIEWS.warnings = { load: (arg) => loadWarnings(arg),
  allowed: (role) => !["vendor", "maintainer"].includes(role) };
