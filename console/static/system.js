/* 监测系统运行状态 (issue 20): the pipeline's own health, from GET /api/system/status.
   Loaded after app.js (it uses h, api, show, state, fmtTime). Refreshes every 5 s while the view
   is open and the tab visible; each refresh is one short request, so no tab holds a database
   connection (the console keeps one answer for every viewer for 2 s, console/routes/system.py). */
"use strict";

const SYSTEM_REFRESH_MS = 5000;
const SYS_STATE_CLASS = { ok: "ok", late: "late", never: "late", down: "down", broken: "down" };

function sysTag(stateKey, words) {
  return h("span", { class: `sys-tag ${SYS_STATE_CLASS[stateKey] || "late"}`, "data-testid": "sys-state" }, words);
}

function sysStage(s) {
  return h("div", { class: `sys-card ${SYS_STATE_CLASS[s.state]}`, "data-testid": "sys-stage", "data-stage": s.stage },
    h("div", { class: "sys-head" }, h("b", {}, s.name), sysTag(s.state, s.state_zh)),
    s.instances.map((i) => h("div", { class: "sys-line", title: `进程实例 ${i.instance}`, "data-verbatim-title": "" },
      s.instances.length > 1 ? h("span", { class: "sys-name" }, i.label) : null,
      h("span", {}, "心跳 ", h("b", { "data-testid": "sys-ago" }, i.ago)),
      s.instances.length > 1 || i.state !== s.state ? sysTag(i.state, i.state_zh) : null,
      i.lag !== null && i.lag !== undefined ? h("span", { "data-testid": "sys-lag" }, `积压 ${i.lag.toLocaleString("zh-CN")} 条`) : null,
      i.facts.length ? h("span", { class: "muted", title: i.error || null }, i.facts.join(" · ")) : null)));
}

function sysCanary(c) {
  const hops = c.hops.map((x) => `${x.hop} ${x.ms.toLocaleString("zh-CN")} 毫秒`).join(" · ");
  return h("div", { class: `sys-card ${SYS_STATE_CLASS[c.state]}`, "data-testid": "sys-canary" },
    h("div", { class: "sys-head" }, h("b", {}, c.label), sysTag(c.state, c.state_zh)),
    h("div", { class: "sys-line" }, h("span", {}, "最近到达 ", h("b", { "data-testid": "sys-ago" }, c.ago)),
      c.arrived_at ? h("span", { class: "muted" }, fmtTime(c.arrived_at)) : null),
    c.state === "broken" ? h("div", { class: "sys-line sys-broken", "data-testid": "sys-hop" },
      `中断于：${c.hop}`, c.broken_since ? `（${fmtTime(c.broken_since)} 起）` : "") : null,
    hops ? h("div", { class: "sys-line muted" }, hops) : null);
}

function sysWatchdog(w) {
  return h("div", { class: `sys-card wide ${SYS_STATE_CLASS[w.state]}`, "data-testid": "sys-watchdog",
    title: `进程实例 ${w.instance}`, "data-verbatim-title": "" },
    h("div", { class: "sys-head" }, h("b", {}, w.label), sysTag(w.state, w.verdict_zh)),
    h("div", { class: "sys-line" }, h("span", {}, "最近检查 ", h("b", { "data-testid": "sys-ago" }, w.ago)),
      h("span", { class: "muted" }, fmtTime(w.checked_at))),
    w.paging ? h("div", { class: "sys-line sys-broken", "data-testid": "sys-paging" },
      `正在呼叫值班员：${w.paging}`, w.paging_since ? `（${fmtTime(w.paging_since)} 起）` : "") : null,
    h("ul", { class: "sys-findings", "data-testid": "sys-findings" }, w.findings.map((f) =>
      h("li", { class: f.unknown ? "unknown" : f.ok ? "ok" : "bad", title: f.raw || null },
        h("span", { class: "sys-name" }, f.name),
        h("span", { class: "sys-fstate" }, f.state_zh, f.paged ? "（已呼叫值班员）" : ""),
        f.detail ? h("span", { class: "muted" }, f.detail) : null))));
}

function renderSystem(d) {
  const th = d.thresholds;
  const nodes = [
    h("h2", {}, "监测系统运行状态"),
    h("div", { class: `sys-banner ${SYS_STATE_CLASS[d.state]}`, "data-testid": "sys-banner" },
      h("b", {}, d.words), h("span", {}, `更新于 ${fmtTime(d.as_of)} · 每 5 秒自动刷新`)),
    d.problems.length ? h("ul", { class: "sys-problems", "data-testid": "sys-problems" },
      d.problems.map((x) => h("li", {}, x))) : null,
    h("h3", {}, "各环节心跳"),
    d.stages.length ? h("div", { class: "sys-grid", "data-testid": "sys-stages" }, d.stages.map(sysStage))
      : h("p", { class: "muted" }, "没有任何服务上报心跳"),
    d.missing.length ? h("p", { class: "muted", "data-testid": "sys-missing" }, `未上报心跳：${d.missing.join("、")}`) : null,
    h("p", { class: "muted sys-rule" }, `心跳超过 ${th.beat_late_s} 秒为延迟，超过 ${th.beat_down_s} 秒为停止；`
      + "接入网关以其转发的金丝雀数据判断。"),
    h("h3", {}, "监测链路（金丝雀数据，按接入格式）"),
    d.canaries.length ? h("div", { class: "sys-grid", "data-testid": "sys-canaries" }, d.canaries.map(sysCanary))
      : h("p", { class: "muted" }, "未登记金丝雀设备"),
    h("p", { class: "muted sys-rule" }, `金丝雀每 ${d.canary_every_s} 秒发送一次；超过 ${th.canary_late_s} 秒未到达为延迟，`
      + `超过 ${th.canary_broken_s} 秒为中断（告警服务报监测链路中断）。`),
    h("h3", {}, "值守看门狗"),
    d.watchdogs.length ? h("div", { class: "sys-grid", "data-testid": "sys-watchdogs" }, d.watchdogs.map(sysWatchdog))
      : h("p", { class: "muted", "data-testid": "sys-no-watchdog" }, "看门狗未运行（无检查记录）"),
  ];
  show(...nodes.filter(Boolean));
}

async function loadSystem() {
  clearTimeout(loadSystem.timer);
  if (state.view !== "system") return;
  try {
    if (!document.hidden) {
      const d = await api("GET", "/api/system/status");
      if (state.view !== "system") return;  // the operator moved on meanwhile
      renderSystem(d);
    }
  } catch (e) {
    if (state.view !== "system") return;
    if (!$("main").querySelector("[data-testid=sys-banner]")) throw e;
    toast(`刷新失败：${e.message}`);  // keep the last answer on screen, try again
  }
  loadSystem.timer = setTimeout(() => loadSystem().catch(() => {}), SYSTEM_REFRESH_MS);
}
