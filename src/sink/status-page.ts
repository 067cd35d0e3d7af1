/**
 * The status page the daemon serves at `/`: one self-contained HTML document (no external
 * scripts, fonts or styles) that polls `/status.json` every two seconds and shows what an
 * operator or a quant looks for first — the current bar, throughput, each model's version,
 * engine, coverage, latency, live IC, and its top and bottom scores, and small charts of
 * the last hour's throughput and close → publish latency (inline SVG). Times are
 * Shanghai's.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>factorstream status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1f24; background: #fafbfc; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  .muted { color: #57606a; }
  .cards { display: flex; gap: 1rem; flex-wrap: wrap; margin-top: 1rem; }
  .card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem .9rem; min-width: 10rem; }
  .card b { display: block; font-size: 1.25rem; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .pos { color: #1a7f37; } .neg { color: #cf222e; }
  .stale { color: #cf222e; font-weight: bold; }
  .movers { display: flex; gap: 2rem; flex-wrap: wrap; }
  .charts { display: flex; gap: 1.5rem; flex-wrap: wrap; }
  figure { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .4rem .6rem; }
  figcaption { font-size: .85rem; color: #57606a; }
  svg polyline { fill: none; stroke-width: 1.5; }
</style>
</head>
<body>
<h1>factorstream</h1>
<div class="muted">Updated <span id="updated">never</span> · event time <span id="watermark">–</span> <span id="error" class="stale"></span></div>
<div class="cards">
  <div class="card">Current bar<b id="bars">–</b></div>
  <div class="card">Throughput<b id="throughput">–</b></div>
  <div class="card">Events ingested<b id="events">–</b></div>
</div>
<h2>Models</h2>
<table id="models">
  <thead><tr><th>model</th><th>version</th><th>freq</th><th>engine</th><th>role</th><th>last bar</th><th>scored</th><th>coverage</th><th>inference</th><th>close → publish p50 / p99</th><th>live IC 1d (20-day mean)</th><th>live IC 5d (20-day mean)</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Last hour</h2>
<div class="charts"><div id="throughput-chart"></div><div id="latency-chart"></div></div>
<div id="movers"></div>
<script>
"use strict";
// Shanghai time as 2026-01-06 14:30 (:05 with seconds), whatever the browser's locale.
const parts = (format) => (t) => Object.fromEntries(format.formatToParts(t).map((p) => [p.type, p.value]));
const local = parts(new Intl.DateTimeFormat("en-US", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }));
const stamp = (t, seconds) => { const p = local(t); return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + (seconds ? ":" + p.second : ""); };
const shanghai = { format: (t) => stamp(t, true) };
const hhmm = { format: (t) => stamp(t, false) };
/** A latency in seconds: milliseconds below one second, so that a fast close does not read 0.00. */
const latency = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : x < 1 ? num(x * 1000, 0) + " ms" : num(x, 2) + " s");
const num = (x, d) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
const signed = (x) => (x === undefined ? "–" : '<span class="' + (x >= 0 ? "pos" : "neg") + '">' + (x >= 0 ? "+" : "") + x.toFixed(3) + "</span>");
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df"];
/** A line chart of series [{ name, points: [[t, v], ...] }] as inline SVG, the y axis from 0 to the largest value. */
function chart(title, series, format) {
  const W = 420, H = 90;
  const all = series.flatMap((s) => s.points);
  if (all.length < 2) return "<figure><figcaption>" + esc(title) + ": not enough data yet</figcaption></figure>";
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const top = Math.max(...all.map((p) => p[1])) || 1;
  const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * W : 0).toFixed(1);
  const y = (v) => (H - (v / top) * (H - 4)).toFixed(1);
  const lines = series.map((s, i) => '<polyline stroke="' + COLOURS[i % COLOURS.length] + '" points="' + s.points.map((p) => x(p[0]) + "," + y(p[1])).join(" ") + '"><title>' + esc(s.name) + "</title></polyline>").join("");
  const legend = series.map((s, i) => '<span style="color:' + COLOURS[i % COLOURS.length] + '">' + esc(s.name) + "</span>").join(" · ");
  return "<figure><figcaption>" + esc(title) + " · max " + format(top) + " · " + hhmm.format(t0) + "–" + hhmm.format(t1) + (series.length > 1 ? " · " + legend : "") + '</figcaption><svg width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '">' + lines + "</svg></figure>";
}
/** Events per second between consecutive samples of the cumulative count. */
const rates = (points) => points.slice(1).map((p, i) => [p[0], ((p[1] - points[i][1]) * 1000) / Math.max(1, p[0] - points[i][0])]);
let previous;
async function refresh() {
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("status.json: HTTP " + r.status);
    const s = await r.json();
    const t = Date.now();
    document.getElementById("updated").textContent = shanghai.format(t);
    document.getElementById("watermark").textContent = s.watermark === null ? "–" : shanghai.format(s.watermark);
    document.getElementById("error").textContent = "";
    document.getElementById("bars").textContent = Object.entries(s.lastBarEnd).map(([f, e]) => f + " " + hhmm.format(e)).join(" · ") || "–";
    document.getElementById("events").textContent = num(s.eventsIngested, 0);
    if (previous !== undefined && t > previous.t) document.getElementById("throughput").textContent = num(((s.eventsIngested - previous.events) * 1000) / (t - previous.t), 0) + " /s";
    previous = { t, events: s.eventsIngested };
    if (s.recent !== undefined) {
      document.getElementById("throughput-chart").innerHTML = chart("events ingested /s", [{ name: "events", points: rates(s.recent.events) }], (v) => num(v, 0) + " /s");
      document.getElementById("latency-chart").innerHTML = chart("bar close → publish", Object.entries(s.recent.latency).map(([name, points]) => ({ name, points })), latency);
    }
    document.querySelector("#models tbody").innerHTML = s.models.map((m) => {
      const cov = m.scored + m.skipped > 0 ? (100 * m.scored) / (m.scored + m.skipped) : null;
      const ic = (h) => (m.liveIc[h] === undefined ? "–" : signed(m.liveIc[h].ic) + " (" + signed(m.liveIc[h].mean) + ")");
      return "<tr><td>" + esc(m.model) + "</td><td>" + esc(m.version) + "</td><td>" + esc(m.freq) + "</td><td>" + esc(m.engine) + "/" + esc(m.backend) + "</td><td>" + esc(m.role) +
        "</td><td>" + (m.barEnd === null ? "–" : hhmm.format(m.barEnd)) + "</td><td>" + num(m.scored, 0) + "</td><td>" + (cov === null ? "–" : num(cov, 1) + "%") +
        "</td><td>" + (m.inferenceSeconds === null ? "–" : num(m.inferenceSeconds * 1000, 0) + " ms") + "</td><td>" + latency(m.latencyP50) + " / " + latency(m.latencyP99) + "</td><td>" + ic("1d") + "</td><td>" + ic("5d") + "</td></tr>";
    }).join("");
    document.getElementById("movers").innerHTML = s.models.map((m) => {
      const rows = (xs) => xs.map((x) => "<tr><td>" + esc(x.symbol) + "</td><td>" + num(x.score, 4) + "</td><td>" + signed(x.z) + "</td></tr>").join("");
      return '<h2>' + esc(m.model) + ": top and bottom scores" + (m.barEnd === null ? "" : " at " + hhmm.format(m.barEnd)) + '</h2><div class="movers">' +
        '<table class="top"><thead><tr><th>top</th><th>score</th><th>z</th></tr></thead><tbody>' + rows(m.top) + "</tbody></table>" +
        '<table class="bottom"><thead><tr><th>bottom</th><th>score</th><th>z</th></tr></thead><tbody>' + rows(m.bottom) + "</tbody></table></div>";
    }).join("");
  } catch (err) {
    document.getElementById("error").textContent = "(not updating: " + err.message + ")";
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
