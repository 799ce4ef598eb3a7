/* 维保/测试 报备 (issue 14 item 6), the page behind 报备 (#/silences): the centre files one for any
   site, a business (企业) or a 维保单位 for its own devices (the server checks whose they are and
   refuses others in Chinese); the list shows what each held (暂缓通知) and its reminder. The centre
   also sees every silence rule (the list that was app.js's loadSilences). Loaded after app.js and
   forms.js (h, api, show, toast, fmtTime, formField, checkList, formAct, cstIso, cstInputValue). */
"use strict";

const REPORT_FILERS = ["centre", "admin", "business", "maintainer"];

function reportForm(devices, reload) {
  const self = ["business", "maintainer"].includes(state.me.role);
  const sites = [...new Map(devices.map((d) => [d.site_id, d.site_name])).entries()];
  if (!sites.length) return h("div", { class: "panel" }, h("h3", {}, "新建报备"), h("p", { class: "muted" }, "没有可报备的设备"));
  const site = h("select", { "data-testid": "report-site" }, sites.map(([id, name]) => h("option", { value: id }, name)));
  const devBox = h("div", {});
  let checks = null;
  const fillDevices = () => {
    const here = devices.filter((d) => d.site_id === site.value);
    checks = checkList("report-device", here.map((d) => [d.id, `${d.domain_zh} ${d.id}`]), here.length === 1 ? [here[0].id] : []);
    devBox.replaceChildren(checks);
  };
  site.addEventListener("change", fillDevices);
  fillDevices();
  const kind = h("select", { "data-testid": "report-kind" }, ["维保", "测试"].map((k) => h("option", { value: k }, k)));
  const now = new Date();
  const start = h("input", { type: "datetime-local", "data-testid": "report-start", value: cstInputValue(now) });
  const end = h("input", { type: "datetime-local", "data-testid": "report-end",
    value: cstInputValue(new Date(now.getTime() + 2 * 3600e3)) });
  const reason = h("textarea", { "data-testid": "report-reason", maxlength: "300", placeholder: "例如：电梯半月维保，维保人员张工" });
  const err = h("p", { class: "error", "data-testid": "report-error", role: "alert" });
  const submit = h("button", { "data-testid": "report-submit", onclick: async () => {
    if (!reason.value.trim()) { err.textContent = "请填写报备原因"; return; }
    const body = { site_id: site.value, device_ids: checks.values(), kind: kind.value, starts_at: cstIso(start.value),
      ends_at: cstIso(end.value), reason: reason.value.trim() };
    if (await formAct(() => api("POST", "/api/reports", body), "报备已提交", err)) reload();
  } }, "提交报备");
  return h("div", { class: "panel" }, h("h3", {}, "新建报备"),
    h("p", { class: "note" }, "报备期间这些设备的报警暂缓通知，仍在看板上显示；结束时短信提醒报备人并列出期间的报警。",
      "测试期间真实火警照常通知。"),
    h("div", { class: "form", "data-testid": "report-form" },
      formField("场所", site), formField("类型", kind),
      formField("开始时间", start), formField("结束时间", end, self ? "企业、维保单位自助报备最长8小时" : "中心报备最长31天"),
      formField("设备", devBox, self ? "只能选择本单位的设备" : "不选则为整个场所", true),
      formField("原因", reason, null, true)),
    h("div", { class: "form-actions" }, submit), err);
}

function reportTable(items, reload) {
  if (!items.length) return h("p", { class: "muted", "data-testid": "reports-empty" }, "暂无报备");
  const endBtn = (r) => r.status === "expired" ? null : h("button", { class: "secondary", "data-testid": "report-end-now",
    onclick: async () => { if (await formAct(() => api("POST", `/api/reports/${encodeURIComponent(r.id)}/end`, { reason: "提前结束" }),
      "报备已结束")) reload(); } }, "提前结束");
  return h("table", { class: "stack", "data-testid": "reports" },
    h("tr", {}, ["场所", "类型", "设备", "时间", "期间暂缓通知", "状态", "报备人", "原因", ""].map((x) => h("th", {}, x))),
    items.map((r) => h("tr", { "data-testid": "report-row", "data-report-id": r.id },
      h("td", { class: "lead" }, r.site_name),
      h("td", {}, h("span", { class: "tag" }, r.kind), r.keeps_fire_alarm ? h("span", { class: "muted" }, " 火警照常通知") : null),
      h("td", {}, r.devices_zh.join("，") || "整个场所"),
      h("td", {}, `${fmtTime(r.starts_at)} 至 ${fmtTime(r.expired_at || r.ends_at)}`),
      h("td", { "data-testid": "report-held" }, r.held ? `${r.held} 条：${r.held_zh.join("、")}` : "无"),
      h("td", {}, h("span", { class: "tag" }, r.status_zh), r.reminded_at ? h("span", { class: "muted" }, " 已短信提醒") : null),
      h("td", {}, r.created_by_zh), h("td", {}, r.reason), h("td", {}, endBtn(r)))));
}

function silenceTable(d) {  /* every silence rule: the centre's view (was app.js's loadSilences) */
  return h("table", { class: "stack", "data-testid": "silences" },
    h("tr", {}, ["编号", "匹配", "开始", "结束", "创建人", "原因", "状态"].map((x) => h("th", {}, x))),
    d.map((s) => h("tr", {}, h("td", { class: "lead" }, s.id), h("td", {}, (s.matchers_zh || []).join("，")),
      h("td", {}, fmtTime(s.starts_at)), h("td", {}, fmtTime(s.ends_at)), h("td", {}, s.created_by_zh || actorZh(s.created_by)),
      h("td", {}, s.reason), h("td", {}, zh(SILENCE_STATUS_ZH, s.status)))));
}

VIEWS.silences = {
  allowed: (role) => REPORT_FILERS.includes(role),
  load: async () => {
    const centre = ["centre", "admin"].includes(state.me.role);
    const [devices, reports, all] = await Promise.all([api("GET", "/api/reports/devices"), api("GET", "/api/reports"),
      centre ? api("GET", "/api/silences?include_expired=true") : Promise.resolve(null)]);
    if (state.view !== "silences") return;
    const reload = () => VIEWS.silences.load();
    showAll(h("h2", {}, centre ? "维保/测试报备与静默" : "维保/测试报备"), reportForm(devices, reload),
      h("div", { class: "panel" }, h("h3", {}, centre ? "全部报备" : "本单位的报备"), reportTable(reports, reload)),
      all ? h("div", { class: "panel" }, h("h3", {}, "全部静默规则"), silenceTable(all)) : null);
  },
};
