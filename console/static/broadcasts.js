/* 安全公益短信 (issue 14 item 6): write the text, pick the audience by township and industry, see
   it as the phone shows it with its length, SMS count and what the providers' review refuses;
   save a draft; another user of the centre approves (or rejects) it — one's own approval is
   refused by the server — then it is sent. Loaded after app.js and forms.js. */
"use strict";

function broadcastForm(opts, reload) {
  const body = h("textarea", { "data-testid": "bc-body", maxlength: "1000", rows: "4",
    placeholder: "例如：冬季使用燃气请保持通风，发现泄漏立即关阀，切勿开关电器，到室外拨打119。" });
  const towns = checkList("bc-town", opts.townships.map((t) => [t.id, t.name]));
  const inds = checkList("bc-industry", opts.industries.map((i) => [i, i]));
  const reason = h("input", { "data-testid": "bc-reason", maxlength: "300", placeholder: "例如：寒潮来临前的燃气安全提示" });
  const shown = h("div", { "data-testid": "bc-preview" }, h("p", { class: "muted" }, "输入正文后显示短信预览"));
  const err = h("p", { class: "error", "data-testid": "bc-error", role: "alert" });
  const audience = () => ({ body: body.value, township_ids: towns.values(), industries: inds.values() });
  let timer = null;
  const preview = async () => {
    const p = await formAct(() => api("POST", "/api/broadcasts/preview", audience()), null, err);
    if (!p) return null;
    shown.replaceChildren(h("div", { class: "sms-preview", "data-testid": "bc-text" }, p.full),
      h("p", { "data-testid": "bc-count" }, `共${p.chars}字，按${p.segments}条短信计费；发送对象${p.recipients}人`),
      p.problems.length ? h("ul", { class: "problems", "data-testid": "bc-problems" }, p.problems.map((x) => h("li", {}, x)))
        : h("p", { class: "ok", "data-testid": "bc-ok" }, "符合短信服务商审核规则"));
    return p;
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(preview, 300); };
  body.addEventListener("input", later);
  towns.addEventListener("change", later);
  inds.addEventListener("change", later);
  const save = h("button", { "data-testid": "bc-draft", onclick: async () => {
    if (!reason.value.trim()) { err.textContent = "请填写发送原因"; return; }
    const p = await preview();
    if (!p || p.problems.length) return;
    if (await formAct(() => api("POST", "/api/broadcasts", { ...audience(), reason: reason.value.trim() }), "已保存草稿，待另一人审批", err)) reload();
  } }, "保存草稿并提交审批");
  return h("div", { class: "panel" }, h("h3", {}, "起草公益短信"),
    h("div", { class: "form", "data-testid": "bc-form" }, formField("正文", body, "系统自动加上签名和“安全提示：”", true),
      formField("发送镇街", towns, "不选为全区", true), formField("发送行业", inds, "不选为全部行业", true),
      formField("发送原因", reason, null, true)),
    shown, h("div", { class: "form-actions" }, h("button", { class: "secondary", "data-testid": "bc-preview-btn", onclick: preview }, "预览"), save), err);
}

function broadcastActions(b, reload) {
  const mine = b.created_by === `${state.me.role}:${state.me.username}`;
  const act = (path, words) => async () => {
    await formAct(() => api("POST", `/api/broadcasts/${encodeURIComponent(b.id)}/${path}`, path === "send" ? undefined : { reason: "" }), words);
    reload();  // a refusal too: the record shows it (审批记录)
  };
  if (b.status === "draft") {
    return h("div", { class: "actions" }, mine ? h("span", { class: "muted" }, "待另一人审批") : null,
      h("button", { "data-testid": "bc-approve", onclick: act("approve", "已审批通过") }, "审批通过"),
      h("button", { class: "secondary", "data-testid": "bc-reject", onclick: act("reject", "已驳回") }, "驳回"));
  }
  if (b.status === "approved") return h("button", { "data-testid": "bc-send", onclick: act("send", "已发送") }, "发送");
  return null;
}

VIEWS.broadcasts = {
  allowed: (role) => ["centre", "admin"].includes(role),
  load: async () => {
    const [opts, items] = await Promise.all([api("GET", "/api/broadcasts/options"), api("GET", "/api/broadcasts")]);
    if (state.view !== "broadcasts") return;
    const reload = () => VIEWS.broadcasts.load();
    showAll(h("h2", {}, "安全公益短信"), broadcastForm(opts, reload),
      h("div", { class: "panel" }, h("h3", {}, "公益短信记录"), items.length ? h("table", { class: "stack", "data-testid": "broadcasts" },
        h("tr", {}, ["正文", "范围", "人数", "状态", "起草人", "审批记录", ""].map((x) => h("th", {}, x))),
        items.map((b) => h("tr", { "data-testid": "bc-row", "data-bc-id": b.id }, h("td", { class: "lead" }, b.body),
          h("td", {}, b.audience_zh), h("td", {}, `${b.recipients}人`),
          h("td", {}, h("span", { class: "tag", "data-testid": "bc-status" }, b.status_zh)), h("td", {}, b.created_by_zh),
          h("td", {}, h("ul", { class: "problems-log" }, b.audit.map((a) => h("li", {},
            `${fmtTime(a.at)} ${a.actor_zh} ${a.action_zh}${a.problem ? `：${a.problem}` : ""}`)))),
          h("td", {}, broadcastActions(b, reload)))))
        : h("p", { class: "muted" }, "暂无公益短信")));
  },
};
