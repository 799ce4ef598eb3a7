/* 辖区地图 (issue 15 item 6): the district as SVG, no map tiles — township boundaries with their
   names (GET /api/map's boundaries, the registry's boundaries.geojson), villages lighter, sites by
   报警状态 or by 风险等级 (a toggle; GET /api/risk/sites), 区域预警 as shaded townships
   (GET /api/area-warnings), sites clustered when zoomed out (a count and the worst state).
   Zoom and pan with the buttons, the wheel and dragging. Loaded after app.js (h, api, show). */
"use strict";

const MAP_W = 900, MAP_H = 600;
const MAP_ALARM = { red: "红色报警", orange: "橙色报警", yellow: "黄色报警", blue: "蓝色报警",
  offline: "设备离线", normal: "正常" };
const MAP_ALARM_RANK = { normal: 0, offline: 1, blue: 2, yellow: 3, orange: 4, red: 5 };
const MAP_RISK = { red: "重大风险（红）", orange: "较大风险（橙）", yellow: "一般风险（黄）",
  blue: "低风险（蓝）", none: "未评级" };
const MAP_RISK_RANK = { none: 0, blue: 1, yellow: 2, orange: 3, red: 4 };
const MAP_RISK_COLOUR = { red: "#d62728", orange: "#f28e1c", yellow: "#e5c100", blue: "#1f77b4",
  none: "#b5bcc6" };
const MAP_WARN_FILL = { red: "#d62728", orange: "#f28e1c", yellow: "#f2d43d" };
const MAP_WARN_ZH = { red: "红色预警", orange: "橙色预警", yellow: "黄色预警" };
const MAP_TOWN_FILL = ["#e8f0fb", "#eef6ea", "#fbf1e4", "#f1ecf8", "#e6f4f4", "#f8eaee"];
const mapView = { k: 1, x: 0, y: 0, mode: "alarm" };
let mapShown = null;  // the drawn map, redrawn when the window changes size (a phone turned)
window.addEventListener("resize", () => {
  if (mapShown && state.view === "map" && mapShown.svg.isConnected) mapDraw(mapShown);
});

/* a GET that answers null while the endpoint is not there yet (404) or not the reader's (403) */
async function mapOptional(path) {
  try { return await api("GET", path); } catch (e) { return null; }
}

function mapRings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  return geometry.type === "MultiPolygon" ? geometry.coordinates : [];
}

/* lon/lat → the map's own pixels (before zoom): equirectangular, shrunk by cos(lat) across */
function mapProjection(points) {
  const lons = points.map((p) => p[0]), lats = points.map((p) => p[1]);
  const lo0 = Math.min(...lons), lo1 = Math.max(...lons), la0 = Math.min(...lats), la1 = Math.max(...lats);
  const c = Math.cos((la0 + la1) / 2 * Math.PI / 180), P = 24;
  const k = Math.min((MAP_W - 2 * P) / Math.max((lo1 - lo0) * c, 1e-6),
    (MAP_H - 2 * P) / Math.max(la1 - la0, 1e-6));
  const ox = (MAP_W - (lo1 - lo0) * c * k) / 2, oy = (MAP_H - (la1 - la0) * k) / 2;
  return (lon, lat) => [ox + (lon - lo0) * c * k, MAP_H - oy - (lat - la0) * k];
}

/* the centre of a polygon's outer ring (area-weighted), for its name */
function mapCentroid(ring) {
  let a = 0, x = 0, y = 0;
  for (let i = 0; i < ring.length - 1; i++) {
    const [x0, y0] = ring[i], [x1, y1] = ring[i + 1], f = x0 * y1 - x1 * y0;
    a += f; x += (x0 + x1) * f; y += (y0 + y1) * f;
  }
  return a ? [x / (3 * a), y / (3 * a)] : ring[0];
}

function mapPath(rings, proj) {
  return rings.map((poly) => poly.map((ring) => ring.map(([lon, lat], i) => {
    const [x, y] = proj(lon, lat);
    return `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
  }).join("") + "Z").join("")).join("");
}

/* a site's colour, rank (for the worst of a cluster) and words, by the mode shown */
function mapSiteLook(s, risk) {
  if (mapView.mode === "risk") {
    const r = risk ? risk.get(s.id) : null, g = r ? r.grade : "none";
    const why = r && r.reasons && r.reasons.length ? `：${r.reasons.join("；")}` : "";
    return { rank: MAP_RISK_RANK[g] ?? 0, colour: MAP_RISK_COLOUR[g] || MAP_RISK_COLOUR.none, key: g,
      word: `风险等级 ${r ? (r.grade_zh || MAP_RISK[g]) : "未评级"}${why}`, loud: g === "red" || g === "orange" };
  }
  return { rank: MAP_ALARM_RANK[s.state] ?? 0, colour: STATE_COLOUR[s.state] || STATE_COLOUR.normal,
    word: MAP_ALARM[s.state] || "正常", key: s.state, loud: SEV.includes(s.state) };
}

/* sites that fall in one cell of 44 screen pixels become one circle with their count */
function mapClusters(points, u) {
  if (mapView.k >= 6) return points.map((p) => [p]);
  const cells = new Map();
  for (const p of points) {
    const key = `${Math.floor(p.x / (44 * u))}:${Math.floor(p.y / (44 * u))}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(p);
  }
  const worst = (g) => Math.max(...g.map((p) => p.look.rank));
  return [...cells.values()].sort((a, b) => worst(a) - worst(b));  // the worst drawn last, on top
}

function mapAreas(d, proj, u) {
  const warnOf = new Map(d.warnings.filter((w) => w.scope === "township").map((w) => [w.key, w]));
  const out = [];
  d.towns.forEach((f, i) => {
    const w = warnOf.get(f.properties.id), plain = MAP_TOWN_FILL[i % MAP_TOWN_FILL.length];
    const title = w ? `${f.properties.name} · ${w.level_zh || MAP_WARN_ZH[w.level]}`
      + `（${(w.reasons || []).join("；")}）` : f.properties.name;
    out.push(h("path", { d: mapPath(mapRings(f.geometry), proj), class: "map-town",
      "data-township": f.properties.id, "data-warning": w ? w.level : null,
      fill: w ? MAP_WARN_FILL[w.level] || plain : plain,
      "fill-opacity": w ? 0.35 : 1, "fill-rule": "evenodd", stroke: "#5b6b7d", "stroke-width": 1.6,
      onclick: () => mapTell(d, title) }, h("title", {}, title)));
  });
  for (const f of d.villages) {
    out.push(h("path", { d: mapPath(mapRings(f.geometry), proj), class: "map-village", fill: "none",
      stroke: "#9aa8b8", "stroke-width": 0.8, "stroke-dasharray": "4 3" },
    h("title", {}, `${f.properties.township_name} ${f.properties.name}`)));
  }
  if (mapView.k >= 2) {
    for (const f of d.villages) {
      const [cx, cy] = proj(...mapCentroid(mapRings(f.geometry)[0][0]));
      out.push(h("text", { x: cx.toFixed(1), y: (cy + 16).toFixed(1), class: "map-village-name",
        "text-anchor": "middle", "font-size": 11 * u }, f.properties.name));
    }
  }
  return out;
}

/* what a tap on the map says (a phone has no hover titles), below the map */
function mapTell(d, text) {
  if (!d.dragged) d.info.textContent = text;
}

function mapSite(d, p, sw, u, marks, labels) {
  const { s, x, y, look } = p, at = { cx: x.toFixed(1), cy: y.toFixed(1) };
  const said = `${look.word}${s.critical ? " · 重点场所" : ""}`
    + (sw ? ` · ${sw.level_zh || MAP_WARN_ZH[sw.level]}` : "");
  const town = d.townName.get(s.township_id);
  if (sw) {
    marks.push(h("circle", { ...at, r: 12 * u, fill: "none", stroke: MAP_WARN_FILL[sw.level],
      "stroke-width": 3, "stroke-dasharray": "3 2" },
    h("title", {}, `${s.name} · ${sw.level_zh || MAP_WARN_ZH[sw.level]}`)));
  }
  marks.push(h("circle", { ...at, r: (look.loud ? 7 : 4.5) * u, fill: look.colour,
    stroke: s.critical ? "#000" : "#fff", "stroke-width": s.critical ? 1.6 : 0.8, "data-site": s.id,
    "data-look": look.key, onclick: () => mapTell(d, `${s.name}${town ? ` · ${town}` : ""} · ${said}`) },
  h("title", {}, `${s.name} · ${said}`)));
  if (look.loud) {
    labels.push(h("text", { x: (x + 9 * u).toFixed(1), y: (y + 4 * u).toFixed(1), class: "map-site-name",
      "font-size": 12 * u }, s.name));
  }
}

function mapCluster(d, group, u) {
  const worst = group.reduce((m, p) => (p.look.rank > m.look.rank ? p : m), group[0]);
  const cx = group.reduce((a, p) => a + p.x, 0) / group.length;
  const cy = group.reduce((a, p) => a + p.y, 0) / group.length;
  const r = Math.min(8 + Math.sqrt(group.length) * 1.8, 18) * u;
  return h("g", { class: "map-cluster", "data-cluster": group.length, "data-look": worst.look.key,
    onclick: () => { if (!d.dragged) { mapZoomAt(2, cx, cy); mapDraw(d); } } },
  h("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: r.toFixed(1), fill: worst.look.colour,
    "fill-opacity": 0.85, stroke: "#fff", "stroke-width": 2 }),
  h("text", { x: cx.toFixed(1), y: (cy + 4 * u).toFixed(1), "text-anchor": "middle",
    class: "map-cluster-count", "font-size": 12 * u }, group.length),
  h("title", {}, `${group.length} 个场所，其中最严重：${worst.look.word.split("：")[0]}（点击放大）`));
}

function mapDraw(d) {
  const { k, x: tx, y: ty } = mapView;
  // viewBox units per screen pixel: on a phone the marks and names keep their size on screen
  const u = Math.min(2.4, Math.max(1, MAP_W / (d.svg.getBoundingClientRect().width || MAP_W)));
  const proj = (lon, lat) => { const [x, y] = d.proj(lon, lat); return [x * k + tx, y * k + ty]; };
  const siteWarn = new Map(d.warnings.filter((w) => w.scope === "site").map((w) => [w.key, w]));
  const points = d.sites.map((s) => {
    const [x, y] = proj(s.lon, s.lat);
    return { s, x, y, look: mapSiteLook(s, d.risk) };
  }).filter((p) => p.x > -50 && p.x < MAP_W + 50 && p.y > -50 && p.y < MAP_H + 50);
  const marks = [], labels = [];
  for (const group of mapClusters(points, u)) {
    if (group.length === 1) mapSite(d, group[0], siteWarn.get(group[0].s.id), u, marks, labels);
    else marks.push(mapCluster(d, group, u));
  }
  const names = d.towns.map((f) => {
    const [cx, cy] = proj(...mapCentroid(mapRings(f.geometry)[0][0]));
    return h("text", { x: cx.toFixed(1), y: cy.toFixed(1), "text-anchor": "middle", class: "map-town-name",
      "font-size": 15 * u, "data-township-name": f.properties.id }, f.properties.name);
  });
  d.svg.replaceChildren(h("rect", { x: 0, y: 0, width: MAP_W, height: MAP_H, fill: "#f8fbff" }),
    ...mapAreas(d, proj, u), ...marks, ...names, ...labels);
  d.legend.replaceChildren(...mapLegend(d));
}

function mapLegend(d) {
  const risk = mapView.mode === "risk";
  const out = Object.entries(risk ? MAP_RISK : MAP_ALARM)
    .map(([key, t]) => h("span", {}, h("span", { class: risk ? `dot map-risk-${key}` : `dot dot-${key}` }),
      t));
  out.push(h("span", {}, "数字圆：聚合的场所数（颜色为其中最严重的）"), h("span", {}, "黑圈：重点场所"));
  if (d.warnings.length) out.push(h("span", {}, "镇街着色、虚线圈：区域预警（红、橙、黄）"));
  if (risk && !d.risk) {
    out.push(h("span", { class: "muted", "data-testid": "map-risk-missing" }, "风险分级数据暂未提供"));
  }
  return out;
}

function mapZoomAt(f, cx, cy) {
  const k = Math.max(1, Math.min(mapView.k * f, 24));
  const g = k / mapView.k;
  mapView.x = cx - (cx - mapView.x) * g;
  mapView.y = cy - (cy - mapView.y) * g;
  mapView.k = k;
  if (k === 1) { mapView.x = 0; mapView.y = 0; }
}

function mapControls(d) {
  const redraw = () => mapDraw(d);
  const btn = (label, title, testid, fn) => h("button", { class: "secondary", title, "aria-label": title,
    "data-testid": testid, onclick: () => { fn(); redraw(); } }, label);
  const pan = (dx, dy) => () => { if (mapView.k > 1) { mapView.x += dx; mapView.y += dy; } };
  const mode = (m, label) => h("button", { class: mapView.mode === m ? "" : "secondary",
    "data-testid": `map-mode-${m}`, onclick: (e) => {
      mapView.mode = m;
      for (const b of e.target.parentNode.children) b.className = b === e.target ? "" : "secondary";
      redraw();
    } }, label);
  return h("div", { class: "map-tools" },
    h("span", { class: "map-modes", role: "group", "aria-label": "场所着色" },
      mode("alarm", "按报警状态"), mode("risk", "按风险等级")),
    h("span", { class: "map-zoom" },
      btn("＋", "放大", "map-zoom-in", () => mapZoomAt(1.6, MAP_W / 2, MAP_H / 2)),
      btn("－", "缩小", "map-zoom-out", () => mapZoomAt(1 / 1.6, MAP_W / 2, MAP_H / 2)),
      btn("←", "向左移", "map-pan-left", pan(120, 0)), btn("→", "向右移", "map-pan-right", pan(-120, 0)),
      btn("↑", "向上移", "map-pan-up", pan(0, 100)), btn("↓", "向下移", "map-pan-down", pan(0, -100)),
      btn("复位", "恢复全图", "map-reset", () => { mapView.k = 1; mapView.x = 0; mapView.y = 0; })));
}

/* the wheel zooms at the pointer, dragging pans (pixels of the page → pixels of the viewBox) */
function mapPointer(d) {
  const scale = () => MAP_W / d.svg.getBoundingClientRect().width;
  d.svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = d.svg.getBoundingClientRect(), s = scale();
    mapZoomAt(e.deltaY < 0 ? 1.25 : 0.8, (e.clientX - r.left) * s, (e.clientY - r.top) * s);
    mapDraw(d);
  }, { passive: false });
  let drag = null;
  d.svg.addEventListener("pointerdown", (e) => {
    d.dragged = false;
    if (mapView.k > 1) drag = { x: e.clientX, y: e.clientY, moved: false };
  });
  d.svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const s = scale(), dx = (e.clientX - drag.x) * s, dy = (e.clientY - drag.y) * s;
    if (Math.abs(dx) + Math.abs(dy) < 3 && !drag.moved) return;
    drag.moved = true; d.dragged = true;
    mapView.x += dx; mapView.y += dy; drag.x = e.clientX; drag.y = e.clientY;
    mapDraw(d);
  });
  for (const ev of ["pointerup", "pointerleave"]) d.svg.addEventListener(ev, () => { drag = null; });
}

function mapWarningList(d) {
  if (!d.warnings.length) return null;
  return h("div", { class: "panel", "data-testid": "map-warnings" },
    h("h3", {}, `区域预警 · ${d.warnings.length} 条`),
    h("ul", { class: "map-warn-list" }, d.warnings.map((w) => h("li", {},
      h("span", { class: `tag sev-${w.level}` }, w.level_zh || MAP_WARN_ZH[w.level]), " ",
      `${w.scope_zh || ""} · ${w.name}${w.reasons && w.reasons.length ? "：" + w.reasons.join("；") : ""}`))));
}

async function loadMap() {
  const [m, risk, warn] = await Promise.all([api("GET", "/api/map"), mapOptional("/api/risk/sites"),
    mapOptional("/api/area-warnings")]);
  const features = (m.boundaries && m.boundaries.features) || [];
  const sites = m.sites || [];
  if (!sites.length && !features.length) {
    show(h("h2", {}, "辖区地图"), h("p", { class: "muted" }, "无坐标数据"));
    return;
  }
  const pts = features.flatMap((f) => mapRings(f.geometry).flatMap((p) => p[0]));
  const svg = h("svg", { width: MAP_W, height: MAP_H, viewBox: `0 0 ${MAP_W} ${MAP_H}`, class: "map",
    "data-testid": "map", role: "img", "aria-label": "辖区地图" });
  const d = { sites, svg, proj: mapProjection(pts.length ? pts : sites.map((s) => [s.lon, s.lat])),
    towns: features.filter((f) => f.properties.level === "township"),
    villages: features.filter((f) => f.properties.level === "village"),
    legend: h("p", { class: "legend", "data-testid": "map-legend" }), dragged: false,
    info: h("p", { class: "map-info", "data-testid": "map-info" }, "点击场所或镇街查看名称和状态"),
    risk: risk && risk.items ? new Map(risk.items.map((r) => [r.site_id, r])) : null,
    warnings: (warn && warn.items) || [] };
  mapView.k = 1; mapView.x = 0; mapView.y = 0;
  mapPointer(d);
  const head = `辖区地图 · ${d.towns.length ? `${d.towns.length} 个镇街 · ` : ""}${sites.length} 个场所`;
  d.townName = new Map(d.towns.map((f) => [f.properties.id, f.properties.name]));
  show(h("h2", {}, head), mapControls(d), d.legend, h("div", { class: "map-box" }, svg), d.info,
    ...[mapWarningList(d)].filter(Boolean));
  mapShown = d;
  mapDraw(d);  // once shown: its size on screen sets the size of the marks
}

VIEWS.map = { load: loadMap, allowed: (role) => role !== "vendor" };
