// Camera health table: camera.health pushes over the site's socket, plus a re-read of the state
// after each (re)connect and every 15 s (fps and last frame change without a push).
(function () {
  "use strict";
  const root = document.getElementById("camera-health");
  if (!root) return;
  const conn = document.getElementById("conn");
  const clock = new Intl.DateTimeFormat("sv-SE", {
    timeZone: root.dataset.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function cell(row, role) { return row.querySelector(`[data-role="${role}"]`); }

  function showHealth(ev) {
    const row = root.querySelector(`tr[data-camera-id="${ev.camera_id}"]`);
    if (!row) return;
    const badge = cell(row, "health");
    badge.className = "badge health-" + ev.state;
    badge.textContent = ev.state.charAt(0).toUpperCase() + ev.state.slice(1);
    cell(row, "reason").textContent = ev.reason || "";
    const last = cell(row, "last-frame");
    if (ev.last_frame_at) {
      const t = document.createElement("time");
      t.dateTime = ev.last_frame_at;
      t.textContent = clock.format(new Date(ev.last_frame_at));
      last.replaceChildren(t);
    } else {
      last.textContent = "—";
    }
    cell(row, "fps").textContent = ev.measured_fps == null ? "—" : ev.measured_fps.toFixed(1);
    if (ev.reconnect_count != null) cell(row, "reconnects").textContent = String(ev.reconnect_count);
    if (ev.lease_owner != null) cell(row, "lease").textContent = ev.lease_owner || "—";
  }

  async function reread() {
    const res = await fetch(root.dataset.stateUrl, { credentials: "same-origin" });
    if (res.ok) (await res.json()).cameras.forEach(showHealth);
  }

  let delay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    ws.onopen = () => { delay = 500; conn.textContent = "live"; conn.className = "conn ok"; reread(); };
    ws.onmessage = (msg) => { const ev = JSON.parse(msg.data); if (ev.type === "camera.health") showHealth(ev); };
    ws.onclose = () => {
      conn.textContent = "reconnecting…"; conn.className = "conn down";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
  setInterval(() => { if (!document.hidden) reread(); }, 15000);
})();
