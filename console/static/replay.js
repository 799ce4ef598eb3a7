/* 模拟回放 (issue 15): replay a stored period through a proposed threshold (per vendor model) and/or
   proposed routes, and see the difference against the live configuration — alerts added and
   removed, notifications and SMS per role — with the period's 误报率 beside it. Reads only
   (POST /api/replay). Centre and admin. Loaded after app.js (h, api, show, toast, fmtTime). */
"use strict";

const REPLAY_LEVELS = { reminder: "工作提醒单", warning: "风险警示单", supervision: "问题督办单", accountability: "问责建议单" };
const REPLAY_VERDICT = { real: "真实", false: "误报", test: "测试", fault: "故障" };
const replayForm = { opts: null, model: "", params: {}, text: "", routes: "", start: "", end: "", result: null };
/* the set points a vendor model's proposal may change, per domain (detectors/config.py, docs/detectors.md) */
const REPLAY_PARAMS = {
  gas: [["low_lel", "低报阈值（%LEL）", "如 25"], ["high_lel", "高报阈值（%LEL）", "如 50"],
    ["confirm_n", "连续确认次数", "如 3"]],
  elevator: [["trapped_s", "困人判定时长（秒）", "如 60"], ["frequent_faults_n", "频繁故障次数（24小时）", "如 4"]],
  fire: [["confirm", "火警确认方式", ""]],
};
const REPLAY_CONFIRM = [["", "不改"], ["none", "单个探测器报警即报"], ["two_in_zone", "同一防火分区两个探测器报警"]];
function replayDomain(model) {
  const m = (replayForm.opts.models || []).find((x) => x.model === model);
  return m ? m.domain : "";
}

/* times are typed as China time, 年-月-日 时:分 (a datetime-local field would show the browser's
   own locale, AM/PM); the API takes ISO times with an offset */
function replayIso(text, what) {
  const m = /^\s*(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}):(\d{2}))?\s*$/.exec(text || "");
  if (!m) throw new Error(`${what}格式应为 年-月-日 时:分，如 2026-11-03 09:00`);
  return `${m[1]}T${(m[2] || "0").padStart(2, "0")}:${m[3] || "00"}:00+08:00`;
}
function replayLocal(d) {
  const cst = new Date(d.getTime() + 8 * 3600e3);
  return cst.toISOString().slice(0, 16).replace("T", " ");
}
function replayDefaults() {
  const now = new Date();
  const start = new Date(now.getTime() - 7 * 86400e3);
  start.setUTCHours(16, 0, 0, 0);  // 00:00 China time, a week ago
  const end = new Date(now.getTime());
  end.setUTCHours(16, 0, 0, 0);
  if (end > now) end.setTime(end.getTime() - 86400e3);
  return [replayLocal(start), replayLocal(end)];
}

/* a proposed threshold for one model, as a block of detectors.yaml appended to the live file */
function replayProposal() {
  const f = replayForm;
  const domain = replayDomain(f.model);
  const set = (REPLAY_PARAMS[domain] || []).filter(([k]) => String(f.params[k] || "").trim() !== "");
  if (!f.model || !set.length) return f.text;
  const lines = set.map(([k]) => `      ${k}: ${k === "confirm" ? f.params[k] : Number(f.params[k])}`);
  const live = f.text.trim() ? f.text : f.opts.detectors_yaml;
  if (live.includes(`\n  ${f.model}:`) || live.includes(`\n  ${JSON.stringify(f.model)}:`)) {
    throw new Error("该型号在阈值文件中已有设置：请在“高级”中直接修改该型号的阈值");
  }
  const block = `  ${JSON.stringify(f.model)}:\n    ${domain}:\n${lines.join("\n")}\n`;
  if (/^models:\s*$/m.test(live)) return live.replace(/^models:\s*$/m, `models:\n${block}`);
  return `${live}\nmodels:\n${block}`;
}

function replaySigned(n) { return n > 0 ? `+${n}` : String(n); }

function replayAlertTable(rows, testid) {
  if (!rows.length) return h("p", { class: "muted" }, "无");
  return h("div", { class: "replay-scroll" }, h("table", { "data-testid": testid },
    h("tr", {}, ["设备", "型号", "场所", "类型", "级别", "开始时间", "恢复时间", "研判", "通知对象"].map((x) => h("th", {}, x))),
    rows.map((a) => h("tr", {},
      h("td", {}, a.device_id), h("td", {}, a.model || "—"), h("td", {}, a.site_name), h("td", {}, a.kind_zh),
      h("td", {}, h("span", { class: `sev ${a.severity}` }, a.severity_zh)), h("td", {}, fmtTime(a.starts_at)),
      h("td", {}, a.ends_at ? fmtTime(a.ends_at) : "未恢复"),
      h("td", {}, a.verdict ? REPLAY_VERDICT[a.verdict] || a.verdict : "未研判"),
      h("td", {}, a.roles_zh.join("、") || "—")))));
}

function replayResult(r) {
  const rate = r.false_alarm_rate === null ? "—" : (r.false_alarm_rate * 100).toFixed(1) + "%";
  const sum = (label, a, b) => h("tr", {}, h("td", {}, label), h("td", { class: "num" }, a), h("td", { class: "num" }, b),
    h("td", { class: "num" }, replaySigned(b - a)));
  const roles = r.roles.filter((x) => x.live || x.proposed || x.held_live || x.held_proposed);
  const held = roles.some((x) => x.held_live || x.held_proposed);
  return h("section", { "data-testid": "replay-result" },
    h("h3", {}, "回放结果"),
    h("p", { class: "muted" }, `回放数据 ${r.rows} 条（读数和设备上报），未写入任何实时数据；现行配置回放的告警中 ${r.live_in_store}/${r.live_alerts} 起与已存告警一致。`
      + "四单按已存告警的实际确认和处置计，新增告警按无人确认计；不模拟静默。"),
    h("table", { "data-testid": "replay-summary" },
      h("tr", {}, ["指标", "现行配置", "拟议配置", "差异"].map((x) => h("th", {}, x))),
      sum("告警（起）", r.live_alerts, r.proposed_alerts), sum("通知消息（次）", r.messages_live, r.messages_proposed),
      sum("短信（条）", r.sms_live, r.sms_proposed),
      Object.entries(REPLAY_LEVELS).filter(([lv]) => r.notices_live[lv] || r.notices_proposed[lv])
        .map(([lv, words]) => sum(`${words}（份）`, r.notices_live[lv], r.notices_proposed[lv]))),
    h("p", { "data-testid": "replay-false-rate" },
      h("strong", {}, `本时段误报率 ${rate}`),
      `（已存告警 ${r.stored_alerts} 起，已研判 ${r.judged} 起，误报 ${r.false_alarms} 起）；减少的 ${r.removed.length} 起告警中，`
      + `已研判 ${r.removed_judged} 起，研判为误报 ${r.removed_false} 起。`),
    r.models.length ? [h("h3", {}, "按厂商型号"), h("div", { class: "replay-scroll" }, h("table", { "data-testid": "replay-models" },
      h("tr", {}, ["厂商", "型号", "现行告警", "拟议告警", "差异", "已存告警", "已研判", "误报", "误报率"].map((x) => h("th", {}, x))),
      r.models.map((m) => h("tr", {}, h("td", {}, m.vendor || "未登记"), h("td", {}, m.model || "—"),
        h("td", { class: "num" }, m.live), h("td", { class: "num" }, m.proposed), h("td", { class: "num" }, replaySigned(m.proposed - m.live)),
        h("td", { class: "num" }, m.stored), h("td", { class: "num" }, m.judged), h("td", { class: "num" }, m.false_alarms),
        h("td", { class: "num" }, m.false_alarm_rate === null ? "—" : (m.false_alarm_rate * 100).toFixed(1) + "%")))))] : null,
    h("h3", {}, `新增告警 ${r.added.length} 起`), replayAlertTable(r.added, "replay-added"),
    h("h3", {}, `减少告警 ${r.removed.length} 起`), replayAlertTable(r.removed, "replay-removed"),
    h("h3", {}, "按角色的通知（条，括号内为短信）"),
    roles.length ? h("table", { "data-testid": "replay-roles" },
      h("tr", {}, ["角色", "现行", "拟议", "差异", held ? "夜间暂缓（现行 → 拟议）" : null].map((x) => x && h("th", {}, x))),
      roles.map((x) => h("tr", {}, h("td", {}, x.role_zh), h("td", { class: "num" }, `${x.live}（${x.sms_live}）`),
        h("td", { class: "num" }, `${x.proposed}（${x.sms_proposed}）`),
        h("td", { class: "num" }, replaySigned(x.proposed - x.live)),
        held ? h("td", { class: "num" }, `${x.held_live} → ${x.held_proposed}`) : null)))
      : h("p", { class: "muted" }, "两种配置均无通知"),
    held ? h("p", { class: "muted" }, "夜间免扰时段内的短信和电话暂缓，次日晨报汇总发送（回放不计入短信条数）。") : null);
}

function replayProblems(e) {
  const lines = (e.data && e.data.problems) || [];
  return h("div", { class: "error", "data-testid": "replay-error", role: "alert" }, e.message,
    lines.length ? h("ul", { "data-verbatim": "" }, lines.map((l) => h("li", {}, h("code", {}, l)))) : null);
}

async function loadReplay() {
  const f = replayForm;
  if (!f.opts) f.opts = await api("GET", "/api/replay/options");
  if (!f.start) [f.start, f.end] = replayDefaults();
  const out = h("div", { "data-testid": "replay-out" }, f.result ? replayResult(f.result) : null);
  const bind = (key, el) => { el.addEventListener("input", () => { f[key] = el.value; }); return el; };
  const model = bind("model", h("select", { "data-testid": "replay-model" }, h("option", { value: "" }, "全部设备"),
    f.opts.models.map((m) => h("option", { value: m.model, selected: f.model === m.model ? "selected" : null },
      `${m.vendor_name} · ${m.model}（${m.devices}台）`))));
  const params = h("span", { "data-testid": "replay-params" });
  const drawParams = () => {
    const fields = (REPLAY_PARAMS[replayDomain(f.model)] || []).map(([k, words, hint]) => {
      const el = k === "confirm"
        ? h("select", { "data-testid": `replay-param-${k}` }, REPLAY_CONFIRM.map(([v, w]) =>
          h("option", { value: v, selected: (f.params[k] || "") === v ? "selected" : null }, w)))
        : h("input", { type: "number", min: "0", step: "any", size: "6", value: f.params[k] || "",
          "data-testid": `replay-param-${k}`, placeholder: hint });
      el.addEventListener(k === "confirm" ? "change" : "input", () => { f.params[k] = el.value; });
      return h("label", {}, `拟议${words} `, el);
    });
    params.replaceChildren(...(fields.length ? fields.flatMap((x) => [x, " "])
      : [h("span", { class: "muted" }, f.model ? "" : "选择厂商型号后可填写该型号的拟议阈值")]));
  };
  model.addEventListener("change", () => { f.model = model.value; f.params = {}; drawParams(); });
  drawParams();
  const text = bind("text", h("textarea", { rows: "8", cols: "60", "data-testid": "replay-detectors", spellcheck: "false",
    placeholder: "留空：使用现行阈值；也可粘贴或上传完整的阈值文件" }, f.text));
  const routes = bind("routes", h("textarea", { rows: "4", cols: "60", "data-testid": "replay-routes", spellcheck: "false",
    placeholder: "留空：使用现行路由；也可粘贴或上传拟议的路由文件" }, f.routes));
  const upload = (area, key) => h("input", { type: "file", accept: ".yaml,.yml,text/yaml", onchange: async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    area.value = await file.text(); f[key] = area.value; toast(`已载入 ${file.name}`);
  } });
  const start = bind("start", h("input", { value: f.start, size: "16", "data-testid": "replay-start",
    placeholder: "年-月-日 时:分" }));
  const end = bind("end", h("input", { value: f.end, size: "16", "data-testid": "replay-end", placeholder: "年-月-日 时:分" }));
  const go = h("button", { "data-testid": "replay-run", onclick: async () => {
    go.disabled = true; go.textContent = "回放中…";
    try {
      f.result = await api("POST", "/api/replay", { start: replayIso(f.start, "开始时间"), end: replayIso(f.end, "结束时间"), model: f.model,
        detectors_yaml: replayProposal(), routes_yaml: f.routes });
      out.replaceChildren(replayResult(f.result));
    } catch (e) { out.replaceChildren(replayProblems(e)); }
    finally { go.disabled = false; go.textContent = "开始回放"; }
  } }, "开始回放");
  show(h("h2", {}, "模拟回放"),
    h("p", { class: "muted" }, `用已存的监测数据检验拟议阈值或路由：与现行配置同样回放后比较告警和通知，只读，不改动任何实时数据。时段最长 ${f.opts.max_days} 天。`),
    h("div", { class: "replay-form", "data-testid": "replay-form" },
      h("label", {}, "开始（北京时间） ", start), " ", h("label", {}, "结束 ", end), h("br"),
      h("label", {}, "厂商型号 ", model), " ", params,
      h("details", {}, h("summary", {}, "高级：粘贴或上传完整的阈值文件、路由文件"),
        h("p", {}, "阈值文件 ", upload(text, "text")), text,
        h("p", {}, "路由文件 ", upload(routes, "routes")), routes),
      h("p", {}, go)),
    out);
}

VIEWS.replay = { load: loadReplay, allowed: (role) => ["centre", "admin"].includes(role) };
