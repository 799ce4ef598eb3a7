/* The console's words (issue 14): the codes the page itself turns into text, in Chinese. The
   server sends most texts already in words (*_zh fields, console/words.py); these tables serve
   where the page builds text itself (tiles, tags, tables) and as the fallback. Loaded before
   app.js. A code no table knows shows as a neutral word, never as the code. */
"use strict";

const SEV = ["red", "orange", "yellow", "blue"];
const SEV_ZH = { red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色" };
const PHASE_ZH = { alarm: "报警", verified: "已研判", dispatched: "已派发", handling: "处置中", feedback: "已反馈", closed: "办结" };
const TIME_FLAG_ZH = { late: "设备延迟上报", clock_future: "设备时间超前", clock_old: "设备时间异常" };
const VERDICT_ZH = { real: "真实警情", false: "误报", test: "测试", fault: "设备故障" };
const ACTION_ZH = { fire: "报警", resolve: "恢复", verify: "研判", acknowledge: "确认", dispatch: "派发", handle: "处置",
  feedback: "反馈", close: "办结", escalate: "升级", suppress: "静默", unsuppress: "解除静默", reopen: "重开",
  arrival: "维保到场", arrival_overdue: "维保到场超时", notify: "通知" };
const DOMAIN_ZH = { gas: "燃气", elevator: "电梯", fire: "消防" };
const STATE_COLOUR = { red: "#d62728", orange: "#f28e1c", yellow: "#e5c100", blue: "#1f77b4", offline: "#8c8c8c", normal: "#2ca02c" };
const NOTICE_ZH = { reminder: "工作提醒单", warning: "风险警示单", supervision: "问题督办单", accountability: "问责建议单" };
const PROBLEM_ZH = { offline: "离线", never_seen: "从未上线", stale: "数据停更", low_battery: "电量低" };
const NOTIFY_STATUS_ZH = { pending: "待发送", sending: "发送中", sent: "已发送", delivered: "已送达", failed: "发送失败",
  suppressed: "已去重", undeliverable: "未送达" };
const CHANNEL_ZH = { sms: "短信", voice: "语音呼叫", wecom: "企业微信群", dingtalk: "钉钉群", console: "控制台", webhook: "对接系统推送" };
const HAZARD_ZH = { found: "排查发现", registered: "已建台账", supervised: "挂牌督办", rectified: "已整改", struck_off: "已销号" };

const ROLE_ZH = { centre: "中心值班员", admin: "系统管理员", department: "行业部门", township: "镇街", business: "企业",
  vendor: "设备厂商", grid_member: "网格员", maintainer: "维保单位" };
const MATRIX_ACTION_ZH = { "matrix.create": "新增", "matrix.update": "修改", "matrix.delete": "删除" };
/* an actor code the server did not name (silences, matrix edits; the alert page gets actor_zh,
   console/actors.py): system → 系统, centre:duty01 → duty01（中心值班员） */
function actorZh(actor) {
  if (!actor || actor === "system") return "系统";
  const [kind, ...rest] = actor.split(":");
  return ROLE_ZH[kind] ? `${rest.join(":")}（${ROLE_ZH[kind]}）` : "外部系统";
}

const NOTICE_STATUS_ZH = { open: "待答复", answered: "已答复", superseded: "已由下一单接续", closed: "已办结" };
const DIMENSION_ZH = { total: "全区", township: "镇街", department: "部门", domain: "领域" };
const SILENCE_STATUS_ZH = { active: "生效中", pending: "未开始", expired: "已结束" };
/* a code in words, or a neutral word: never the code itself */
function zh(table, code, otherwise) { return (table && table[code]) || otherwise || "—"; }
