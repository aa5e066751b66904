/// `GET /`: the live dashboard, one page with its script and styles inside (no CDN, nothing else
/// to install). It polls `/api/v1/status` every second and draws with inline SVG.
enum DashboardPage {
    static let html: [UInt8] = Array(text.utf8)

    static let text = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FlowTap</title>
<style>
:root { --bg:#0f1419; --panel:#161d26; --line:#263241; --text:#d7dee7; --dim:#8494a7; --a:#4fb3ff; --b:#ffb454; --c:#7bd88f; --d:#ff6b6b; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:baseline; gap:16px; padding:14px 22px; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
header .meta { color:var(--dim); }
#state { margin-left:auto; color:var(--dim); }
#state.live::before { content:"●"; color:var(--c); margin-right:6px; }
#state.stale::before { content:"●"; color:var(--d); margin-right:6px; }
main { padding:16px 22px; display:grid; gap:16px; grid-template-columns:repeat(12, 1fr); }
.tiles { grid-column:1/-1; display:grid; grid-template-columns:repeat(6, 1fr); gap:12px; }
.tile { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.tile .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.6px; }
.tile .value { font-size:24px; font-variant-numeric:tabular-nums; margin-top:2px; }
.tile.warn .value { color:var(--d); }
.panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
.panel h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.6px; font-weight:600; }
.half { grid-column:span 6; } .third { grid-column:span 4; } .full { grid-column:1/-1; }
svg { width:100%; display:block; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:260px; }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.n, th.n { text-align:right; }
table.wrap td { white-space:normal; word-break:break-word; max-width:none; }
.labels { color:var(--dim); font-size:12px; }
.bar { height:8px; background:var(--a); border-radius:2px; }
.empty { color:var(--dim); font-style:italic; }
@media (max-width: 1000px) { .half, .third { grid-column:1/-1; } .tiles { grid-template-columns:repeat(3, 1fr); } }
</style>
</head>
<body>
<header><h1>FlowTap</h1><span class="meta" id="meta">connecting…</span><span id="state">waiting for data</span></header>
<main>
  <section class="tiles">
    <div class="tile"><div class="label">Packets</div><div class="value" id="packets" data-value="0">0</div></div>
    <div class="tile"><div class="label">Packets/s</div><div class="value" id="pps">0</div></div>
    <div class="tile"><div class="label">Bits/s</div><div class="value" id="bps">0</div></div>
    <div class="tile"><div class="label">Bytes</div><div class="value" id="bytes">0</div></div>
    <div class="tile" id="flowsTile"><div class="label">Active flows</div><div class="value" id="flows">0</div></div>
    <div class="tile" id="dropTile"><div class="label">Dropped</div><div class="value" id="drops">0</div></div>
  </section>
  <section class="panel half"><h2>Packets per second</h2><svg id="ppsChart" viewBox="0 0 600 180" preserveAspectRatio="none"></svg></section>
  <section class="panel half"><h2>Bits per second</h2><svg id="bpsChart" viewBox="0 0 600 180" preserveAspectRatio="none"></svg></section>
  <section class="panel third"><h2>Protocol mix</h2><div id="protocols"></div></section>
  <section class="panel third"><h2>Top talkers</h2><div id="talkers"></div></section>
  <section class="panel third"><h2>Drops by reason</h2><div id="dropTable"></div></section>
  <section class="panel full" id="topFlowsPanel"><h2>Top flows by bytes</h2><div id="topFlows"></div></section>
  <div class="full" id="tables" style="display:grid; gap:16px; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr));"></div>
</main>
<script>
"use strict";
const $ = id => document.getElementById(id);
const seen = new Set();
const units = (v, base, suffix) => {
  const k = base; const names = ["", "k", "M", "G", "T"]; let i = 0;
  while (Math.abs(v) >= k && i < names.length - 1) { v /= k; i++; }
  return (i ? v.toFixed(v < 10 ? 2 : 1) : Math.round(v)) + " " + names[i] + suffix;
};
const count = v => Number(v).toLocaleString("en-US");
const esc = s => String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));

function chart(svg, points, key, color, fmt) {
  const w = 600, h = 180, left = 58, bottom = 18;
  if (points.length < 2) { svg.innerHTML = `<text x="${w/2}" y="${h/2}" fill="#8494a7" text-anchor="middle" font-size="13">collecting…</text>`; return; }
  const t0 = points[0].time, t1 = points[points.length - 1].time;
  const max = Math.max(1, ...points.map(p => p[key])) * 1.1;
  const x = t => left + (w - left - 6) * (t - t0) / Math.max(1e-9, t1 - t0);
  const y = v => (h - bottom) - (h - bottom - 8) * v / max;
  let grid = "";
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = y(v);
    grid += `<line x1="${left}" x2="${w}" y1="${yy}" y2="${yy}" stroke="#263241"/>` +
            `<text x="${left - 6}" y="${yy + 4}" fill="#8494a7" font-size="11" text-anchor="end">${fmt(v)}</text>`;
  }
  const span = t1 - t0;
  grid += `<text x="${left}" y="${h - 3}" fill="#8494a7" font-size="11">-${Math.round(span)} s</text><text x="${w - 4}" y="${h - 3}" fill="#8494a7" font-size="11" text-anchor="end">now</text>`;
  const line = points.map((p, i) => (i ? "L" : "M") + x(p.time).toFixed(1) + "," + y(p[key]).toFixed(1)).join("");
  const area = line + `L${x(t1).toFixed(1)},${y(0)}L${x(t0).toFixed(1)},${y(0)}Z`;
  svg.innerHTML = grid + `<path d="${area}" fill="${color}" fill-opacity="0.15"/><path d="${line}" fill="none" stroke="${color}" stroke-width="2"/>`;
}

function bars(el, rows) {
  if (!rows.length) { el.innerHTML = `<div class="empty">nothing yet</div>`; return; }
  // Rows that count only packets (forward's payload kinds, collect's protocols) are drawn by packets.
  const byBytes = rows.some(r => r.bytes > 0);
  const value = r => byBytes ? r.bytes : r.packets;
  const max = Math.max(1, ...rows.map(value));
  // Rules and exporters have no flows: no column for them.
  const flows = rows.some(r => r.flows > 0);
  el.innerHTML = `<table><tr><th>name</th><th class="n">${byBytes ? "bytes" : "packets"}</th>${flows ? `<th class="n">flows</th>` : ""}<th style="width:30%"></th></tr>` +
    rows.map(r => `<tr><td title="${esc(r.name)}">${esc(r.name)}</td><td class="n">${byBytes ? units(r.bytes, 1000, "B") : count(r.packets)}</td>${flows ? `<td class="n">${count(r.flows)}</td>` : ""}` +
      `<td><div class="bar" style="width:${(100 * value(r) / max).toFixed(1)}%"></div></td></tr>`).join("") + `</table>`;
}

function table(rows, columns, numeric) {
  return `<table><tr>${columns.map((c, i) => `<th class="${numeric(i) ? "n" : ""}">${esc(c)}</th>`).join("")}</tr>` +
    rows.map(r => `<tr>${r.map((v, i) => `<td class="${numeric(i) ? "n" : ""}" title="${esc(v)}">${esc(v)}</td>`).join("")}</tr>`).join("") + `</table>`;
}

function render(s) {
  $("meta").textContent = `${s.command} · FlowTap ${s.version} · up ${Math.round(s.uptime_seconds)} s`;
  $("packets").textContent = count(s.packets);
  $("packets").dataset.value = String(s.packets);
  $("pps").textContent = units(s.rates.packets_per_second, 1000, "");
  $("bps").textContent = units(s.rates.bits_per_second, 1000, "b");
  $("bytes").textContent = units(s.bytes, 1000, "B");
  $("flows").textContent = count(s.active_flows);
  // forward, collect and incubate keep no flows: no flow tile or table for them.
  const flowCommand = ["abstract", "analyze", "flows"].includes(s.command);
  $("flowsTile").style.display = flowCommand ? "" : "none";
  $("topFlowsPanel").style.display = flowCommand ? "" : "none";
  document.querySelector(".tiles").style.gridTemplateColumns = `repeat(${flowCommand ? 6 : 5}, 1fr)`;
  const drops = s.metrics.filter(m => m.type === "counter" && /dropped|drops/.test(m.name) && m.value > 0);
  const dropTotal = drops.reduce((a, m) => a + m.value, 0);
  $("drops").textContent = count(dropTotal);
  $("dropTile").classList.toggle("warn", dropTotal > 0);
  $("dropTable").innerHTML = drops.length ? `<table class="wrap"><tr><th>counter</th><th class="n">count</th></tr>` +
    drops.map(m => `<tr><td>${esc(m.name.replace(/^flowtap_/, "").replace(/_total$/, ""))}<div class="labels">${esc(Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(" "))}</div></td>` +
      `<td class="n">${count(m.value)}</td></tr>`).join("") + `</table>` : `<div class="empty">no drops</div>`;
  chart($("ppsChart"), s.history, "packets_per_second", "#4fb3ff", v => units(v, 1000, ""));
  chart($("bpsChart"), s.history, "bits_per_second", "#ffb454", v => units(v, 1000, "b"));
  bars($("protocols"), s.protocols);
  bars($("talkers"), s.top_talkers);
  $("topFlows").innerHTML = s.top_flows.length ? table(s.top_flows.map(f => [f.a, f.b, f.proto, count(f.packets), units(f.bytes, 1000, "B"), f.duration.toFixed(1) + " s"]),
    ["endpoint", "endpoint", "proto", "packets", "bytes", "duration"], i => i >= 3) : `<div class="empty">no flows yet</div>`;
  $("tables").innerHTML = s.tables.map(t => `<section class="panel"><h2>${esc(t.title)}</h2>` +
    (t.rows.length ? table(t.rows, t.columns, i => i > 0) : `<div class="empty">none</div>`) + `</section>`).join("");
  // For tests and the curious: how many updates arrived and how many different packet counts they showed.
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  seen.add(s.packets);
  document.body.dataset.distinctPackets = String(seen.size);
}

async function poll() {
  try {
    const response = await fetch("api/v1/status", { cache: "no-store" });
    if (!response.ok) throw new Error(response.status);
    render(await response.json());
    $("state").className = "live"; $("state").textContent = "live";
  } catch (e) {
    $("state").className = "stale"; $("state").textContent = "no answer: " + e.message;
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
"""#
}
