// The service's page: no libraries, everything drawn with plain DOM and inline SVG.
"use strict";

const $ = (sel) => document.querySelector(sel);
// The page's strings in the reader's language (the server fills them in from Accept-Language).
const T = JSON.parse(document.getElementById("i18n").textContent);
// Warning levels are coloured by their rank among the station's levels (lowest first).
const LEVEL_COLOURS = ["#d4a017", "#e67e22", "#c0392b", "#8e44ad", "#4a235a"];
const levelOrder = (levels) => Object.keys(levels || {}).filter((n) => levels[n].value !== null)
  .sort((a, b) => levels[a].value - levels[b].value);
const levelRank = (levels, name) => Math.min(levelOrder(levels).indexOf(name), LEVEL_COLOURS.length - 1);
const levelColour = (levels, name) => LEVEL_COLOURS[levelRank(levels, name)];
// Text on a level's colour: dark on the light yellow and orange (white there has a contrast of 2.4 and 2.9), white
// on the darker ones.
const LEVEL_TEXT = ["#1d2733", "#1d2733", "#fff", "#fff", "#fff"];
const levelTextColour = (levels, name) => LEVEL_TEXT[levelRank(levels, name)];
// A level's name on the white chart: its colour, darkened where the line's colour is too light to read (2.4, 2.9).
const LEVEL_LABEL = ["#8a6a0f", "#a8520f", "#c0392b", "#8e44ad", "#4a235a"];
const SVG_NS = "http://www.w3.org/2000/svg";
// A level's name as the reader's language says it, as the alert mails do (alert 警戒, danger 保证, q20y 20年一遇); a
// station's own names, and every name in English, as they are named (the JSON keeps the names).
const levelName = (name) => {
  const rp = /^q(\d+)y$/.exec(name);
  return T.level_words[name] || (rp && T.return_period ? T.return_period.replace("{n}", rp[1]) : name);
};
// Water levels (m) to the centimetre, as a gauge is read.
const fmtStage = (h) => (h === null || h === undefined ? "–" : Number(h).toFixed(2));
// A level's water level where the station has a rating curve (`stage`; a forecast stored before it was given:
// `stage_m`, a level given as a water level), in words after its flow; "" without one.
const levelStage = (lv) => {
  const h = lv.stage ?? lv.stage_m;
  return h === null || h === undefined ? "" : T.paren.replace("{s}", T.water_level.replace("{h}", fmtStage(h)));
};
// The water levels of a lead's quantiles where the station has a rating curve ({} without one).
const stagesOf = (f) => f.stage_quantiles || Object.fromEntries(["q05", "q25", "q75", "q95"]
  .filter((c) => f["stage_" + c] != null).map((c) => [c, f["stage_" + c]]));
// Flows to 0.01 m3/s, but a small stream's below 1 m3/s to two significant digits (0.0041, not 0.00).
const fmt = (v) => {
  if (v === null || v === undefined) return "–";
  const x = Number(v);
  return Math.abs(x) >= 1 || x === 0 ? x.toFixed(2) : x.toPrecision(2);
};

async function getJSON(url, options) {
  let r;
  try {
    r = await fetch(url, options);
  } catch (e) {
    // no answer at all (server down, network gone): the browser's own words ("Failed to fetch", "Load failed")
    // do not say what failed, and are never in the reader's language
    throw new Error(T.unreachable + T.paren.replace("{s}", String(e.message || e)));
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || r.status + " " + r.statusText);
  return body;
}

function setStatus(text, isError) {
  const s = $("#status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

// The quantile levels a lead gives: every one the model was trained with (its `quantiles`: q05 .. q95 for the default
// levels, q10 and q90 for a model of deciles); a forecast stored before the answer had them, those of its fixed
// q05 .. q95 with a value (a model without quantiles gives none: null in all four).
const quantilesOf = (f) => (f.quantiles && Object.keys(f.quantiles).length ? f.quantiles
  : Object.fromEntries(["q05", "q25", "q75", "q95"].filter((c) => f[c] != null).map((c) => [c, f[c]])));
// A quantile column's level: q05 -> 0.05, q025 -> 0.025 (operational.quantile_levels); null for another name.
const quantileLevel = (c) => (/^q\d{2,3}$/.test(c) ? Number(c.slice(1)) / 10 ** (c.length - 1) : null);
// A level in percent as the tables and the legend write it: 0.05 -> "5", 0.025 -> "2.5".
const percent = (level) => String(Math.round(level * 1000) / 10);
// The quantile columns of a forecast's leads, lowest level first.
const quantileColumns = (forecast) => [...new Set(forecast.flatMap((f) => Object.keys(quantilesOf(f))))]
  .filter((c) => quantileLevel(c) !== null).sort((a, b) => quantileLevel(a) - quantileLevel(b));
// The intervals the fan shades, widest first, as the CLI's fan chart does (operational.interval_bands): the widest
// pair of levels symmetric about the median, and the pair nearest the 50 % interval if it is another; only levels
// with a value on every lead. Each {lo, hi, label}: q05/q95 is "5–95 %", a model of deciles' q10/q90 "10–90 %".
function intervalBands(forecast) {
  const given = quantileColumns(forecast).filter((c) => forecast.every((f) => quantilesOf(f)[c] != null));
  const byLevel = new Map(given.map((c) => [Math.round(quantileLevel(c) * 1e6), c]));
  const pairs = [...byLevel.keys()].filter((k) => k < 500000 && byLevel.has(1e6 - k)).sort((a, b) => a - b)
    .map((k) => ({ lo: byLevel.get(k), hi: byLevel.get(1e6 - k), width: 1 - (2 * k) / 1e6 }));
  if (!pairs.length) return [];
  const inner = pairs.reduce((a, b) => (Math.abs(b.width - 0.5) < Math.abs(a.width - 0.5) ? b : a));
  return (inner === pairs[0] ? [pairs[0]] : [pairs[0], inner]).map(({ lo, hi }) => (
    { lo, hi, label: percent(quantileLevel(lo)) + "–" + percent(quantileLevel(hi)) + " %" }));
}

const DAY_MS = 86400000;
const toDay = (iso) => Date.parse(iso + "T00:00:00Z") / DAY_MS;

// A round step for about `parts` y ticks over 0..top: 1, 2, 2.5 or 5 times a power of ten, and the decimals its
// labels need to state each tick exactly (0.25 -> 2).
function niceStep(top, parts) {
  const raw = top / parts, mag = 10 ** Math.floor(Math.log10(raw)), norm = raw / mag;
  const f = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  const step = f * mag;
  return { step, decimals: Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) + (f === 2.5 ? 1 : 0) };
}

// x in the increasing xs, linearly between its neighbours, onto ys; outside them the end values (numpy's interp, as
// the CLI's fan chart maps its water-level axis).
function interp(x, xs, ys) {
  const n = xs.length;
  if (x <= xs[0]) return ys[0];
  if (x >= xs[n - 1]) return ys[n - 1];
  let lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid; else hi = mid;
  }
  return ys[lo] + ((x - xs[lo]) / (xs[hi] - xs[lo])) * (ys[hi] - ys[lo]);
}

// A station with a rating curve: its water levels (m) on a second axis at the right of the flow axis, as the CLI's
// fan chart has it (plots._stage_axis), from the answer's table of the curve valid on the issue day (`stage_scale`).
// A curve is steep at low water, so round water levels crowd at the bottom: from the top down, a tick is kept only
// at least 5 % of the axis height below the one above it.
function stageAxis(axes, scale, yMax, sy, x, TOP, bottom) {
  const { flow, stage } = scale;
  const hLo = interp(0, flow, stage), hHi = interp(yMax, flow, stage);
  if (!(hHi > hLo)) return;
  const { step, decimals } = niceStep(hHi - hLo, 8);
  svgEl("line", { x1: x, x2: x, y1: TOP, y2: bottom, class: "stage-axis" }, axes);
  let last = Infinity;
  for (let k = Math.floor(hHi / step + 1e-9); k * step >= hLo - 1e-9 * step; k--) {
    const h = k * step, q = interp(h, stage, flow);
    if (q < 0 || q > yMax * (1 + 1e-9) || last - q < 0.05 * yMax) continue;
    last = q;
    svgEl("line", { x1: x, x2: x + 4, y1: sy(q), y2: sy(q) }, axes);
    const t = svgEl("text", { x: x + 6, y: sy(q) + 4, "text-anchor": "start", stroke: "none", class: "stage-tick",
                              "data-stage": h.toFixed(decimals), "data-flow": q }, axes);
    t.textContent = h.toFixed(decimals);
  }
  const yMid = (TOP + bottom) / 2, xu = x + 56;
  const u = svgEl("text", { x: xu, y: yMid, stroke: "none", "font-size": "11", "text-anchor": "middle",
                            transform: `rotate(90 ${xu} ${yMid})`, class: "stage-unit" }, axes);
  u.textContent = T.stage_axis;
}

// Text with a white halo beneath it (a copy with a wide white stroke), readable over lines and bands. A copy,
// not paint-order: every renderer draws it so.
function haloText(parent, attrs, text) {
  const halo = svgEl("text", { ...attrs, fill: "#fff", stroke: "#fff", "stroke-width": 3, "stroke-linejoin": "round",
                               class: "halo", "aria-hidden": "true" }, parent);
  halo.textContent = text;
  const t = svgEl("text", { ...attrs, stroke: "none" }, parent);
  t.textContent = text;
  return t;
}

// A legend key, and the name written after it, shown only where the chart draws what they name: a forecast without
// levels, or of days not yet observed, drew no level line and no dashed observed line, yet the legend named both.
// The name is kept on the key (data-name) to come back on the next chart; it is rewritten only where it differs, so
// the page as served stays as it is to the pixel. A key's name may stay without its key: levels all left out of
// the chart keep their name before the note that lists them (#levels-off).
function showKey(cls, drawn, named = drawn) {
  const key = $(".legend .key." + cls), name = key.nextSibling;
  if (key.dataset.name === undefined) key.dataset.name = name.textContent;
  key.style.display = drawn ? "" : "none";   // (not `hidden`: the key's display: inline-block outranks it)
  const want = named ? key.dataset.name : " ";
  if (name.textContent !== want) name.textContent = want;
}

function drawChart(fc) {
  const svg = $("#chart");
  svg.replaceChildren();
  // a station with a rating curve has a water-level axis on the right, and the room for it
  const scale = fc.stage_scale && fc.stage_scale.flow.length >= 2 ? fc.stage_scale : null;
  const W = 900, H = 340, L = 60, R = scale ? 70 : 20, TOP = 15, B = 40;
  const hist = fc.history.filter((d) => d.observed !== null);
  const days = fc.history.map((d) => toDay(d.date)).concat(fc.forecast.map((f) => toDay(f.valid_date)));
  const x0 = Math.min(...days), x1 = Math.max(...days);
  // the forecast's highest flows: its median and every quantile level the model gives (q95, or q90 of deciles)
  const ys = hist.map((d) => d.observed)
    .concat(fc.forecast.flatMap((f) => [f.median, ...Object.values(quantilesOf(f))]))
    .concat((fc.observed_after || []).map((d) => d.observed)).filter((v) => v !== null);
  const dataMax = Math.max(0.01, ...ys);  // a dry river still gets an axis with readable ticks (0 .. 0.01)
  // Levels up to three times the data's range are drawn; higher ones would flatten the hydrograph.
  const shown = levelOrder(fc.levels).filter((n) => fc.levels[n].value <= 3 * dataMax);
  // the legend names the levels left out, or a reader looks for lines that are not there
  const off = levelOrder(fc.levels).filter((n) => !shown.includes(n));
  showKey("level", shown.length > 0, off.length > 0 || shown.length > 0);
  $("#levels-off").textContent = off.length ? " " + T.levels_off.replace("{l}", off.map((n) => levelName(n) + " " +
    fmt(fc.levels[n].value) + " m³/s" + levelStage(fc.levels[n])).join(T.comma)) : "";
  // The y axis ends on a round tick above the data and the levels drawn, so every tick label is its exact value.
  const top = Math.max(dataMax, ...shown.map((n) => fc.levels[n].value)) * 1.05;
  // 4 to 6 ticks: the step whose last tick wastes the least height (20.5 m³/s: to 25 by 5, not to 30 by 10)
  const { step, decimals, yMax } = [4, 5, 6].map((parts) => niceStep(top, parts))
    .map((n) => ({ ...n, yMax: Math.ceil(top / n.step - 1e-9) * n.step }))
    .reduce((a, b) => (b.yMax < a.yMax - 1e-12 ? b : a));
  const sx = (d) => L + ((d - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const sy = (v) => H - B - (v / yMax) * (H - TOP - B);

  // Axes and labels: y ticks at round values; x ticks at the first day of each month, and the issue day.
  const axes = svgEl("g", { class: "axes", stroke: "#8895a1", "font-size": "11", fill: "#57606a" }, svg);
  for (let i = 0; i * step <= yMax * (1 + 1e-9); i++) {
    const v = i * step;
    svgEl("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), "stroke-opacity": 0.25 }, axes);
    const t = svgEl("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", stroke: "none", class: "flow-tick" }, axes);
    t.textContent = v.toFixed(decimals);
  }
  // the centre of an x label of n characters (about 6.4 px each at 11 px) moved in so that it stays in the chart: a
  // month starting on the last forecast day was cut at the right edge
  const inside = (x, n) => Math.min(Math.max(x, n * 3.2), W - n * 3.2);
  const issue = toDay(fc.issue_date);
  const issueX = inside(sx(issue), 10);
  for (let d = Math.ceil(x0); d <= x1; d++) {
    const date = new Date(d * DAY_MS);
    if (date.getUTCDate() !== 1) continue;
    const x = inside(sx(d), 7);
    // a month label within reach of the issue-day label (10 characters, the line below) is left out: the month
    // starting the day after an issue day at a month's end ("1978-01" over "1977-12-31") read as one smudge
    if (Math.abs(x - issueX) < (7 + 10) * 3.2 + 4) continue;
    const t = svgEl("text", { x, y: H - B + 16, "text-anchor": "middle", stroke: "none" }, axes);
    t.textContent = date.toISOString().slice(0, 7);
  }
  // the unit along the y axis, clear of the tick labels (beside the top one it read as "m³/s 19")
  const yMid = (TOP + H - B) / 2;
  const yl = svgEl("text", { x: 14, y: yMid, stroke: "none", "font-size": "11", "text-anchor": "middle",
                             transform: `rotate(-90 14 ${yMid})`, class: "y-unit" }, axes);
  yl.textContent = "m³/s";
  if (scale) stageAxis(axes, scale, yMax, sy, W - R, TOP, H - B);
  svgEl("line", { x1: sx(issue), x2: sx(issue), y1: TOP, y2: H - B, "stroke-dasharray": "4 3", class: "issue-line" }, axes);
  // the issue day, under the axis at its dashed line (the month labels alone do not say which day it is)
  haloText(axes, { x: issueX, y: H - B + 30, "text-anchor": "middle", "font-size": "11", fill: "#1d2733",
                   class: "issue-label" }, fc.issue_date);

  for (const name of shown) {
    const v = fc.levels[name].value, colour = levelColour(fc.levels, name);
    svgEl("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: colour, "stroke-width": 1.5,
                    "stroke-dasharray": "8 4", class: "level-line", "data-level": name }, svg);
  }

  // Forecast fan: the widest interval the model gives and the one nearest 50 % (5-95 % and 25-75 % for the default
  // levels), from the issue day's last observation onwards; the legend names them.
  const bands = intervalBands(fc.forecast);
  const lastObs = hist.length ? hist[hist.length - 1] : null;
  const start = lastObs && toDay(lastObs.date) === issue ? [{ d: issue, v: lastObs.observed }] : [];
  // (a level the model does not give, null on a lead, has no band: drawn at 0 it would claim a flow of 0 was possible)
  const band = ({ lo, hi, label }, cls, opacity) => {
    const pts = start.map((p) => [p.d, p.v]).concat(fc.forecast.map((f) => [toDay(f.valid_date), quantilesOf(f)[hi]]));
    const low = start.map((p) => [p.d, p.v]).concat(fc.forecast.map((f) => [toDay(f.valid_date), quantilesOf(f)[lo]]));
    const poly = pts.concat(low.reverse()).map(([d, v]) => sx(d).toFixed(1) + "," + sy(v).toFixed(1)).join(" ");
    svgEl("polygon", { points: poly, class: cls, fill: "#c0392b", "fill-opacity": opacity, stroke: "none",
                       "data-lo": lo, "data-hi": hi, "data-label": label }, svg);
  };
  // the widest is drawn lightest (class band90, as the legend's key), the one nearest 50 % over it (band50)
  const keys = ["band90", "band50"];
  bands.forEach((b, i) => band(b, keys[i], i ? 0.35 : 0.15));
  // the legend's keys name the intervals drawn, and only those (a model of deciles has one: "10–90 %"). The name is
  // the text after its key, rewritten only where it differs: the default levels' legend stays as served to the pixel
  // (a span around the name moved the text after it by a fraction of a pixel).
  for (const [i, cls] of keys.entries()) {
    const key = $(".legend .key." + cls), name = key.nextSibling;
    key.style.display = bands[i] ? "" : "none";   // (not `hidden`: the key's display: inline-block outranks it)
    const want = bands[i] ? bands[i].label : "";
    if (name.textContent.trim() !== want) name.textContent = want ? " " + want + " " : " ";
  }

  // A line through [day, value] points, broken where a day is missing or its value is null: a straight line over a
  // gap in the record would draw flows nobody observed. A day alone between gaps is a dot.
  const line = (pts, attrs) => {
    const runs = [];
    let run = [];
    for (const [d, v] of pts) {
      if (run.length && (v === null || d - run[run.length - 1][0] > 1)) {
        runs.push(run);
        run = [];
      }
      if (v !== null) run.push([d, v]);
    }
    if (run.length) runs.push(run);
    if (!runs.length) return;
    const dPath = runs.map((r) => r.map(([d, v], i) => (i ? "L" : "M") + sx(d).toFixed(1) + " " + sy(v).toFixed(1))
      .join(" ")).join(" ");
    svgEl("path", { d: dPath, fill: "none", ...attrs }, svg);
    for (const [[d, v]] of runs.filter((r) => r.length === 1)) {
      svgEl("circle", { cx: sx(d).toFixed(1), cy: sy(v).toFixed(1), r: 1.5, fill: attrs.stroke, class: attrs.class + "-dot" }, svg);
    }
  };
  line(fc.history.map((h) => [toDay(h.date), h.observed]), { stroke: "#1d2733", "stroke-width": 1.5, class: "observed-line" });
  // Days observed after the issue day (a forecast of the past): dashed, so the forecast can be judged.
  const after = fc.observed_after || [];
  showKey("after", after.some((d) => d.observed !== null));
  if (after.some((d) => d.observed !== null)) {
    line(start.map((p) => [p.d, p.v]).concat(after.map((d) => [toDay(d.date), d.observed])),
         { stroke: "#1d2733", "stroke-width": 1.5, "stroke-dasharray": "5 3", class: "observed-after-line" });
  }
  line(start.map((p) => [p.d, p.v]).concat(fc.forecast.map((f) => [toDay(f.valid_date), f.median])),
       { stroke: "#c0392b", "stroke-width": 2.5, class: "median-line" });
  // The levels' names last, on top, at the left end of their lines: at the right end they lay under the forecast
  // fan and its points. From the highest down, each at least a line of text below the one above it, so that
  // levels close in flow (q10y 18.50, q20y 19.51) do not print over each other.
  let below = -Infinity;
  for (const name of shown.slice().reverse()) {
    const v = fc.levels[name].value, y = Math.max(sy(v) - 4, below + 12);
    below = y;
    haloText(svg, { x: L + 4, y: y.toFixed(1), "text-anchor": "start", "font-size": "11",
                    fill: LEVEL_LABEL[levelRank(fc.levels, name)], class: "level-label", "data-level": name },
             levelName(name) + " " + fmt(v) + levelStage(fc.levels[name]));
  }
  // each point's tooltip: the median and the widest interval drawn (5-95 %, or 10-90 % of a model of deciles)
  const widest = bands[0];
  for (const f of fc.forecast) {
    const q = quantilesOf(f);
    const c = svgEl("circle", { cx: sx(toDay(f.valid_date)), cy: sy(f.median), r: 3.5, fill: "#c0392b",
                                class: "median-point", "data-valid-date": f.valid_date, "data-median": f.median,
                                ...Object.fromEntries(Object.entries(q).map(([k, v]) => ["data-" + k, v])) }, svg);
    const h = stagesOf(f);
    svgEl("title", {}, c).textContent = f.valid_date + ": " + fmt(f.median) + " m³/s" +
      (widest ? " (" + fmt(q[widest.lo]) + "–" + fmt(q[widest.hi]) + ")" : "") +
      (f.stage_median != null ? T.comma + fmtStage(f.stage_median) + " m" +
        (widest && h[widest.lo] != null ? " (" + fmtStage(h[widest.lo]) + "–" + fmtStage(h[widest.hi]) + ")" : "") : "");
  }
}

function fillTable(fc) {
  const body = $("#forecast-table tbody");
  body.replaceChildren();
  // the quantile columns are those the model gives (5, 25, 75, 95 % for the default levels; 10, 90 % of deciles),
  // headed by their level, between the median and the warning
  const columns = quantileColumns(fc.forecast);
  const head = $("#forecast-table thead tr");
  head.querySelectorAll("th.quantile").forEach((th) => th.remove());
  for (const c of columns) {
    const th = document.createElement("th");
    th.className = "quantile";
    th.dataset.column = c;
    th.textContent = percent(quantileLevel(c)) + " %";
    head.insertBefore(th, head.querySelector("th.warning-col"));
  }
  // a station with a rating curve: the median and the widest interval as water levels (m) beside the flows
  const staged = fc.forecast.some((f) => f.stage_median != null);
  const [widest] = intervalBands(fc.forecast);
  head.querySelector("th.stage-col").hidden = !staged;
  const stageCell = (f) => {
    const h = stagesOf(f);
    return fmtStage(f.stage_median) + (widest && h[widest.lo] != null && h[widest.hi] != null
      ? " (" + fmtStage(h[widest.lo]) + "–" + fmtStage(h[widest.hi]) + ")" : "");
  };
  for (const f of fc.forecast) {
    const tr = document.createElement("tr");
    tr.dataset.validDate = f.valid_date;
    tr.dataset.lead = f.lead_days;
    const p = f.warning ? " (" + Math.round(100 * f.p_exceed[f.warning]) + " %)" : "";
    const q = quantilesOf(f);
    const cells = [["valid-date", f.valid_date], ["lead", f.lead_days], ["median", fmt(f.median)],
                   ...(staged ? [["stage", stageCell(f)]] : []),
                   ...columns.map((c) => [c, fmt(q[c])]), ["warning", f.warning ? levelName(f.warning) + p : "–"]];
    if (f.warning) tr.style.background = levelColour(fc.levels, f.warning) + "33";
    for (const [cls, text] of cells) {
      const td = document.createElement("td");
      td.className = cls;
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  // the warning probability the warnings apply: one per lead where the calibration chose one per lead
  const warnAt = (lv) => {
    const p = lv.warn_probability_by_lead || (lv.warn_probability === null ? null : [lv.warn_probability]);
    return p ? T.paren.replace("{s}", "P ≥ " + p.map((x) => Number(x).toFixed(2)).join("/")) : "";
  };
  const levels = levelOrder(fc.levels).map((n) => levelName(n) + " " + fmt(fc.levels[n].value) + " m³/s" +
    levelStage(fc.levels[n]) + warnAt(fc.levels[n])).join(T.comma);
  const wx = fc.weather ? " " + T.weather.replace("{d}", fc.weather.issue_date).replace("{m}", fc.weather.members) : "";
  const setting = T.paren.replace("{s}", T.settings[fc.setting] || fc.setting);
  $("#forecast-meta").textContent = T.issued_for + " " + fc.issue_date + setting + wx + T.comma + T.data_version +
    " " + fc.data_version + (fc.cached ? T.comma + T.from_cache : "") + T.stop + (levels || T.no_levels);
  // what the checks of the station's data found (changed since fine-tuning, another unit, ...): shown first
  const notes = $("#forecast-notes");
  notes.replaceChildren(...(fc.notes || []).map((n) => {
    const li = document.createElement("li");
    li.textContent = n;
    return li;
  }));
  notes.hidden = !(fc.notes || []).length;
}

// An input's name in the reader's language (the identifier where the page has no words for it; its tooltip).
function featureLabel(name) {
  const lag = /^discharge_lag(\d+)$/.exec(name);
  return T.features[name] || (lag ? T.lag_flow.replace("{n}", lag[1]) : name);
}

function drawWeights(weights) {
  const box = $("#weights");
  box.replaceChildren();
  const items = Object.entries(weights).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1e-9, ...items.map(([, w]) => w));
  for (const [name, w] of items) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.dataset.feature = name;
    const label = document.createElement("span");
    label.textContent = featureLabel(name);
    label.title = name;
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = ((100 * w) / max).toFixed(1) + "%";
    track.appendChild(bar);
    const val = document.createElement("span");
    val.className = "weight";
    // exactly 0: the input was missing on the issue day (the model masks it), not a weight it chose to make small
    val.textContent = w === 0 ? T.input_missing : w.toFixed(3);
    row.append(label, track, val);
    box.appendChild(row);
  }
}

// The issued forecasts beside what was observed, each with the widest interval its model gave. The column is headed
// by the interval of the forecast shown (`current`: 5-95 %, or 10-90 % of a model of deciles); a forecast issued by
// a model of other levels names its own interval in its cells.
function fillVerification(hist, current) {
  const body = $("#verification tbody");
  body.replaceChildren();
  const [shown] = intervalBands(current.forecast);
  const named = shown || hist.forecasts.map((fc) => intervalBands(fc.forecast)[0]).find((b) => b);
  // (no interval at all, a model without quantiles: the default's heading over cells of "–", as before)
  $("#verification th.interval").textContent = named ? named.label : "5–95 %";
  for (const fc of hist.forecasts) {
    const [b] = intervalBands(fc.forecast);
    for (const f of fc.forecast) {
      const tr = document.createElement("tr");
      const q = quantilesOf(f);
      const interval = b ? fmt(q[b.lo]) + "–" + fmt(q[b.hi]) + (b.label === named.label ? "" : " (" + b.label + ")")
        : "–";
      for (const text of [fc.issue_date, f.valid_date, f.lead_days, fmt(f.median), interval, fmt(f.observed)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }
}

// A forecast that could not be loaded: the station's title, the reason where the chart was, nothing else.
function showLoadError(station, e) {
  const text = String(e.message || e);
  for (const sel of ["#chart", "#forecast-table tbody", "#verification tbody", "#weights"]) $(sel).replaceChildren();
  $("#forecast-meta").textContent = "";
  $("#forecast-notes").replaceChildren();
  $("#forecast-notes").hidden = true;
  $("#chart-title").textContent = T.station + " " + station + ": " + T.chart_title;
  const box = $("#load-error");
  box.textContent = text;
  box.hidden = false;
  setStatus(text, true);
}

// Each load is numbered: an answer that comes back after a later choice (another station, day or lead) is
// dropped, or a slow forecast of the station left behind would be drawn under the station chosen since.
let loadCount = 0;

async function load() {
  const mine = ++loadCount;
  const current = () => mine === loadCount;
  const station = $("#station").value;
  const leads = $("#leads").value;
  const issue = $("#issue-date").value;
  document.body.dataset.ready = "0";
  setStatus(T.loading + " " + station + " …");
  let fc;
  try {
    const query = "leads=" + leads + (issue ? "&issue_date=" + issue : "");
    fc = await getJSON(`/stations/${encodeURIComponent(station)}/forecast?${query}`);
  } catch (e) {
    // nothing shown before (another station's forecast, or another day's) may stay under the one asked for:
    // its chart and table would be read as the answer
    if (current()) showLoadError(station, e);
    return;
  }
  if (!current()) return;
  try {
    $("#load-error").hidden = true;
    drawChart(fc);
    fillTable(fc);
    drawWeights(fc.weights);
    $("#chart-title").textContent = T.station + " " + station + ": " + T.chart_title;
    const issued = await getJSON(`/stations/${encodeURIComponent(station)}/forecasts?limit=20`);
    if (!current()) return;
    fillVerification(issued, fc);
    if (!$("#obs-date").value) $("#obs-date").value = new Date().toISOString().slice(0, 10);
    setStatus(T.issued_for + " " + fc.issue_date);
    document.body.dataset.ready = "1";
    document.body.dataset.station = station;
  } catch (e) {
    if (current()) setStatus(String(e.message || e), true);
  }
}

// Every station's highest warning (GET /warnings): the list above the chart, and the station menu's colours.
// Read at the start and again after each post (a posted day can start, raise or end a warning). A failure is
// said in the list itself: the forecast shown is still good.
async function loadWarnings() {
  const box = $("#warnings-list");
  let w;
  try {
    w = await getJSON("/warnings");
  } catch (e) {
    box.textContent = String(e.message || e);
    box.className = "error";
    return;
  }
  box.className = "";
  box.replaceChildren();
  const warned = w.stations.filter((s) => s.warning);
  const failed = w.errors || [];
  const option = (id) => $("#station").querySelector(`option[value="${CSS.escape(id)}"]`);
  for (const s of w.stations) {
    const opt = option(s.station);
    if (!opt) continue;
    opt.style.background = s.warning ? levelColour(s.levels, s.warning) : "";
    opt.style.color = s.warning ? levelTextColour(s.levels, s.warning) : "";
    opt.textContent = s.station + (s.warning ? " ⚠ " + levelName(s.warning) : "");
    opt.dataset.warning = s.warning || "";
  }
  // A station that could not be forecast is not a station without a warning: it is named, with the reason.
  for (const f of failed) {
    const opt = option(f.station);
    if (!opt) continue;
    opt.style.background = opt.style.color = "";
    opt.textContent = f.station + " (" + T.not_forecast + ")";
    opt.dataset.warning = "";
  }
  // a chip is about the station's latest forecast (the one /warnings reads): a day typed before is cleared
  const pick = (station) => () => {
    $("#station").value = station;
    $("#issue-date").value = "";
    load();
  };
  for (const s of warned) {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "warning-chip";
    chip.dataset.station = s.station;
    chip.style.background = levelColour(s.levels, s.warning);
    chip.style.color = levelTextColour(s.levels, s.warning);
    const top = s.levels[s.warning];
    chip.textContent = s.station + ": " + levelName(s.warning) + " (" + fmt(top.value) + " m³/s" +
      (levelStage(top) ? T.comma + T.water_level.replace("{h}", fmtStage(top.stage ?? top.stage_m)) : "") + "), " +
      T.from_lead + " " + s.first_lead + (s.data_age_days > T.stale_days ? " — " + T.old_data.replace("{d}", s.data_age_days) : "");
    chip.addEventListener("click", pick(s.station));
    box.appendChild(chip);
  }
  for (const f of failed) {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "warning-chip failed";
    chip.dataset.station = f.station;
    chip.textContent = f.station + ": " + T.not_forecast;
    chip.title = f.detail || "";
    chip.addEventListener("click", pick(f.station));
    box.appendChild(chip);
  }
  if (!warned.length) box.prepend(document.createTextNode(failed.length ? T.none_other + " " : T.none));
}

async function post(ev) {
  ev.preventDefault();
  const day = { date: $("#obs-date").value };
  // a stage-only station's observer posts the water level: the service converts it through the station's curve
  for (const name of ["precipitation", "temperature", "discharge", "stage"]) {
    const v = $("#obs-" + name).value;
    if (v !== "") day[name] = Number(v);
  }
  const out = $("#post-result");
  try {
    const r = await getJSON(`/stations/${encodeURIComponent($("#station").value)}/observations`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + $("#obs-token").value },
      body: JSON.stringify({ observations: [day] }),
    });
    // and what the service says of it (a water level above the curve's gauged range: its flow extrapolated)
    out.textContent = T.stored.replace("{n}", r.stored).replace("{v}", r.data_version) +
      (r.notes ? " " + r.notes.join(" ") : "");
    out.className = "";
    await Promise.all([load(), loadWarnings()]);
  } catch (e) {
    out.textContent = String(e.message || e);
    out.className = "error";
  }
}

async function init() {
  try {
    const stations = await getJSON("/stations");
    const sel = $("#station");
    for (const s of stations) {
      const o = document.createElement("option");
      o.value = o.textContent = s.id;
      sel.appendChild(o);
    }
    const wanted = new URLSearchParams(location.search).get("station");
    if (wanted && stations.some((s) => s.id === wanted)) sel.value = wanted;
    sel.addEventListener("change", load);
    $("#leads").addEventListener("change", load);
    $("#issue-date").addEventListener("change", load);
    $("#post-form").addEventListener("submit", post);
    await load();
    await loadWarnings();
  } catch (e) {
    setStatus(String(e.message || e), true);
  }
}

init();
