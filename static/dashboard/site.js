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
    const severity = document.createElement("span"); severity.className = `badge sev-${ev.severity}`;
    severity.textContent = ev.severity.charAt(0).toUpperCase() + ev.severity.slice(1);
    meta.append(severity, ` ${ev.camera} · ${new Date(ev.started_at).toLocaleTimeString()} · ${ev.status.replace("_", " ")}`);
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

  // --- Getting attention: a beep and desktop notifications, each off until the user turns it on ---

  const SOUND_KEY = "argus.alertSound", DESKTOP_KEY = "argus.desktopAlerts";
  const soundToggle = document.getElementById("alert-sound");
  const desktopButton = document.getElementById("desktop-alerts");
  const desktopState = document.getElementById("desktop-alerts-state");
  let audio = null;

  function isOn(key) { try { return localStorage.getItem(key) === "on"; } catch (e) { return false; } }
  function setOn(key, on) { try { localStorage.setItem(key, on ? "on" : "off"); } catch (e) { /* private mode */ } }

  // A short tone made by the Web Audio API (no audio file); high and critical alerts beep twice.
  function beep(times) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = audio || new Context();
    if (audio.state === "suspended") audio.resume();
    for (let n = 0; n < times; n++) {
      const at = audio.currentTime + n * 0.3;
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(at); osc.stop(at + 0.22);
    }
    root.dataset.beeps = String(Number(root.dataset.beeps || 0) + times);
  }

  function showDesktopState() {
    if (!("Notification" in window)) { desktopState.textContent = "This browser has no desktop notifications."; return; }
    const on = isOn(DESKTOP_KEY) && Notification.permission === "granted";
    desktopButton.hidden = false;
    desktopButton.textContent = on ? "Disable desktop alerts" : "Enable desktop alerts";
    desktopState.textContent = Notification.permission === "denied"
      ? "Desktop alerts are blocked in this browser's site settings." : (on ? "Desktop alerts on." : "");
  }

  async function toggleDesktop() {
    if (isOn(DESKTOP_KEY) && Notification.permission === "granted") { setOn(DESKTOP_KEY, false); showDesktopState(); return; }
    // Asked only here, on the user's click, never on page load (answered at once when already granted).
    const permission = await Notification.requestPermission();
    setOn(DESKTOP_KEY, permission === "granted");
    showDesktopState();
  }

  function notifyDesktop(ev) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !isOn(DESKTOP_KEY)) return;
    const n = new Notification(`${ev.severity.toUpperCase()} · ${ev.title}`,
      { body: `Camera: ${ev.camera}`, tag: `incident-${ev.incident_id}` });
    n.onclick = () => { window.focus(); location.href = ev.url; };
  }

  // Only alerts that arrive live call for attention; a re-read after reconnecting does not.
  function announce(ev) {
    if (ev.status !== "open") return;
    if (soundToggle.checked) beep(ev.severity === "high" || ev.severity === "critical" ? 2 : 1);
    notifyDesktop(ev);
  }

  soundToggle.checked = isOn(SOUND_KEY);
  soundToggle.addEventListener("change", () => {
    setOn(SOUND_KEY, soundToggle.checked);
    if (soundToggle.checked) beep(1);  // the user hears what it will sound like (and the browser allows audio)
  });
  desktopButton.addEventListener("click", toggleDesktop);
  showDesktopState();
  // Browsers let a page make sound only after the user interacted with it once.
  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!soundToggle.checked || !Context) return;
    audio = audio || new Context();
    audio.resume();
  }
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

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
    "incident.opened": (ev) => { showIncident(ev); announce(ev); },
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
