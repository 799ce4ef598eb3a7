/* 重点时段 (issue 14 item 6): the calendar of key periods — list, add and end them (the centre and
   admin; departments and townships read it) — and the banner on every page while one is in force
   (keyPeriodBanner, called by app.js's router on each page). Loaded after app.js and forms.js. */
"use strict";

const KP_KINDS = [["holiday", "节假日"], ["meeting", "重大活动"], ["flood", "汛期"], ["heat", "高温"],
  ["freezing", "低温雨雪冰冻"], ["resumption", "复工复产"], ["weather", "极端天气"], ["other", "其他"]];
const KP_FACTORS = [["0.5", "时限减半（0.5倍）"], ["0.75", "时限缩短四分之一（0.75倍）"], ["0.25", "时限缩至四分之一（0.25倍）"],
  ["1", "时限不变，仅提示"]];
const kpBanner = { at: 0, items: [] };

/* the banner under the header while a key period is in force, re-read at most every minute */
async function keyPeriodBanner(force) {
  if (!state.me) return;
  let el = $("kp-banner");
  if (!el) {
    el = h("div", { id: "kp-banner", class: "kp-banner hidden", role: "status", "data-testid": "kp-banner" });
    $("main").before(el);
  }
  if (force || Date.now() - kpBanner.at > 60e3) {
    try { kpBanner.items = await api("GET", "/api/key-periods/active"); kpBanner.at = Date.now(); } catch (e) { return; }
  }
  const items = kpBanner.items;
  el.classList.toggle("hidden", !items.length);
  el.replaceChildren(...items.map((p, i) => h("span", {}, i ? "；" : "",
    `重点时段：${p.name}（${p.kind_zh}，${p.where_zh}·${p.domains_zh}，至${fmtTime(p.ends_at)}）`,
    p.timer_factor < 1 ? `，处置时限按${p.timer_factor}倍计` : "")));
}

function keyPeriodForm(reload) {
  const now = new Date();
  const name = h("input", { "data-testid": "kp-name", maxlength: "60", placeholder: "例如：春节假期、防汛Ⅳ级应急响应" });
  const kind = h("select", { "data-testid": "kp-kind" }, KP_KINDS.map(([v, w]) => h("option", { value: v }, w)));
  const start = h("input", { type: "datetime-local", "data-testid": "kp-start", value: cstInputValue(now) });
  const end = h("input", { type: "datetime-local", "data-testid": "kp-end", value: cstInputValue(new Date(now.getTime() + 3 * 86400e3)) });
  const factor = h("select", { "data-testid": "kp-factor" }, KP_FACTORS.map(([v, w]) => h("option", { value: v }, w)));
  const towns = h("div", {}, h("span", { class: "muted" }, "正在读取镇街…"));
  let townChecks = null;
  api("GET", "/api/townships").then((d) => {
    const list = Array.isArray(d) ? d : (d.items || []);
    townChecks = checkList("kp-town", list.map((t) => [t.id, t.name]));
    towns.replaceChildren(townChecks);
  }).catch(() => towns.replaceChildren(h("span", { class: "muted" }, "镇街列表读取失败，将适用全区")));
  const domains = checkList("kp-domain", Object.entries(DOMAIN_ZH));
  const reason = h("input", { "data-testid": "kp-reason", maxlength: "300", placeholder: "例如：区安委办通知" });
  const err = h("p", { class: "error", "data-testid": "kp-error", role: "alert" });
  const add = h("button", { "data-testid": "kp-submit", onclick: async () => {
    if (!name.value.trim() || !reason.value.trim()) { err.textContent = "请填写名称和依据"; return; }
    const body = { name: name.value.trim(), kind: kind.value, starts_at: cstIso(start.value), ends_at: cstIso(end.value),
      timer_factor: Number(factor.value), township_ids: townChecks ? townChecks.values() : [], domains: domains.values(),
      reason: reason.value.trim() };
    if (await formAct(() => api("POST", "/api/key-periods", body), "重点时段已新增", err)) { keyPeriodBanner(true); reload(); }
  } }, "新增重点时段");
  return h("div", { class: "panel" }, h("h3", {}, "新增重点时段"),
    h("div", { class: "form", "data-testid": "kp-form" }, formField("名称", name), formField("类型", kind),
      formField("开始时间", start), formField("结束时间", end),
      formField("处置时限", factor, "时段内新发报警的四单升级时限按此倍数计"), formField("依据", reason),
      formField("适用镇街", towns, "不选为全区", true), formField("适用领域", domains, "不选为全部领域", true)),
    h("div", { class: "form-actions" }, add), err);
}

VIEWS.keyperiods = {
  allowed: (role) => ["centre", "admin", "department", "township"].includes(role),
  load: async () => {
    const edit = ["centre", "admin"].includes(state.me.role);
    const items = await api("GET", "/api/key-periods");
    if (state.view !== "keyperiods") return;
    const reload = () => VIEWS.keyperiods.load();
    const endBtn = (p) => !edit || p.status === "ended" ? null : h("button", { class: "secondary", "data-testid": "kp-end",
      onclick: async () => {
        if (await formAct(() => api("POST", `/api/key-periods/${encodeURIComponent(p.id)}/end`, { reason: "值班员结束" }),
          p.status === "pending" ? "已取消" : "已结束")) { keyPeriodBanner(true); reload(); }
      } }, p.status === "pending" ? "取消" : "结束");
    showAll(h("h2", {}, "重点时段"), edit ? keyPeriodForm(reload) : null,
      h("div", { class: "panel" }, h("h3", {}, "重点时段日历"), items.length ? h("table", { class: "stack", "data-testid": "key-periods" },
        h("tr", {}, ["名称", "类型", "时间", "范围", "处置时限", "状态", "设置人", ""].map((x) => h("th", {}, x))),
        items.map((p) => h("tr", { "data-testid": "kp-row" }, h("td", { class: "lead" }, p.name), h("td", {}, p.kind_zh),
          h("td", {}, `${fmtTime(p.starts_at)} 至 ${fmtTime(p.ends_at)}`), h("td", {}, `${p.where_zh} · ${p.domains_zh}`),
          h("td", {}, p.timer_factor < 1 ? `按${p.timer_factor}倍计` : "不变"), h("td", {}, h("span", { class: "tag" }, p.status_zh)),
          h("td", {}, p.created_by_zh), h("td", {}, endBtn(p)))))
        : h("p", { class: "muted" }, "暂无重点时段")));
  },
};
