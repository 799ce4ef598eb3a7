/* The console's charts (issue 14: axes in words with units): the readings of an alarm and the
   KPI bars. Plain SVG built with h() (app.js); loaded before app.js, called once it is loaded. */
"use strict";

function chart(readings, startIso, names) {
  const W = 520, H = 200, P = 34;
  if (!readings.length) return h("p", { class: "muted" }, "无读数");
  const metric = readings[0].metric;
  const pts = readings.filter((r) => r.metric === metric && r.value !== null);
  const xs = pts.map((r) => new Date(r.ts).getTime()), ys = pts.map((r) => r.value);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1, y0 = Math.min(0, ...ys), y1 = Math.max(...ys, 1);
  const sx = (x) => P + ((x - x0) / Math.max(x1 - x0, 1)) * (W - 2 * P);
  const sy = (y) => H - P - ((y - y0) / Math.max(y1 - y0, 1e-9)) * (H - 2 * P);
  const start = new Date(startIso).getTime();
  return h("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-testid": "chart" },
    h("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#999" }),
    h("line", { x1: P, y1: P, x2: P, y2: H - P, stroke: "#999" }),
    start >= x0 && start <= x1 ? h("line", { x1: sx(start), y1: P, x2: sx(start), y2: H - P, stroke: "#d62728", "stroke-dasharray": "4 3" }) : null,
    h("polyline", { fill: "none", stroke: "#0b5cad", "stroke-width": 2, points: pts.map((r, i) => `${sx(xs[i])},${sy(ys[i])}`).join(" ") }),
    // the axis names the metric in words with its unit: 可燃气体浓度（%LEL）
    h("text", { x: P, y: P - 8, "font-size": 12, "data-testid": "chart-axis" }, `${names[metric] || "读数"} 最大 ${Math.max(...ys).toFixed(1)}`),
    h("text", { x: P - 4, y: H - P + 16, "font-size": 11 }, fmtTime(pts[0].ts)),
    h("text", { x: W - P - 90, y: H - P + 16, "font-size": 11 }, fmtTime(pts[pts.length - 1].ts)));
}

function bars(rows) {
  // the axis says what is measured and in which unit: 报警处置率（%）, one bar per 镇街
  const W = 760, bh = 22, P = 120, BW = 440, T = 22;
  return h("svg", { width: W, height: rows.length * (bh + 8) + 10 + T, viewBox: `0 0 ${W} ${rows.length * (bh + 8) + 10 + T}`,
    "data-testid": "kpi-chart" },
    h("text", { x: 4, y: 14, "font-size": 12, fill: "#555" }, "镇街"),
    h("text", { x: P, y: 14, "font-size": 12, fill: "#555", "data-testid": "kpi-axis" }, "报警处置率（%，办结数/报警数）"),
    h("text", { x: P + BW - 30, y: 14, "font-size": 12, fill: "#555" }, "100%"),
    rows.map((r, i) => h("g", { transform: `translate(0 ${T})` },
      h("text", { x: 4, y: i * (bh + 8) + 16, "font-size": 13 }, r.name),
      h("rect", { x: P, y: i * (bh + 8), width: BW, height: bh, fill: "#eef2f6" }),
      h("rect", { x: P, y: i * (bh + 8), width: BW * (r.closure_rate || 0), height: bh, fill: "#2ca02c" }),
      h("text", { x: P + BW + 10, y: i * (bh + 8) + 16, "font-size": 13 },
        `${pct(r.closure_rate)}（办结 ${r.alerts_closed} / 报警 ${r.alerts}）`))));
}
