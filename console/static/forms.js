/* Helpers of the form pages (issue 14 item 6: reports.js 报备, keyperiods.js 重点时段, broadcasts.js
   公益短信, matrix.js 责任矩阵). Loaded after app.js (h, api, toast). Times are typed and shown in
   China Standard Time whatever the browser's zone. */
"use strict";

const CST_MS = 8 * 3600 * 1000;
/* a Date as the value of an <input type=datetime-local>, in China time */
function cstInputValue(d) { return new Date(d.getTime() + CST_MS).toISOString().slice(0, 16); }
/* an <input type=datetime-local> value (China time) as an ISO instant for the API */
function cstIso(value) { return value ? `${value}:00+08:00` : null; }
/* one labelled field of a form: the label above, the control, an optional hint under it */
function formField(label, control, hint, wide) {
  return h("label", { class: wide ? "ff wide" : "ff" }, h("span", {}, label), control,
    hint ? h("small", { class: "muted" }, hint) : null);
}
/* checkboxes of [value, words] pairs; .values() gives the ticked values */
function checkList(testid, pairs, checked) {
  const boxes = pairs.map(([v, words]) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: v, "data-testid": `${testid}-${v}`, checked: (checked || []).includes(v) }), words));
  const el = h("div", { class: "checks", "data-testid": testid }, boxes);
  el.values = () => [...el.querySelectorAll("input:checked")].map((i) => i.value);
  return el;
}
/* run an action: its Chinese error in errEl (and a toast), or the success toast; the result or null */
async function formAct(fn, okWords, errEl) {
  if (errEl) errEl.textContent = "";
  try {
    const r = await fn();
    if (okWords) toast(okWords);
    return r;
  } catch (e) {
    if (errEl) errEl.textContent = e.message;
    toast(e.message);
    return null;
  }
}
/* show() of the nodes given, leaving out the absent ones (a section a role does not get) */
function showAll(...nodes) { show(...nodes.filter((n) => n !== null && n !== undefined && n !== false)); }
