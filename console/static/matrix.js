/* 责任矩阵（三管三必须）(issue 14 item 6): the rules, 触达检查 and the change log (was app.js's
   loadMatrix), and for the centre and admin a form to add, modify or delete a rule — a reason is
   required and every change is audited by the server (registry_audit). Loaded after app.js and
   forms.js. */
"use strict";

function matrixEditor(opts, rule, reload) {
  const domain = h("select", { "data-testid": "mx-domain" }, opts.domains.map((d) => h("option", { value: d.name,
    selected: rule && rule.domain === d.name ? "selected" : null }, d.name_zh || zh(DOMAIN_ZH, d.name, "其他领域"))));
  const deps = checkList("mx-dept", opts.departments.map((d) => [d.id, d.name]), rule ? rule.department_ids : []);
  const leader = h("select", { "data-testid": "mx-leader" }, h("option", { value: "" }, "不指定"),
    opts.leaders.map((l) => h("option", { value: l.id, selected: rule && rule.leader_id === l.id ? "selected" : null },
      `${l.name}（${l.title}）`)));
  const committee = h("input", { "data-testid": "mx-committee", maxlength: "100", value: rule ? rule.committee || "" : "",
    placeholder: "例如：城市运行专委会" });
  const industries = h("input", { "data-testid": "mx-industries", maxlength: "300",
    value: rule ? (rule.industries || []).join("、") : "", placeholder: "不填为全部行业；多个用顿号分隔，如：养老、医院" });
  const reason = h("input", { "data-testid": "mx-reason", maxlength: "300", placeholder: "例如：区政府分工调整文件" });
  const err = h("p", { class: "error", "data-testid": "mx-error", role: "alert" });
  const ruleId = rule ? rule.id : `R-${Date.now().toString(36)}`;
  const save = h("button", { "data-testid": "mx-save", onclick: async () => {
    if (!reason.value.trim()) { err.textContent = "请填写变更原因"; return; }
    if (!deps.values().length) { err.textContent = "请至少选择一个监管部门"; return; }
    const had = rule ? rule.department_ids : [];  // the rule's departments keep their order, new ones after
    const rank = (id) => (had.indexOf(id) + 1) || 999;
    const body = { domain: domain.value, department_ids: deps.values().sort((a, b) => rank(a) - rank(b)), leader_id: leader.value || null,
      committee: committee.value.trim(), note: rule ? rule.note || "" : "",
      industries: industries.value.split(/[、，,\s]+/).filter(Boolean), reason: reason.value.trim() };
    if (await formAct(() => api("PUT", `/api/matrix/${encodeURIComponent(ruleId)}`, body), rule ? "规则已修改" : "规则已新增", err)) reload();
  } }, rule ? "保存修改" : "新增规则");
  const del = rule ? h("button", { class: "secondary", "data-testid": "mx-delete", onclick: async () => {
    if (!reason.value.trim()) { err.textContent = "请填写删除原因"; return; }
    if (await formAct(() => api("POST", `/api/matrix/${encodeURIComponent(ruleId)}/delete`, { reason: reason.value.trim() }),
      "规则已删除", err)) reload();
  } }, "删除规则") : null;
  const cancel = rule ? h("button", { class: "secondary", "data-testid": "mx-cancel", onclick: reload }, "取消") : null;
  return h("div", { class: "panel", "data-testid": "mx-editor" }, h("h3", {}, rule ? `修改规则：${rule.rule_zh}` : "新增规则"),
    h("div", { class: "form" }, formField("领域", domain), formField("责任领导", leader), formField("专委会", committee),
      formField("限定行业", industries), formField("监管部门", deps, null, true), formField("变更原因（必填，记入变更记录）", reason, null, true)),
    h("div", { class: "form-actions" }, save, del, cancel), err);
}

VIEWS.matrix = {
  allowed: (role) => !["business", "grid_member", "maintainer", "vendor"].includes(role),
  load: async (arg, editing) => {
    const edit = ["centre", "admin"].includes(state.me.role);
    const [d, opts] = await Promise.all([api("GET", "/api/matrix"), edit ? api("GET", "/api/matrix/options") : null]);
    if (state.view !== "matrix") return;
    const reload = () => VIEWS.matrix.load();
    const editBtn = (r) => edit ? h("button", { class: "secondary", "data-testid": "mx-edit", onclick: () => {
      VIEWS.matrix.load("", r).then(() => window.scrollTo(0, 0));
    } }, "修改") : null;
    showAll(h("h2", {}, "责任矩阵（三管三必须）"), edit ? matrixEditor(opts, editing || null, reload) : null,
      h("table", { class: "stack", "data-testid": "matrix" },
        h("tr", {}, ["规则", "领域", "监管部门", "责任领导", "专委会", "行业", ""].map((x) => h("th", {}, x))),
        d.rules.map((r) => h("tr", { "data-testid": "mx-row", "data-rule-id": r.id }, h("td", { class: "rule lead" }, r.rule_zh),
          h("td", {}, r.domain_zh || zh(DOMAIN_ZH, r.domain, "其他领域")),
          h("td", {}, (r.department_names || r.department_ids).join("、")),
          h("td", {}, r.leader_name ? `${r.leader_name} ${r.leader_phone || ""}` : "—"),
          h("td", {}, r.committee), h("td", {}, (r.industries || []).join("、") || "全部"), h("td", {}, editBtn(r))))),
      h("h3", {}, `触达检查 · ${d.reach_count || 0} 项`),
      (d.reach || []).length ? h("table", { class: "stack", "data-testid": "reach" },
        h("tr", {}, ["单位", "名称", "承担角色", "现有渠道", "问题"].map((x) => h("th", {}, x))),
        d.reach.map((u) => h("tr", {}, h("td", {}, u.unit_kind), h("td", {}, u.name), h("td", {}, u.roles),
          h("td", {}, u.channels.join("、") || "无"), h("td", {}, u.problem))))
        : h("p", { class: "muted" }, "每个镇街和监管部门都有至少两种触达渠道"),
      h("h3", {}, "变更记录"), h("ul", { "data-testid": "mx-audit" }, d.audit.map((a) => h("li", {},
        `${fmtTime(a.at)} ${a.actor_zh || actorZh(a.actor)} ${zh(MATRIX_ACTION_ZH, a.action, "变更")} ${a.rule_zh || ""} ${(a.detail && a.detail.reason) || ""}`))));
  },
};
