/* 现场页 (issue 14): the phone page of a 网格员, a 维保单位 and a business — their open alarms and
   work orders, one alarm with where it is, the latest readings and what to do, and the steps on
   site: 确认, 接单, 到场签到 (the browser's position when granted), 反馈 with photos (camera input,
   preview, upload progress), 申请办结. Loaded after app.js (h, $, api, show, toast, fmtTime, state).
   The server says every error in Chinese; the page shows it as it is. */
"use strict";

const FIELD_ROLES = ["grid_member", "maintainer", "business"];
const ORDER_STATE_ZH = { issued: "待接单", accepted: "已接单", arrived: "已到场", fed_back: "已反馈", closed: "已办结",
  returned: "已退回" };
const fieldState = { photos: [], uploading: 0 };

/* work orders (H2's /api/workorders): until that endpoint exists, a 404 means "no orders" */
async function fieldOrders(query) {
  try { return (await api("GET", `/api/workorders?${query}`)).items || []; } catch (e) {
    if (e.status === 404) return [];
    throw e;
  }
}
function fieldSev(sev) { return h("span", { class: `tag sev-${sev}` }, `${SEV_ZH[sev] || ""}报警`); }
function fieldWhere(a) {
  return [a.township_name, a.village_name].filter(Boolean).join(" · ");
}

/* the page the person is on now: a slower answer for the page they left must not replace it */
function fieldStale(hash) { return location.hash !== hash; }

async function fieldList() {
  const here = location.hash;
  const [alerts, orders] = await Promise.all([api("GET", "/api/field/alerts"), fieldOrders("state=open")]);
  if (fieldStale(here)) return;
  const orderCards = orders.map((o) => h("a", { class: `fcard${o.overdue ? " overdue" : ""}`,
    "data-testid": "field-order", href: `#/field/${encodeURIComponent(o.alert_id)}` },
  h("div", { class: "fsite" }, o.alert_title || "工单"),
  h("div", { class: "fmeta" },
    `${o.state_zh || ORDER_STATE_ZH[o.state] || "处理中"} · 期限 ${fmtTime(o.deadline)}`,
    o.overdue ? h("b", { class: "late" }, " 已超期") : null)));
  const alertCards = alerts.items.map((a) => h("a", { class: `fcard sev-line-${a.severity}`,
    "data-testid": "field-alert", href: `#/field/${encodeURIComponent(a.id)}` },
  h("div", { class: "fsite" }, a.site_name, " ", fieldSev(a.severity)),
  h("div", {}, whatHappened(a)),
  h("div", { class: "fmeta" }, a.address || "", a.address ? " · " : "", fieldWhere(a)),
  h("div", { class: "fmeta" }, `${a.phase_zh} · ${fmtTime(a.starts_at)}`, a.acked_at ? " · 已确认" : " · 未确认")));
  show(h("div", { class: "field", "data-testid": "field-list" },
    h("h2", {}, "我的待办"),
    h("h3", {}, `工单 · ${orders.length}`),
    orderCards.length ? orderCards : h("p", { class: "muted" }, "暂无待办工单"),
    h("h3", {}, `报警 · ${alerts.total}`),
    alertCards.length ? alertCards : h("p", { class: "muted" }, "暂无未办结的报警")));
}

/* the browser's position, or null when refused, unavailable or too slow (then said so) */
function fieldPosition() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) { resolve(null); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy }),
      () => resolve(null), { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
  });
}

/* a photo over 8 MB (a 48-megapixel camera's) is scaled to 2560 px on the phone first: the server
   takes 10 MB at most, and the signal on site is often poor; smaller ones go as they are */
async function fieldShrink(file) {
  if (file.size <= 8 * 1024 * 1024 || !window.createImageBitmap) return file;
  try {
    const bmp = await createImageBitmap(file, { imageOrientation: "from-image" });
    const k = Math.min(1, 2560 / Math.max(bmp.width, bmp.height));
    const canvas = h("canvas", { width: Math.round(bmp.width * k), height: Math.round(bmp.height * k) });
    canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve) => canvas.toBlob((b) => resolve(b || file), "image/jpeg", 0.85));
  } catch (e) { return file; }  // not decodable here: the server says what is wrong with it
}

/* one photo: multipart POST with upload progress (fetch has none) */
function fieldUpload(file, alertId, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/attachments");
    xhr.setRequestHeader("X-CSRF-Token", state.me.csrf_token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
    xhr.onerror = () => reject(new Error("上传中断：请检查网络后重新上传"));
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status === 201 && data) resolve(data);
      else {
        const detail = data && typeof data.detail === "string" ? data.detail : "";
        reject(new Error(detail || `照片上传失败（状态码 ${xhr.status}）`));
      }
    };
    const form = new FormData();
    form.append("alert_id", alertId);
    form.append("file", file, "photo");
    xhr.send(form);
  });
}

function fieldPhotoPicker(alertId) {
  fieldState.photos = [];
  const previews = h("div", { class: "previews", "data-testid": "photo-previews" });
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true,
    class: "hidden", "data-testid": "photo-input" });
  input.addEventListener("change", () => {
    for (const file of input.files) {
      const bar = h("progress", { max: "100", value: "0" });
      const status = h("span", { class: "muted" }, "上传中…");
      const img = h("img", { alt: "现场照片预览" });
      const reader = new FileReader();
      // a data: address: the page's policy (img-src 'self' data:) allows no blob:
      reader.onload = () => { img.src = reader.result; };
      reader.readAsDataURL(file);
      const item = h("div", { class: "preview", "data-testid": "photo-preview" }, img, bar, status);
      previews.append(item);
      fieldState.uploading += 1;
      const progress = (f) => { bar.value = Math.round(f * 100); };
      fieldShrink(file).then((small) => fieldUpload(small, alertId, progress))
        .then((r) => {
          fieldState.photos.push(r.attachment_id);
          bar.value = 100;
          status.textContent = "已上传";
          item.dataset.uploaded = "1";
        })
        .catch((e) => {
          status.textContent = e.message;
          status.className = "error";
          item.classList.add("failed");
        })
        .finally(() => { fieldState.uploading -= 1; });
    }
    input.value = "";
  });
  const pick = h("button", { type: "button", class: "secondary big", "data-testid": "photo-pick",
    onclick: () => input.click() }, "拍照或选择照片");
  return h("div", {}, pick, input, previews);
}

async function fieldAct(msg, fn, okText, reload) {
  msg.textContent = "";
  try {
    const r = await fn();
    toast((r && r.message) || okText);
    await reload();
  } catch (e) { msg.textContent = e.message; toast(e.message); }
}

/* the steps on site, as buttons: 确认, 接单, 到场签到, 反馈 (with photos), 申请办结 */
function fieldSteps(a, order, msg, reload) {
  const enc = encodeURIComponent(a.id);
  const orderPath = order ? `/api/workorders/${encodeURIComponent(order.order_id)}` : "";
  const can = (step) => !!order && (order.actions || []).includes(step);
  const steps = h("div", { class: "steps", "data-testid": "field-steps" });
  if (!a.acked_at) {
    steps.append(h("button", { class: "big", "data-testid": "field-ack", onclick: () => fieldAct(msg,
      () => api("POST", `/api/alerts/${enc}/acknowledge`, {}), "已确认收到", reload) }, "确认收到"));
  }
  if (can("accept")) {
    steps.append(h("button", { class: "big", "data-testid": "field-accept", onclick: () => fieldAct(msg,
      () => api("POST", `${orderPath}/accept`, {}), "已接单", reload) }, "接单"));
  }
  const checkedIn = a.checkins.length > 0;
  if (order ? can("arrive") : a.phase !== "feedback") {
    const arrival = !order && a.may_arrive;  // 维保到场 at a 困人 alarm: stops its timer
    steps.append(h("button", { class: checkedIn && !order ? "secondary big" : "big",
      "data-testid": "field-checkin",
      onclick: () => fieldAct(msg, async () => {
        const pos = await fieldPosition();
        const body = pos || { lat: null, lon: null, accuracy_m: null };
        let r;
        if (order) r = await api("POST", `${orderPath}/arrive`, body);
        else if (arrival) r = await api("POST", `/api/alerts/${enc}/arrival`, { ...body, note: "" });
        else r = await api("POST", `/api/alerts/${enc}/checkin`, body);
        if (r && r.applied === false) throw new Error(r.problem || "签到未完成");
        return { message: pos ? `已签到（定位精度约${Math.round(pos.accuracy_m)}米）`
          : "未获得定位授权：已签到，但未记录位置" };
      }, "已签到", reload) }, arrival ? "维保到场签到" : checkedIn && !order ? "再次签到" : "到场签到"));
  }
  return steps;
}

function fieldFeedback(a, order, msg, reload) {
  const enc = encodeURIComponent(a.id);
  const note = h("textarea", { rows: "3", maxlength: "2000", "data-testid": "field-note",
    placeholder: "现场情况和处置结果，例如：已关阀通风，浓度恢复正常" });
  const send = (requestClose) => fieldAct(msg, async () => {
    if (!note.value.trim()) throw new Error("请填写反馈内容");
    if (fieldState.uploading) throw new Error("照片还在上传，请稍候");
    const body = { note: note.value.trim(), attachment_ids: [...fieldState.photos] };
    if (order) {
      await api("POST", `/api/workorders/${encodeURIComponent(order.order_id)}/feedback`,
        { ...body, request_close: requestClose, expected_version: order.version });
    } else {
      await api("POST", `/api/alerts/${enc}/feedback`, { ...body, expected_version: a.version });
    }
    return { message: requestClose ? "已反馈并申请办结，等待中心审核" : "反馈已提交" };
  }, "反馈已提交", reload);
  return h("div", { class: "panel", "data-testid": "field-feedback" }, h("h3", {}, "反馈"), note,
    fieldPhotoPicker(a.id),
    h("button", { class: order ? "secondary big" : "big", "data-testid": "field-send",
      onclick: () => send(false) },
      order ? "提交反馈" : "提交反馈（等待中心办结）"),
    order ? h("button", { class: "big", "data-testid": "field-close-request", onclick: () => send(true) },
      "反馈并申请办结") : null);
}

async function fieldAlert(id) {
  const here = location.hash;
  const [a, orders] = await Promise.all([api("GET", `/api/field/alerts/${encodeURIComponent(id)}`),
    fieldOrders(`state=all&alert_id=${encodeURIComponent(id)}`)]);
  if (fieldStale(here)) return;
  const order = orders.find((o) => o.state !== "closed") || null;
  const reload = () => fieldAlert(id);
  const msg = h("p", { class: "error", "data-testid": "field-error", role: "alert" });
  const closed = a.phase === "closed";
  const canFeedback = !closed && (order ? (order.actions || []).includes("feedback") : a.may_feedback);
  const stateText = order
    ? `${order.state_zh || ORDER_STATE_ZH[order.state] || "处理中"}${order.close_requested ? "（已申请办结）" : ""}`
    : a.phase_zh;
  const readings = a.readings.length ? h("ul", { class: "readings", "data-testid": "field-readings" },
    a.readings.map((r) => h("li", {}, h("span", {}, r.metric_zh), h("b", {}, `${r.value}${r.unit || ""}`),
      h("span", { class: "muted" }, fmtTime(r.ts))))) : h("p", { class: "muted" }, "暂无读数");
  const done = [
    ...a.checkins.map((c) => h("li", {}, `${c.kind_zh} ${fmtTime(c.at)}`,
      c.located ? `（定位精度约${Math.round(c.accuracy_m)}米）` : "（未记录位置）")),
    order && order.arrived_at ? h("li", {}, `工单到场签到 ${fmtTime(order.arrived_at)}`,
      order.arrived_accuracy_m !== null ? `（定位精度约${Math.round(order.arrived_accuracy_m)}米）` : "（未记录位置）")
      : null,
    a.feedback && !(order && order.feedback_note === a.feedback.note)  // an order's 反馈 is the alarm's too
      ? h("li", {}, `反馈 ${fmtTime(a.feedback.at)}：${a.feedback.note}`) : null,
    order && order.feedback_note
      ? h("li", {}, `工单反馈 ${fmtTime(order.fed_back_at)}：${order.feedback_note}`) : null,
  ].filter(Boolean);
  const kv = h("div", { class: "panel kv" },
    h("div", {}, "地址"), h("div", { "data-testid": "field-address" }, a.address || "—"),
    h("div", {}, "镇街/村"), h("div", {}, fieldWhere(a) || "—"),
    h("div", {}, "设备"),
    h("div", {}, [`${a.domain_zh || ""}设备`, a.device_location].filter(Boolean).join(" · ")),
    h("div", {}, "发生"), h("div", {}, fmtTime(a.starts_at)),
    h("div", {}, "状态"),
    h("div", { "data-testid": "field-state" }, stateText, a.acked_at ? " · 已确认" : " · 未确认"),
    order && order.state === "returned" ? h("div", {}, "退回原因") : null,
    order && order.state === "returned" ? h("div", { class: "late" }, order.return_reason || "请重新反馈") : null,
    order ? h("div", {}, "工单期限") : null,
    order ? h("div", { class: order.overdue ? "late" : "" }, fmtTime(order.deadline),
      order.overdue ? " 已超期" : "") : null);
  show(h("div", { class: "field", "data-testid": "field-alert-page" },
    h("p", {}, h("a", { href: "#/field", class: "back" }, "← 我的待办")),
    h("h2", {}, a.site_name, " ", fieldSev(a.severity)),
    h("p", { class: "what", "data-testid": "field-what" }, a.what_zh),
    kv,
    h("div", { class: "panel todo", "data-testid": "field-todo" }, h("h3", {}, "处置要求"),
      h("p", {}, a.what_to_do)),
    h("div", { class: "panel" }, h("h3", {}, "最新读数"), readings),
    closed ? h("p", { class: "muted", "data-testid": "field-closed" }, "该报警已办结")
      : fieldSteps(a, order, msg, reload),
    msg,
    canFeedback ? fieldFeedback(a, order, msg, reload) : null,
    a.photos.length ? h("div", { class: "panel" }, h("h3", {}, `现场照片 · ${a.photos.length}`),
      h("div", { class: "previews", "data-testid": "field-photos" },
        a.photos.map((p) => h("img", { src: p.url, alt: "现场照片", loading: "lazy" })))) : null,
    done.length ? h("div", { class: "panel" }, h("h3", {}, "处置记录"),
      h("ul", { "data-testid": "field-done" }, done)) : null,
    h("p", {}, h("a", { href: `#/alert/${encodeURIComponent(a.id)}` }, "查看完整报警详情"))));
}

VIEWS.field = {
  allowed: (role) => FIELD_ROLES.includes(role),
  load: async (arg) => (arg ? fieldAlert(arg) : fieldList()),
  /* at sign-in on a phone-sized screen: the field page is where these roles land, and the SMS
     link's alarm (/#/alert/<id>, console/routes/otp_pages.py) opens here */
  landing: (role) => {
    if (!FIELD_ROLES.includes(role) || !window.matchMedia("(max-width: 700px)").matches) return;
    const m = (location.hash || "").match(/^#\/alert\/([^/]+)$/);
    if (m) location.hash = `#/field/${m[1]}`;
    else if (!location.hash || location.hash === "#/") location.hash = "#/field";
  },
};
