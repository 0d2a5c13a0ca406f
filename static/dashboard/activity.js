// Activity page: draws the JSON of dashboard/analytics.py with Plotly, re-reads it when the filters
// change and, throttled, when the site's socket reports incidents (their events are new data).
(function () {
  "use strict";
  const root = document.getElementById("activity");
  if (!root || !window.Plotly) return;
  const form = document.getElementById("activity-filters");
  const errors = document.getElementById("activity-errors");
  const conn = document.getElementById("conn");
  const heatmapsEl = document.getElementById("heatmaps");
  const MIN_REFRESH_MS = 5000;  // live re-reads at most this often, however many incidents arrive,
  const LOAD_SHARE = 5;  // and leave the server at least 5 times as long as the last answer took
  const SLIDE_MS = 60000;  // a relative window moves on even when nothing happens
  const THEME = { text: "#e6edf3", muted: "#9aa7b3", grid: "#2a3540", bg: "#0f1419" };
  const PALETTE = ["#4aa3ff", "#f2cc60", "#7ee2a0", "#ffa198", "#d2a8ff", "#79c0ff", "#ffb77c", "#56d4dd"];
  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const BIN_WORD = { minute: "per minute", hour: "per hour", day: "per day" };

  // --- Filters -----------------------------------------------------------------------------------

  function params() {
    const p = new URLSearchParams(new FormData(form));
    if (p.get("window") !== "custom") { p.delete("start"); p.delete("end"); }
    for (const [k, v] of [...p.entries()]) if (!v) p.delete(k);
    return p;
  }

  function showCustomTimes() {
    const custom = form.elements.window.value === "custom";
    form.querySelectorAll(".custom-time").forEach((el) => { el.hidden = !custom; });
  }

  // A window that ended in the past gets no new events (its end as the server read it, in the site's zone).
  function isLive() {
    return form.elements.window.value !== "custom" || !lastData || new Date(lastData.window.end) > new Date();
  }

  // --- Figures -----------------------------------------------------------------------------------

  function baseLayout(extra) {  // sized by its box (.chart in activity.css), so it follows the window
    return Object.assign({
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: THEME.bg, autosize: true,
      font: { color: THEME.text, family: "system-ui, sans-serif", size: 12 },
      margin: { l: 48, r: 12, t: 8, b: 40 },
      showlegend: true, legend: { orientation: "h", y: -0.22, font: { color: THEME.text } },
      xaxis: { type: "date", gridcolor: THEME.grid, linecolor: THEME.grid, tickfont: { color: THEME.muted } },
      yaxis: { gridcolor: THEME.grid, zerolinecolor: THEME.grid, tickfont: { color: THEME.muted }, rangemode: "tozero" },
      colorway: PALETTE,
    }, extra || {});
  }

  function emptyNote(el, text) {
    Plotly.purge(el);
    el.replaceChildren();
    const p = document.createElement("p");
    p.className = "empty"; p.textContent = text;
    el.append(p);
    el.classList.add("is-empty");
    el.setAttribute("aria-label", text);
  }

  function drawChart(el, traces, layout, summary, emptyText) {
    if (!traces.length) { emptyNote(el, emptyText); return; }
    el.querySelectorAll(":scope > .empty").forEach((p) => p.remove());
    el.classList.remove("is-empty");
    Plotly.react(el, traces, baseLayout(layout), CONFIG);
    el.setAttribute("aria-label", summary);
  }

  const sum = (xs) => xs.reduce((a, b) => a + b, 0);

  function seriesTraces(bins, series, type) {
    return Object.entries(series).map(([name, ys]) => (
      type === "bar" ? { type: "bar", name, x: bins, y: ys } : { type: "scatter", mode: "lines", name, x: bins, y: ys, line: { width: 2 } }
    ));
  }

  function drawCounts(data) {
    const bins = data.window.bins;
    const actions = data.per_bin.by_action, zones = data.per_bin.by_zone;
    const total = sum(Object.values(actions).map(sum));
    const word = BIN_WORD[data.window.bin] || "";
    root.querySelectorAll('[data-role="bin"]').forEach((el) => { el.textContent = word; });
    drawChart(document.getElementById("chart-action"), seriesTraces(bins, actions, "bar"), { barmode: "stack" },
      `Events by action ${word}: ${total} in all`, "No events in this window.");
    drawChart(document.getElementById("chart-zone"), seriesTraces(bins, zones, "line"), {},
      `Events by zone ${word}: ${Object.keys(zones).length} zones`, "No events in this window.");
  }

  function note(id, text) {
    const el = document.getElementById(id);
    el.textContent = text; el.hidden = !text;
  }

  function drawOccupancy(data) {
    note("occupancy-note", data.occupancy.truncated ? `Only the newest ${data.occupancy.limit} segments are counted.` : "");
    const traces = data.occupancy.zones.map((z) => ({ type: "scatter", mode: "lines", name: z.zone, x: data.window.bins, y: z.mean, line: { shape: "hv", width: 2 } }));
    drawChart(document.getElementById("chart-occupancy"), traces, { yaxis: Object.assign(baseLayout().yaxis, { title: { text: "actors" } }) },
      `Zone occupancy of ${traces.length} area zones`, "No area-zone events in this window.");
  }

  function drawLines(data) {
    const notes = [];
    if (data.lines.undetermined) notes.push(`${data.lines.undetermined} crossings of "either way" rules went uncounted: their direction could not be told from the boxes.`);
    if (data.lines.truncated) notes.push(`Only the newest ${data.lines.limit} crossings are counted.`);
    note("lines-note", notes.join(" "));
    const traces = [];
    for (const z of data.lines.zones) {
      traces.push({ type: "bar", name: `${z.zone}: left → right`, x: data.window.bins, y: z.left_to_right });
      traces.push({ type: "bar", name: `${z.zone}: right → left`, x: data.window.bins, y: z.right_to_left });
    }
    const total = sum(data.lines.zones.map((z) => sum(z.left_to_right) + sum(z.right_to_left)));
    drawChart(document.getElementById("chart-lines"), traces, { barmode: "group" },
      `Line crossings: ${total} in all`, "No crossings of directed lines in this window.");
  }

  // Transparent where nobody stood, so the picture shows through; warm where people spent time.
  // The alpha ramps up from 0, so spots fade into the picture instead of ending in hard squares.
  const HEAT_SCALE = [[0, "rgba(74,163,255,0)"], [0.15, "rgba(74,163,255,0.45)"], [0.4, "rgba(94,224,138,0.6)"], [0.7, "rgba(242,204,96,0.75)"], [1, "rgba(248,81,73,0.9)"]];

  function pictureSize(url) {
    return new Promise((resolve) => {
      if (!url) { resolve(null); return; }
      const img = new Image();
      img.onload = () => resolve({ w: img.naturalWidth, h: img.naturalHeight, src: img.src });
      img.onerror = () => resolve(null);
      img.src = `${url}?v=${Math.floor(Date.now() / SLIDE_MS)}`;  // a newer picture at most each minute
    });
  }

  // For the eye only: a blur over about a cell (a foot point is not exact) and a square-root scale,
  // so a few seconds of passing show next to minutes of standing. Hover reads the real seconds.
  const KERNEL = [1, 4, 6, 4, 1];
  function forDisplay(z) {
    const reach = (KERNEL.length - 1) / 2;
    return z.map((row, r) => row.map((_, c) => {
      let sum = 0, weight = 0;
      for (let dr = -reach; dr <= reach; dr++) {
        for (let dc = -reach; dc <= reach; dc++) {
          const cells = z[r + dr];
          if (!cells || cells[c + dc] === undefined) continue;
          const w = KERNEL[dr + reach] * KERNEL[dc + reach];
          sum += w * cells[c + dc]; weight += w;
        }
      }
      return Math.sqrt(sum / weight);
    }));
  }

  function heatmapFigure(hm, picture, width) {
    const centers = (n) => Array.from({ length: n }, (_, i) => (i + 0.5) / n);
    const aspect = picture ? picture.h / picture.w : 3 / 4;
    const trace = {
      type: "heatmap", x: centers(hm.cols), y: centers(hm.rows), z: forDisplay(hm.z), customdata: hm.z, zmin: 0, zsmooth: "best",
      // No colour bar beside the picture: the caption holds a legend, and the picture keeps the width.
      colorscale: HEAT_SCALE, showscale: false, hovertemplate: "%{customdata:.1f} s here<extra></extra>",
    };
    const axis = { range: [0, 1], visible: false, fixedrange: true };
    const layout = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#000", margin: { l: 0, r: 0, t: 0, b: 0 },
      width, height: Math.round(width * aspect), font: { color: THEME.text },
      xaxis: Object.assign({ domain: [0, 1] }, axis), yaxis: Object.assign({}, axis, { range: [1, 0] }),
      images: picture ? [{ source: picture.src, xref: "x", yref: "y", x: 0, y: 0, sizex: 1, sizey: 1,
        xanchor: "left", yanchor: "top", sizing: "stretch", layer: "below" }] : [],
      annotations: picture ? [] : [{ text: "No picture from this camera yet", showarrow: false, x: 0.5, y: 0.5, font: { color: THEME.muted } }],
    };
    return { data: [trace], layout };
  }

  function heatmapCard(hm) {
    let card = heatmapsEl.querySelector(`[data-camera-id="${hm.camera_id}"]`);
    if (!card) {
      card = document.createElement("figure");
      card.className = "heatmap"; card.dataset.cameraId = String(hm.camera_id);
      const plot = document.createElement("div"); plot.className = "heatmap-plot"; plot.setAttribute("role", "img");
      const caption = document.createElement("figcaption");
      const legend = document.createElement("span"); legend.className = "heat-legend"; legend.setAttribute("aria-hidden", "true");
      const low = document.createElement("span"), scale = document.createElement("span"), high = document.createElement("span");
      low.textContent = "0 s"; scale.className = "heat-scale"; high.dataset.role = "max";
      legend.append(low, scale, high);
      const text = document.createElement("span"); text.dataset.role = "summary";
      caption.append(text, legend);
      card.append(plot, caption);
    }
    return card;
  }

  async function drawHeatmaps(data) {
    heatmapsEl.querySelectorAll(".empty").forEach((el) => el.remove());
    const keep = new Set(data.heatmaps.map((hm) => String(hm.camera_id)));
    heatmapsEl.querySelectorAll(".heatmap").forEach((el) => { if (!keep.has(el.dataset.cameraId)) { Plotly.purge(el.firstChild); el.remove(); } });
    if (!data.heatmaps.length) { heatmapsEl.innerHTML = '<p class="empty">No cameras on this site yet.</p>'; return; }
    const pictures = await Promise.all(data.heatmaps.map((hm) => pictureSize(hm.snapshot_url)));
    data.heatmaps.forEach((hm, i) => {
      const card = heatmapCard(hm);
      heatmapsEl.append(card);  // in the answer's order
      const plot = card.querySelector(".heatmap-plot");
      const width = Math.max(240, Math.floor(card.clientWidth || heatmapsEl.clientWidth));
      const fig = heatmapFigure(hm, pictures[i], width);
      Plotly.react(plot, fig.data, fig.layout, { displaylogo: false, displayModeBar: false });
      const summary = `${hm.camera}: ${hm.seconds} s of presence from ${hm.events} events`;
      plot.setAttribute("aria-label", `Heatmap of ${summary}`);
      card.querySelector('[data-role="summary"]').textContent = summary + (hm.truncated ? " (the newest events only)" : "");
      card.querySelector('[data-role="max"]').textContent = `${Math.max(0, ...hm.z.map((row) => Math.max(...row))).toFixed(0)} s`;
    });
  }

  // --- Loading -----------------------------------------------------------------------------------

  let lastLoad = 0, lastTook = 0, timer = null, inFlight = null, again = false, lastData = null;

  function showErrors(body) {
    errors.replaceChildren();
    for (const [field, list] of Object.entries((body && body.errors) || {})) {
      for (const e of list) {
        const li = document.createElement("li");
        li.textContent = field === "__all__" ? e.message : `${field}: ${e.message}`;
        errors.append(li);
      }
    }
  }

  async function load() {
    const query = params();
    history.replaceState(null, "", `${location.pathname}?${query}`);
    root.dataset.state = "loading";
    lastLoad = Date.now();
    const res = await fetch(`${root.dataset.dataUrl}?${query}`, { credentials: "same-origin" });
    const body = await res.json().catch(() => null);
    lastTook = Date.now() - lastLoad;
    if (!res.ok) { showErrors(body); root.dataset.state = "error"; return; }
    showErrors(null);
    lastData = body;
    drawCounts(body); drawOccupancy(body); drawLines(body);
    await drawHeatmaps(body);
    root.dataset.state = "ready";
    root.dataset.renders = String(Number(root.dataset.renders) + 1);
  }

  function refresh() {
    clearTimeout(timer); timer = null;
    if (inFlight) { again = true; return; }  // the newest filters are read once this load is done
    inFlight = load()
      .catch(() => {
        root.dataset.state = "error";
        showErrors({ errors: { __all__: [{ message: "The server could not be reached; the page tries again on the next change." }] } });
      })
      .finally(() => { inFlight = null; if (again) { again = false; refresh(); } });
  }

  // Throttled: a call soon after the last load waits for the rest of the gap; later calls join it.
  function schedule() {
    if (timer) return;
    const gap = Math.max(MIN_REFRESH_MS, LOAD_SHARE * lastTook);
    timer = setTimeout(refresh, Math.max(0, lastLoad + gap - Date.now()));
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  form.addEventListener("change", () => {
    showCustomTimes();
    const f = form.elements;
    if (f.window.value === "custom" && !(f.start.value && f.end.value)) return;  // wait for both times
    refresh();
  });

  // --- Live --------------------------------------------------------------------------------------

  function touchesView(ev) {
    const camera = form.elements.camera.value;
    return !camera || camera === String(ev.camera_id);
  }

  let delay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    ws.onopen = () => { delay = 500; conn.textContent = "live"; conn.className = "conn ok"; if (lastLoad) schedule(); };
    ws.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      if ((ev.type === "incident.opened" || ev.type === "incident.updated") && touchesView(ev) && isLive()) schedule();
    };
    ws.onclose = () => {
      conn.textContent = "reconnecting…"; conn.className = "conn down";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  showCustomTimes();
  refresh();
  connect();
  setInterval(() => { if (form.elements.window.value !== "custom") schedule(); }, SLIDE_MS);
  let resizeTimer = null;
  window.addEventListener("resize", () => {  // the heatmaps keep their picture's shape at the new width
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (lastData) drawHeatmaps(lastData); }, 300);
  });
})();
