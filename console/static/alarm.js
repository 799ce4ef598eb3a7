/* 红色报警声光提示 (issue 14 item 7): while a red alarm is open and nobody has acknowledged it
   (确认), a bar flashes over every page and a two-tone alarm plays, generated with WebAudio (no
   audio file), until someone acknowledges it — here, on a phone, by SMS reply: the live stream
   brings the 确认. A 静音 toggle (remembered in this browser) stops the tone, never the flashing.
   Browsers allow sound only after a user gesture: until the operator taps 开启声音提示 once,
   the bar asks for that tap. A silenced (静默) or 测试 alarm does not ring.
   app.js hands every live stream to onLiveStream (one line there); the rest is here. */
"use strict";

const alarm = {
  ringing: new Map(),  // alert id → the alert, red and unacknowledged
  ctx: null,           // the AudioContext, made on the enabling tap
  muted: localStorage.getItem("hazmon.alarm.muted") === "1",
  timer: null,
  beeps: 0,
};
/* for the browser tests and the duty room's checks: sound started, tones played */
window.hazmonAlarm = { audioStarted: false, beeps: 0, ringing: 0 };

function alarmRinging(a) {
  return a.severity === "red" && !a.acked_at && a.phase !== "closed" && !a.suppressed_by && !isTest(a);
}
function alarmNote(a) {
  if (alarmRinging(a)) alarm.ringing.set(a.id, a); else alarm.ringing.delete(a.id);
}
/* every open red alarm the viewer sees, whatever the board's filter (a 消防 red rings while the
   board shows 燃气) */
async function alarmReload() {
  const d = await api("GET", "/api/board?limit=500");
  alarm.ringing.clear();
  for (const a of d.items) alarmNote(a);
  alarmRefresh();
}
function onLiveStream(es) {
  es.addEventListener("hello", () => alarmReload().catch(() => {}));
  es.addEventListener("resync", () => alarmReload().catch(() => {}));
  es.addEventListener("alert", (ev) => { alarmNote(JSON.parse(ev.data).alert); alarmRefresh(); });
}

async function alarmEnable() {
  try {
    if (!alarm.ctx) alarm.ctx = new (window.AudioContext || window.webkitAudioContext)();
    await alarm.ctx.resume();
    window.hazmonAlarm.audioStarted = alarm.ctx.state === "running";
  } catch (e) { toast("本浏览器无法播放提示音"); }
  alarmRefresh();
}
function alarmToggleMute() {
  alarm.muted = !alarm.muted;
  localStorage.setItem("hazmon.alarm.muted", alarm.muted ? "1" : "0");
  alarmRefresh();
}
/* one tone pair: 880 Hz then 660 Hz, a quarter second each */
function alarmBeep() {
  const ctx = alarm.ctx;
  if (!state.me) { alarm.ringing.clear(); alarmRefresh(); return; }  // signed out meanwhile
  if (!ctx || ctx.state !== "running") return;
  const t0 = ctx.currentTime;
  for (const [i, f] of [[0, 880], [1, 660]]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = f;
    gain.gain.setValueAtTime(0.0001, t0 + i * 0.3);
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + i * 0.3 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.3 + 0.28);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0 + i * 0.3);
    osc.stop(t0 + i * 0.3 + 0.3);
  }
  window.hazmonAlarm.beeps = ++alarm.beeps;
}
function alarmBar() {
  let bar = $("alarm-bar");
  if (!bar) {
    bar = h("div", { id: "alarm-bar", class: "alarm-bar hidden", role: "alert", "data-testid": "alarm-bar" });
    document.querySelector("header.top").after(bar);
  }
  return bar;
}
function alarmRefresh() {
  const n = alarm.ringing.size;
  const playing = n > 0 && !alarm.muted && !!alarm.ctx && alarm.ctx.state === "running";
  window.hazmonAlarm.ringing = n;
  document.body.classList.toggle("alarm-on", n > 0);
  document.body.dataset.alarmSound = playing ? "playing" : "off";
  if (playing && !alarm.timer) { alarmBeep(); alarm.timer = setInterval(alarmBeep, 1500); }
  if (!playing && alarm.timer) { clearInterval(alarm.timer); alarm.timer = null; }
  const bar = alarmBar();
  bar.classList.toggle("hidden", n === 0);
  if (!n) { bar.replaceChildren(); return; }
  const newest = [...alarm.ringing.values()].sort((a, b) => (a.starts_at < b.starts_at ? 1 : -1))[0];
  const needTap = !alarm.muted && !(alarm.ctx && alarm.ctx.state === "running");
  bar.replaceChildren(
    h("a", { href: `#/alert/${encodeURIComponent(newest.id)}`, class: "alarm-text",
      "data-testid": "alarm-text" },
      `红色报警未确认 ${n} 条：${siteSummary(newest)}（${fmtTime(newest.starts_at)}）`),
    needTap ? h("button", { class: "alarm-enable", "data-testid": "alarm-enable", onclick: alarmEnable },
      "开启声音提示") : null,
    h("button", { class: "secondary", "data-testid": "alarm-mute",
      "aria-pressed": alarm.muted ? "true" : "false",
      onclick: alarmToggleMute }, alarm.muted ? "已静音（点击恢复声音）" : "静音"));
}
