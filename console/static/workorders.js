/* 工单 (issue 14 item 3): the centre's 派发 picker on the alarm page (units and people of the
   alarm's 责任矩阵 from GET /api/alerts/{id}/dispatch-options, a deadline, a note) and the alarm's
   orders; the 工单 page (#/workorders): the reader's orders, overdue ones highlighted, with the
   steps its role may take now (接单, 到场签到 with the browser's location, 反馈 with photos and
   申请办结; the centre's 审核通过 and 退回). Loaded after app.js (h, api, show, toast, fmtTime, state).
   Every word Chinese; errors are the server's Chinese words. */
"use strict";

const WO_STATE_OPTS = [["open", "未办结"], ["overdue", "已超时"], ["closed", "已办结"], ["all", "全部"]];
const WO_REASON_OPTS = [["real", "真实警情"], ["false", "误报"], ["test", "测试"], ["fault", "设备故障"]];
const WO_DEADLINES = [[30, "30分钟"], [60, "1小时"], [120, "2小时"], [240, "4小时"], [1440, "1天"], [4320, "3天"]];
const woFilter = { state: "open" };

function woIsCentre() { return ["centre", "admin"].includes(state.me.role); }

/* one step of an order; then reload what shows it */
async function woStep(o, step, body, done) {
  try {
    const r = await api("POST", `/api/workorders/${encodeURIComponent(o.order_id)}/${step}`,
      { ...body, expected_version: o.version });
    toast(r.alert_closed ? "工单已办结，报警已办结" : "操作成功");
    await done();
  } catch (e) { toast(e.message); }
}

/* 到场签到: the browser's location when granted (with its accuracy), else without */
function woArrive(o, done) {
  const send = (pos) => woStep(o, "arrive", pos ? { lat: pos.coords.latitude, lon: pos.coords.longitude,
    accuracy_m: pos.coords.accuracy } : {}, done);
  if (!navigator.geolocation) { send(null); return; }
  navigator.geolocation.getCurrentPosition(send, () => send(null),
    { enableHighAccuracy: true, timeout: 10000 });
}

/* photos (H1's POST /api/attachments) uploaded one by one, then the feedback with their ids */
async function woUpload(o, files) {
  const ids = [];
  for (const f of files) {
    const form = new FormData();
    form.append("file", f);
    form.append("alert_id", o.alert_id);
    const r = await fetch("/api/attachments", { method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": state.me.csrf_token, "Accept": "application/json" } });
    const d = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(typeof d.detail === "string" ? d.detail : "照片上传失败，请重试");
    ids.push(d.attachment_id);
  }
  return ids;
}

function woStepControls(o, done) {
  const box = h("div", { class: "wo-steps" });
  const can = new Set(o.actions || []);
  if (can.has("accept")) {
    box.append(h("button", { "data-testid": "wo-accept", onclick: () => woStep(o, "accept", {}, done) },
      "接单"));
  }
  if (can.has("arrive")) {
    box.append(h("button", { "data-testid": "wo-arrive", onclick: () => woArrive(o, done) }, "到场签到"));
  }
  if (can.has("feedback")) {
    const note = h("input", { "data-testid": "wo-feedback-note", placeholder: "处置情况", maxlength: "2000",
      size: "20" });
    const photos = h("input", { type: "file", accept: "image/*", multiple: "multiple",
      "data-testid": "wo-photos" });
    const close = h("input", { type: "checkbox", "data-testid": "wo-request-close" });
    const send = async () => {
      if (!note.value.trim()) { toast("请填写处置情况"); return; }
      try {
        const ids = await woUpload(o, photos.files);
        await woStep(o, "feedback", { note: note.value.trim(), attachment_ids: ids,
          request_close: close.checked }, done);
      } catch (e) { toast(e.message); }
    };
    box.append(note, photos, h("label", {}, close, "申请办结"),
      h("button", { "data-testid": "wo-feedback", onclick: send }, "反馈"));
  }
  if (can.has("approve")) {
    const reason = h("select", { "data-testid": "wo-approve-reason" },
      WO_REASON_OPTS.map(([v, t]) => h("option", { value: v }, t)));
    const note = h("input", { "data-testid": "wo-approve-note", placeholder: "审核意见", maxlength: "2000",
      size: "14" });
    box.append(reason, note, h("button", { "data-testid": "wo-approve", onclick: () =>
      woStep(o, "approve", { reason: reason.value, note: note.value.trim() }, done) }, "审核通过"));
  }
  if (can.has("return")) {
    const why = h("input", { "data-testid": "wo-return-reason", placeholder: "退回原因", maxlength: "2000",
      size: "14" });
    box.append(why, h("button", { class: "secondary", "data-testid": "wo-return", onclick: () => {
      if (!why.value.trim()) { toast("请填写退回原因"); return; }
      woStep(o, "return", { reason: why.value.trim() }, done);
    } }, "退回"));
  }
  return box;
}

function woWho(o) {
  return o.assignee_name ? `${o.unit_name}（${o.assignee_name}）` : `${o.unit_name}（${o.unit_kind_zh}）`;
}

function woFeedback(o) {
  if (!o.fed_back_at) return "—";
  return h("div", {}, o.feedback_note, o.attachment_ids.map((id, i) =>
    h("a", { href: `/api/attachments/${encodeURIComponent(id)}`, target: "_blank", rel: "noopener",
      class: "wo-photo" }, ` 照片${i + 1}`)), o.close_requested ? h("div", { class: "muted" }, "已申请办结") : null,
  h("div", { class: "muted" }, fmtTime(o.fed_back_at)));
}

function woRow(o, done) {
  const late = o.overdue ? h("div", { class: "wo-late", "data-testid": "wo-overdue" }, "已超时") : null;
  return h("tr", { class: o.overdue ? "wo-overdue" : "", "data-testid": "wo-row" },
    h("td", { "data-label": "报警" },
      h("a", { href: `#/alert/${encodeURIComponent(o.alert_id)}` }, o.alert_title)),
    h("td", { "data-label": "派给" }, woWho(o)),
    h("td", { "data-label": "状态" }, o.state_zh, o.state === "returned" && o.return_reason
      ? h("div", { class: "muted" }, `退回：${o.return_reason}`) : null,
      o.state === "closed" ? h("div", { class: "muted" }, o.close_reason_zh) : null),
    h("td", { "data-label": "处置时限" }, fmtTime(o.deadline), late),
    h("td", { "data-label": "到场" }, o.arrived_at ? fmtTime(o.arrived_at) : "—",
      o.arrived_accuracy_m != null
      ? h("div", { class: "muted" }, `定位精度约${Math.round(o.arrived_accuracy_m)}米`) : null),
    h("td", { "data-label": "反馈" }, woFeedback(o)),
    h("td", { "data-label": "操作" }, woStepControls(o, done)));
}

function woTable(items, done) {
  return h("table", { "data-testid": "workorders" },
    h("tr", {}, ["报警", "派给", "状态", "处置时限", "到场", "反馈", "操作"].map((x) => h("th", {}, x))),
    items.map((o) => woRow(o, done)));
}

async function loadWorkorders() {
  const q = new URLSearchParams({ state: woFilter.state, page_size: "200" });
  const d = await api("GET", `/api/workorders?${q}`);
  const sel = h("select", { "data-testid": "wo-state",
    onchange: () => { woFilter.state = sel.value; loadWorkorders(); } },
  WO_STATE_OPTS.map(([v, t]) => h("option", { value: v, selected: woFilter.state === v ? "selected" : null },
    t)));
  const late = d.items.filter((o) => o.overdue).length;
  show(h("h2", {}, `工单 · ${d.total} 条`),
    h("p", { class: "muted" }, woIsCentre() ? "派发给各责任单位和人员的工单：超时的标红，反馈后请审核通过或退回。"
      : "派给您或您单位的工单：请接单、到场签到，处置后反馈并上传照片。"),
    h("div", { class: "filters" }, sel, late ? h("span", { class: "wo-late" }, ` 超时 ${late} 条`) : null),
    d.items.length ? woTable(d.items, loadWorkorders) : h("p", { class: "muted" }, "暂无工单"));
}

/* the alarm page: the centre's 派发 picker, and the alarm's orders (each reader sees its own) */
function woPicker(a, box, reload) {
  const panel = h("div", { class: "wo-picker", "data-testid": "dispatch-picker" });
  const open = async () => {
    panel.replaceChildren(h("span", { class: "muted" }, "正在读取责任矩阵…"));
    let d;
    try {
      d = await api("GET", `/api/alerts/${encodeURIComponent(a.id)}/dispatch-options`);
    } catch (e) { panel.replaceChildren(h("p", { class: "error" }, e.message)); return; }
    const picks = [];
    const units = d.units.map((u) => {
      const whole = h("input", { type: "checkbox", "data-testid": "dispatch-unit", "data-unit": u.unit_id });
      picks.push([whole, { unit_id: u.unit_id, unit_kind: u.unit_kind, contact_id: null }]);
      const people = u.people.map((p) => {
        const c = h("input", { type: "checkbox", "data-testid": "dispatch-person",
          "data-contact": p.contact_id });
        picks.push([c, { unit_id: u.unit_id, unit_kind: u.unit_kind, contact_id: p.contact_id }]);
        return h("label", { class: "wo-person" }, c, `${p.name}${p.phone ? " " + p.phone : ""}`);
      });
      return h("div", { class: "wo-unit" },
        h("label", {}, whole, h("b", {}, u.unit_name), ` · ${u.why}（整个单位）`), ...people);
    });
    const deadline = h("select", { "data-testid": "dispatch-deadline" },
      WO_DEADLINES.map(([m, t]) => h("option", { value: String(m), selected: m === 60 ? "selected" : null },
        `处置时限 ${t}`)));
    const note = h("input", { "data-testid": "dispatch-note", placeholder: "派发说明（可选）", maxlength: "2000",
      size: "24" });
    const go = h("button", { "data-testid": "dispatch-submit", onclick: async () => {
      const orders = picks.filter(([c]) => c.checked).map(([, v]) => v);
      if (!orders.length) { toast("请至少选择一个单位或人员"); return; }
      try {
        const r = await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/dispatch`,
          { orders, deadline_minutes: Number(deadline.value), note: note.value.trim() });
        toast(`已派发 ${r.orders.length} 张工单，短信通知已排队发送`);
        await reload();
      } catch (e) { toast(e.message); }
    } }, "确认派发");
    panel.replaceChildren(h("div", { class: "muted" }, "按责任矩阵选择派发对象：勾选单位（发给该单位值班）或具体人员"),
      ...units, h("div", {}, deadline, " ", note, " ", go));
  };
  box.append(h("button", { "data-testid": "btn-dispatch", onclick: open },
    a.phase === "verified" ? "派发" : "追加派发"), panel);
}

function woAlertPanel(a) {
  const box = h("div", { class: "wo-alert", "data-testid": "alert-workorders" });
  const reload = () => loadAlert(a.id);
  const dispatchable = ["verified", "dispatched", "handling", "feedback"].includes(a.phase)
    && ["real", "fault"].includes(a.verdict);
  if (woIsCentre() && dispatchable) woPicker(a, box, reload);
  const list = h("div", {});
  box.append(list);
  api("GET", `/api/workorders?${new URLSearchParams({ alert_id: a.id, state: "all", page_size: "50" })}`)
    .then((d) => {
      if (!d.items.length) return;
      list.replaceChildren(h("h4", {}, `工单（${d.items.length}）`), woTable(d.items, reload));
    })
    .catch(() => {});
  return box;
}

VIEWS.workorders = {
  load: loadWorkorders,
  allowed: (role) => role !== "vendor",
  alertPanel: woAlertPanel,
};
