/* 隐患台账 (issue 14): the ledger from the page — the list with filters and 重大隐患清零, 登记,
   a hazard's detail with its timeline, and a form for each step the reader's role may take now
   (the server says which: hazard.can): 挂牌督办 (督办单位、整改期限 and the 五落实), 整改 with photos
   (uploaded through POST /api/attachments), 复查 (通过/不通过), 销号. 转隐患 on the alert page
   (VIEWS.hazards.alertAction, called by app.js's alert actions). Loaded after app.js (h, api,
   show, toast, fmtTime, state); every error is the server's Chinese. */
"use strict";

const HZ_PHASES = [["", "全部状态"], ["found", "排查发现"], ["registered", "已登记"], ["supervised", "挂牌督办中"],
  ["rectified", "已整改待复查"], ["reviewed", "复查通过待销号"], ["struck_off", "已销号"]];
const HZ_GRADES = [["", "全部等级"], ["major", "重大隐患"], ["general", "一般隐患"]];
const HZ_OVERDUE = [["", "不限期限"], ["true", "仅逾期"], ["false", "未逾期"]];
const HZ_DOMAINS = [["gas", "燃气"], ["elevator", "电梯"], ["fire", "消防"]];
const HZ_FINDERS = ["centre", "admin", "department", "township", "grid_member"];
const hzFilter = { phase: "", grade: "", overdue: "", township_id: "" };

function hzSelect(opts, key, reload) {
  const sel = h("select", { "data-testid": `hz-filter-${key}`, onchange: () => { hzFilter[key] = sel.value; reload(); } },
    opts.map(([v, t]) => h("option", { value: v, selected: hzFilter[key] === v ? "selected" : null }, t)));
  return sel;
}
function hzField(label, input) { return h("label", { class: "hz-field" }, h("span", {}, label), input); }
function hzInput(testid, attrs) { return h("input", { "data-testid": testid, maxlength: "200", ...(attrs || {}) }); }
function hzGrade(z) { return h("span", { class: z.grade === "major" ? "tag sev-red" : "tag" }, z.grade_zh); }

async function hzPost(path, body) {
  const r = await api("POST", path, body);
  toast(r.result || "已完成");
  return r;
}

/* ---------- 台账 ---------- */
async function hzClearance() {
  const d = await api("GET", "/api/hazards/clearance");
  const rows = d.items.filter((r) => r.unit_kind === "township" || d.items.length <= 12);
  return h("div", { class: "panel", "data-testid": "hz-clearance" },
    h("h3", {}, `重大隐患清零 · 未销号重大隐患 ${d.total_open} 处`),
    rows.length ? h("table", {},
      h("tr", {}, ["单位", "未销号", "其中逾期", "最早一处", "发现时间"].map((x) => h("th", {}, x))),
      rows.map((r) => h("tr", {}, h("td", {}, `${r.unit_name}（${r.unit_kind_zh}）`), h("td", {}, r.open),
        h("td", { class: r.overdue ? "error" : "" }, r.overdue),
        h("td", {}, h("a", { href: `#/hazards/${encodeURIComponent(r.oldest_id)}` }, r.oldest_title)),
        h("td", {}, fmtTime(r.oldest_found_at)))))
      : h("p", { class: "muted" }, "辖区内重大隐患已清零"));
}

async function hzRegisterForm(done) {
  const sites = (await api("GET", "/api/sites?page_size=200")).items || [];
  const site = h("select", { "data-testid": "hz-new-site" }, sites.map((s) => h("option", { value: s.id }, s.name)));
  const domain = h("select", { "data-testid": "hz-new-domain" }, HZ_DOMAINS.map(([v, t]) => h("option", { value: v }, t)));
  const title = hzInput("hz-new-title", { placeholder: "如：后厨燃气软管老化" });
  const desc = hzInput("hz-new-desc", { placeholder: "隐患描述（位置、现状）", maxlength: "2000" });
  const grade = h("select", { "data-testid": "hz-new-grade" }, HZ_GRADES.slice(1).reverse().map(([v, t]) => h("option", { value: v }, t)));
  const msg = h("p", { class: "error" });
  const form = h("div", { class: "panel hz-form", "data-testid": "hz-new" }, h("h3", {}, "登记隐患"),
    hzField("场所", site), hzField("领域", domain), hzField("隐患名称", title), hzField("隐患描述", desc),
    hzField("等级", grade),
    h("button", { "data-testid": "hz-new-submit", onclick: async () => {
      msg.textContent = "";
      if (!title.value.trim()) { msg.textContent = "请填写隐患名称"; return; }
      try {
        const z = await api("POST", "/api/hazards", { site_id: site.value, domain: domain.value, title: title.value.trim(),
          description: desc.value.trim(), grade: grade.value, on_ledger: true });
        toast("已登记");
        location.hash = `#/hazards/${encodeURIComponent(z.id)}`;
      } catch (e) { msg.textContent = e.message; }
    } }, "登记"), " ", h("button", { class: "secondary", onclick: done }, "取消"), msg);
  return form;
}

async function hzList() {
  const q = new URLSearchParams({ page_size: "100" });
  for (const [k, v] of Object.entries(hzFilter)) if (v) q.set(k, v);
  const many = ["centre", "admin", "department"].includes(state.me.role);  // a 镇街 filter where there are several
  const [d, clear, towns] = await Promise.all([api("GET", `/api/hazards?${q}`), hzClearance(),
    many ? api("GET", "/api/townships") : Promise.resolve([])]);
  const slot = h("div", {});
  const canFind = HZ_FINDERS.includes(state.me.role);
  const table = d.items.length ? h("div", { class: "hz-scroll" }, h("table", { "data-testid": "hazards", class: "hz-table" },
    h("tr", {}, ["编号", "场所", "领域", "隐患", "等级", "状态", "整改期限"].map((x) => h("th", {}, x))),
    d.items.map((z) => h("tr", { "data-testid": "hz-row", "data-hazard-id": z.id },
      h("td", { "data-label": "编号" }, h("a", { href: `#/hazards/${encodeURIComponent(z.id)}`, "data-testid": "hz-open" }, z.id)),
      h("td", { "data-label": "场所" }, z.site_name, z.township_name ? h("span", { class: "muted" }, `（${z.township_name}）`) : null),
      h("td", { "data-label": "领域" }, z.domain_zh), h("td", { "data-label": "隐患" }, z.title),
      h("td", { "data-label": "等级" }, hzGrade(z)), h("td", { "data-label": "状态" }, z.phase_zh),
      h("td", { "data-label": "整改期限", class: z.overdue ? "error" : "" }, fmtTime(z.deadline), z.overdue ? "（逾期）" : "")))))
    : h("p", { class: "muted" }, "暂无隐患");
  show(h("h2", {}, `隐患台账 · ${d.total} 处`),
    h("p", { class: "muted" }, "排查发现 → 登记 → 挂牌督办（五落实）→ 整改 → 复查 → 销号"),
    clear,
    h("div", { class: "filters" }, hzSelect(HZ_PHASES, "phase", hzList), " ", hzSelect(HZ_GRADES, "grade", hzList), " ",
      hzSelect(HZ_OVERDUE, "overdue", hzList), " ",
      towns.length > 1 ? [hzSelect([["", "全部镇街"], ...towns.map((t) => [t.id, t.name])], "township_id", hzList), " "] : null,
      canFind ? h("button", { "data-testid": "hz-new-open", onclick: async () => {
        slot.replaceChildren(await hzRegisterForm(() => slot.replaceChildren()));
      } }, "登记隐患") : null),
    slot, table);
}

/* ---------- 详情与操作 ---------- */
async function hzUpload(file, hazardId) {
  const fd = new FormData();
  fd.append("hazard_id", hazardId);
  fd.append("file", file);
  let r;
  try {
    r = await fetch("/api/attachments", { method: "POST", body: fd, credentials: "same-origin",
      headers: { "X-CSRF-Token": state.me.csrf_token, "Accept": "application/json" } });
  } catch (e) { throw new Error("照片上传失败：网络中断，请重试"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(typeof data.detail === "string" ? data.detail : `照片上传失败（状态码 ${r.status}）`);
  return data.attachment_id;
}

function hzSteps(z, reload) {
  const box = h("div", { class: "hz-steps", "data-testid": "hz-steps" });
  const msg = h("p", { class: "error", "data-testid": "hz-error" });
  const act = (path, body) => async () => {
    msg.textContent = "";
    try { await hzPost(`/api/hazards/${encodeURIComponent(z.id)}/${path}`, { ...body(), expected_version: z.version }); await reload(); }
    catch (e) { msg.textContent = e.message; }
  };
  const can = new Set(z.can || []);
  if (can.has("register")) {
    const r = hzInput("hz-register-reason", { value: "登记入账" });
    box.append(h("div", { class: "panel hz-form" }, h("h3", {}, "登记"), hzField("说明", r),
      h("button", { "data-testid": "hz-register", onclick: act("register", () => ({ reason: r.value })) }, "登记")));
  }
  if (can.has("supervise")) {
    const due = new Date(Date.now() + 7 * 86400000);
    const mine = { township: z.township_name, department: (z.department_names || [])[0] }[state.me.role] || "区安委办";
    const unit = hzInput("hz-sup-unit", { value: mine, placeholder: "督办单位" });
    const deadline = hzInput("hz-sup-deadline", { type: "date", value: due.toISOString().slice(0, 10) });
    const owner = hzInput("hz-sup-owner", { placeholder: "整改责任人及电话" });
    const measures = hzInput("hz-sup-measures", { placeholder: "整改措施", maxlength: "2000" });
    const funds = hzInput("hz-sup-funds", { placeholder: "如：企业自筹2000元" });
    const plan = hzInput("hz-sup-plan", { placeholder: "整改期间的应急预案" });
    const reason = hzInput("hz-sup-reason", { value: "挂牌督办，限期整改" });
    box.append(h("div", { class: "panel hz-form", "data-testid": "hz-supervise-form" }, h("h3", {}, "挂牌督办（五落实）"),
      hzField("督办单位", unit), hzField("整改期限", deadline), hzField("责任人", owner), hzField("整改措施", measures),
      hzField("整改资金", funds), hzField("应急预案", plan), hzField("督办说明", reason),
      h("button", { "data-testid": "hz-supervise", onclick: act("supervise", () => ({
        supervisor: unit.value, owner: owner.value, measures: measures.value, funds: funds.value, plan: plan.value,
        reason: reason.value, deadline: deadline.value ? `${deadline.value}T23:59:00+08:00` : "" })) }, "挂牌督办")));
  }
  if (can.has("rectify")) {
    const note = hzInput("hz-rect-note", { placeholder: "整改情况：做了什么、何时完成", maxlength: "2000" });
    const ids = [];
    const thumbs = h("div", { class: "hz-photos", "data-testid": "hz-rect-photos" });
    const file = h("input", { type: "file", accept: "image/jpeg,image/png,image/webp", capture: "environment",
      "data-testid": "hz-rect-photo", onchange: async () => {
        msg.textContent = "";
        for (const f of file.files) {
          try {
            const id = await hzUpload(f, z.id);
            ids.push(id);
            thumbs.append(h("img", { src: `/api/attachments/${encodeURIComponent(id)}`, alt: `整改照片${ids.length}` }));
          } catch (e) { msg.textContent = e.message; }
        }
        file.value = "";
      } });
    box.append(h("div", { class: "panel hz-form", "data-testid": "hz-rectify-form" }, h("h3", {}, "整改"),
      hzField("整改照片", h("label", { class: "hz-file" }, "拍照或选择照片", file)), hzField("整改情况", note), thumbs,
      h("button", { "data-testid": "hz-rectify", onclick: act("rectify", () => ({ reason: note.value, attachment_ids: ids })) },
        "报告整改完成")));
  }
  if (can.has("review")) {
    const note = hzInput("hz-review-note", { placeholder: "复查意见", maxlength: "2000" });
    box.append(h("div", { class: "panel hz-form", "data-testid": "hz-review-form" }, h("h3", {}, "复查"), hzField("复查意见", note),
      h("button", { "data-testid": "hz-review-pass", onclick: act("review", () => ({ reason: note.value, passed: true })) }, "复查通过"), " ",
      h("button", { class: "secondary", "data-testid": "hz-review-fail",
        onclick: act("review", () => ({ reason: note.value, passed: false })) }, "复查不通过，退回整改")));
  }
  if (can.has("strike_off")) {
    const note = hzInput("hz-strike-note", { value: "复查合格，予以销号" });
    box.append(h("div", { class: "panel hz-form", "data-testid": "hz-strike-form" }, h("h3", {}, "销号"), hzField("销号说明", note),
      h("button", { "data-testid": "hz-strike", onclick: act("strike-off", () => ({ reason: note.value })) }, "销号")));
  }
  if (!box.childNodes.length) box.append(h("p", { class: "muted" }, z.phase === "struck_off" ? "已销号，闭环完成" : "当前无需您操作"));
  return h("div", {}, box, msg);
}

async function hzDetail(id) {
  const z = await api("GET", `/api/hazards/${encodeURIComponent(id)}`);
  const reload = () => hzDetail(id);
  const row = (k, v) => [h("div", {}, k), h("div", {}, v || "—")];
  const info = h("div", { class: "kv", "data-testid": "hz-info" },
    ...row("编号", z.id), ...row("场所", `${z.site_name}${z.township_name ? `（${z.township_name}）` : ""}`),
    ...row("领域", z.domain_zh), ...row("监管部门", z.department_names.join("、")), ...row("等级", hzGrade(z)),
    ...row("状态", h("b", { "data-testid": "hz-phase" }, z.phase_zh, z.overdue ? "（已逾期）" : "")),
    ...row("发现", fmtTime(z.found_at)), ...row("描述", z.description),
    ...(z.source_alert ? row("来源报警", h("a", { href: `#/alert/${encodeURIComponent(z.source_alert.id)}` },
      `${fmtTime(z.source_alert.starts_at)} 的报警`)) : []),
    ...(z.supervisor ? [...row("督办单位", z.supervisor), ...row("整改期限", fmtTime(z.deadline)), ...row("责任人", z.owner),
      ...row("整改措施", z.measures), ...row("整改资金", z.funds), ...row("应急预案", z.plan)] : []),
    ...(z.rectified_at ? [...row("整改情况", z.rectify_note), ...row("整改时间", fmtTime(z.rectified_at))] : []),
    ...(z.reviewed_at ? [...row("复查", `${z.reviewed_by} ${fmtTime(z.reviewed_at)}：${z.review_note}`)] : []));
  const photos = z.attachment_ids.length ? h("div", { class: "hz-photos", "data-testid": "hz-photos" },
    z.attachment_ids.map((a, i) => h("img", { src: `/api/attachments/${encodeURIComponent(a)}`, alt: `整改照片${i + 1}` }))) : null;
  const timeline = h("ul", { class: "timeline", "data-testid": "hz-timeline" }, z.transitions.map((t) =>
    h("li", { class: t.outcome === "rejected" ? "rejected" : "" }, h("b", {}, t.action_zh), ` ${fmtTime(t.at)} · ${t.actor_zh}`,
      t.reason ? ` · ${t.reason}` : "", t.words ? h("div", { class: "muted" }, t.words) : null)));
  show(h("p", {}, h("a", { href: "#/hazards" }, "← 返回隐患台账")),
    h("h2", {}, `隐患 · ${z.title}`),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, info, photos),
      h("div", {}, h("h3", {}, "可进行的操作"), hzSteps(z, reload))),
    h("div", { class: "panel" }, h("h3", {}, "处理过程"), timeline));
}

/* 转隐患 on the alert page (app.js's alert actions call this) */
function hzAlertAction(a) {
  if (state.me.role === "maintainer" || state.me.role === "vendor") return null;
  const wrap = h("span", { class: "hz-to" });
  const linked = h("span", { class: "hz-linked", "data-testid": "alert-hazards" });
  api("GET", `/api/alerts/${encodeURIComponent(a.id)}/hazards`).then((d) => linked.replaceChildren(...d.items.map((z) =>
    h("a", { href: `#/hazards/${encodeURIComponent(z.id)}` }, `已转隐患：${z.title}（${z.grade_zh}，${z.phase_zh}）`))))
    .catch(() => {});
  if (!HZ_FINDERS.includes(state.me.role)) { wrap.append(linked); return wrap; }
  const open = h("button", { class: "secondary", "data-testid": "btn-to-hazard", onclick: () => {
    const title = hzInput("to-hazard-title", { placeholder: "隐患名称，如：燃气软管老化" });
    const grade = h("select", { "data-testid": "to-hazard-grade" }, HZ_GRADES.slice(1).reverse().map(([v, t]) => h("option", { value: v }, t)));
    wrap.replaceChildren(title, grade, h("button", { "data-testid": "to-hazard-submit", onclick: async () => {
      if (!title.value.trim()) { toast("请填写隐患名称"); return; }
      try {
        const z = await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/to-hazard`, { title: title.value.trim(), grade: grade.value });
        toast("已转为隐患并登记");
        location.hash = `#/hazards/${encodeURIComponent(z.id)}`;
      } catch (e) { toast(e.message); }
    } }, "确定转隐患"));
  } }, "转隐患");
  wrap.append(open, linked);
  return wrap;
}

VIEWS.hazards = {
  load: async (arg) => (arg ? hzDetail(arg) : hzList()),
  allowed: (role) => role !== "maintainer" && role !== "vendor",
  alertAction: hzAlertAction,
};
