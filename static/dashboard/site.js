// Live wall: one WebSocket per site; reconnects with backoff and re-reads state after each connect.
(function () {
  "use strict";
  const root = document.getElementById("site");
  if (!root) return;
  const alerts = document.getElementById("alerts");
  const conn = document.getElementById("conn");
  const cameras = new Map();
  document.querySelectorAll(".camera").forEach((el) => cameras.set(el.dataset.cameraId, el));

  function part(cameraEl, role) { return cameraEl.querySelector(`[data-role="${role}"]`); }

  function showHealth(ev) {
    const el = cameras.get(String(ev.camera_id));
    if (!el) return;
    const badge = part(el, "health");
    badge.className = "badge health-" + ev.state;
    badge.textContent = ev.state.charAt(0).toUpperCase() + ev.state.slice(1);
    badge.title = ev.reason || "";
    part(el, "reason").textContent = ev.reason || "";
  }

  function drawActors(el, actors) {
    const img = part(el, "snapshot");
    const canvas = part(el, "overlay");
    const w = img.clientWidth, h = img.clientHeight;
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.lineWidth = 2; ctx.font = "12px system-ui, sans-serif";
    for (const a of actors) {
      const [x1, y1, x2, y2] = a.box;
      ctx.strokeStyle = "#5ee08a"; ctx.fillStyle = "#5ee08a";
      ctx.strokeRect(x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h);
      ctx.fillText(`${a.label} #${a.track} ${Math.round(a.score * 100)}%`, x1 * w + 2, Math.max(12, y1 * h - 3));
    }
  }

  function showActivity(ev) {
    const el = cameras.get(String(ev.camera_id));
    if (!el) return;
    const img = part(el, "snapshot");
    const url = `${el.dataset.snapshotUrl}?v=${ev.snapshot_version}-${Date.now()}`;
    const probe = new Image();
    probe.onload = () => {
      img.src = probe.src;
      img.hidden = false;  // hidden until the first picture, so no broken-image icon shows
      part(el, "placeholder").hidden = true;
      drawActors(el, ev.actors);
    };
    probe.src = url;
    const n = ev.actors.length;
    part(el, "actors").textContent = `${n} ${n === 1 ? "person" : "people"} detected · ${new Date(ev.time).toLocaleTimeString()}`;
    el.dataset.actors = String(n);
  }

  function alertItem(ev) {
    let li = alerts.querySelector(`[data-incident-id="${ev.incident_id}"]`);
    const fresh = !li;
    if (fresh) { li = document.createElement("li"); li.dataset.incidentId = String(ev.incident_id); }
    // An update (e.g. its clip is ready) must not take the highlight off an alert that just came in.
    const isNew = fresh || li.classList.contains("new");
    li.className = `alert sev-${ev.severity}` + (isNew ? " new" : "");
    li.replaceChildren();
    const a = document.createElement("a"); a.href = ev.url; a.textContent = ev.title;
    const meta = document.createElement("span"); meta.className = "meta";
    meta.textContent = `${ev.camera} · ${new Date(ev.started_at).toLocaleTimeString()} · ${ev.status.replace("_", " ")}`;
    li.append(a, meta);
    return { li, fresh };
  }

  function showIncident(ev) {
    const active = ev.status === "open" || ev.status === "acknowledged";
    const { li, fresh } = alertItem(ev);
    if (!active) { li.remove(); return; }
    if (fresh) {
      const empty = alerts.querySelector(".empty");
      if (empty) empty.remove();
      alerts.prepend(li);
    }
  }

  async function reread() {
    const res = await fetch(root.dataset.stateUrl, { credentials: "same-origin" });
    if (!res.ok) return;
    const state = await res.json();
    state.cameras.forEach(showHealth);
    state.incidents.slice().reverse().forEach(showIncident);
  }

  const handlers = {
    "camera.activity": showActivity,
    "camera.health": showHealth,
    "incident.opened": showIncident,
    "incident.updated": showIncident,
  };

  let delay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    ws.onopen = () => { delay = 500; conn.textContent = "live"; conn.className = "conn ok"; reread(); };
    ws.onmessage = (msg) => { const ev = JSON.parse(msg.data); (handlers[ev.type] || (() => {}))(ev); };
    ws.onclose = () => {
      conn.textContent = "reconnecting…"; conn.className = "conn down";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
})();
