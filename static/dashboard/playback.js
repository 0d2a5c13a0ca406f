// Incident player: the events' boxes drawn over the clip in step with playback, and a timeline under
// it that seeks. overlay.json gives each event's boxes on the clip's clock (seconds from its first
// frame, what video.currentTime counts), normalized to the frame. Each drawn frame interpolates them
// at currentTime and maps them onto the picture inside the <video> element, whose letterbox bars
// (object-fit) are not part of the frame.
(function () {
  "use strict";

  function lerp(a, b, f) {
    return a + (b - a) * f;
  }

  // The box [x1, y1, x2, y2] of a track at time t, or null when the track is not on screen then.
  function boxAt(samples, t, hold) {
    if (!samples.length) return null;
    const first = samples[0], last = samples[samples.length - 1];
    if (t < first[0] - hold || t > last[0] + hold) return null;
    if (t <= first[0]) return first.slice(1);
    if (t >= last[0]) return last.slice(1);
    let lo = 0, hi = samples.length - 1; // samples[lo][0] <= t < samples[hi][0]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (samples[mid][0] <= t) lo = mid; else hi = mid;
    }
    const a = samples[lo], b = samples[hi];
    const f = (t - a[0]) / (b[0] - a[0] || 1);
    return [1, 2, 3, 4].map((i) => lerp(a[i], b[i], f));
  }

  // Where the picture lies inside the element, in CSS pixels, for each object-fit.
  function pictureRect(video) {
    const cw = video.clientWidth, ch = video.clientHeight;
    const vw = video.videoWidth, vh = video.videoHeight;
    const style = getComputedStyle(video);
    if (!vw || !vh || style.objectFit === "fill") return { x: 0, y: 0, w: cw, h: ch };
    const contain = Math.min(cw / vw, ch / vh);
    const scale = {
      cover: Math.max(cw / vw, ch / vh),
      none: 1,
      "scale-down": Math.min(1, contain),
    }[style.objectFit] || contain;
    const w = vw * scale, h = vh * scale;
    const [px, py] = style.objectPosition.split(" ").map((p) => (p.endsWith("%") ? parseFloat(p) / 100 : NaN));
    const fx = Number.isNaN(px) ? 0.5 : px, fy = Number.isNaN(py) ? 0.5 : py;
    return { x: (cw - w) * fx, y: (ch - h) * fy, w, h };
  }

  function colour(trackId) {
    let hash = 0;
    for (const ch of String(trackId)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    return `hsl(${(hash * 137) % 360}, 95%, 60%)`;
  }

  function sizeCanvas(canvas, video) {
    const dpr = window.devicePixelRatio || 1;
    const w = video.clientWidth, h = video.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    Object.assign(canvas.style, {
      width: `${w}px`, height: `${h}px`, left: `${video.offsetLeft}px`, top: `${video.offsetTop}px`,
    });
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return ctx;
  }

  function label(ctx, track, x, y, rect) {
    const text = `${track.label} #${track.track_id} · ${track.action} ${track.score.toFixed(2)}`;
    ctx.font = "12px system-ui, sans-serif";
    const w = ctx.measureText(text).width + 8, h = 16;
    const top = y - h >= rect.y ? y - h : y; // inside the box when there is no room above it
    ctx.fillStyle = colour(track.track_id);
    ctx.fillRect(x - 1, top, w, h);
    ctx.fillStyle = "#0b0f14";
    ctx.fillText(text, x + 3, top + 12);
  }

  function drawBoxes(ctx, player, rect, t) {
    const drawn = [];
    ctx.save();
    ctx.beginPath();
    ctx.rect(rect.x, rect.y, rect.w, rect.h); // object-fit: cover crops the picture; so are its boxes
    ctx.clip();
    for (const track of player.overlay.tracks) {
      const box = boxAt(track.samples, t, player.overlay.hold_s);
      if (!box) continue;
      const x1 = rect.x + box[0] * rect.w, y1 = rect.y + box[1] * rect.h;
      const x2 = rect.x + box[2] * rect.w, y2 = rect.y + box[3] * rect.h;
      ctx.lineWidth = 2;
      ctx.strokeStyle = colour(track.track_id);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      label(ctx, track, x1, y1, rect);
      drawn.push({ event: track.event_id, track: track.track_id, box: [x1, y1, x2, y2].map((v) => +v.toFixed(1)) });
    }
    ctx.restore();
    return drawn;
  }

  // The span the page's timeline bars were drawn for, on the clip's clock. The overlay, read later,
  // may know of events the page does not show yet.
  function drawnSpan(list, overlay) {
    const origin = Date.parse(overlay.origin), from = Date.parse(list.dataset.from), to = Date.parse(list.dataset.to);
    if (Number.isNaN(from) || Number.isNaN(to)) return overlay.timeline;
    return { start_s: (from - origin) / 1000, end_s: (to - origin) / 1000 };
  }

  // The timeline follows the clip: a playhead, and the events on screen now highlighted.
  function follow(player, t) {
    const list = player.timeline, span = player.span;
    if (!list) return;
    const pct = (100 * (t - span.start_s)) / Math.max(span.end_s - span.start_s, 1e-3);
    list.style.setProperty("--playhead", `${Math.min(100, Math.max(0, pct)).toFixed(2)}%`);
    list.classList.add("following");
    list.classList.toggle("playing-outside", pct < 0 || pct > 100);
    for (const [track, row] of player.rows) row.classList.toggle("live", t >= track.start_s && t <= track.end_s);
  }

  function draw(player) {
    const { video, canvas } = player;
    const ctx = sizeCanvas(canvas, video);
    const t = video.currentTime;
    // Until the clip first plays or seeks, the element shows the poster (another moment): no boxes.
    const shown = player.started && player.enabled;
    const drawn = shown ? drawBoxes(ctx, player, pictureRect(video), t) : [];
    canvas.dataset.time = t.toFixed(3);
    canvas.dataset.boxes = JSON.stringify(drawn); // what is on screen: for people's tools and tests
    if (player.started) follow(player, t);
  }

  function loop(player) {
    draw(player);
    const running = !player.video.paused && !player.video.ended;
    player.frame = running ? requestAnimationFrame(() => loop(player)) : 0;
  }

  function seekable(player, row, track) {
    const go = () => {
      const video = player.video;
      const end = Number.isFinite(video.duration) ? Math.max(0, video.duration - 0.05) : Infinity;
      video.currentTime = Math.min(end, Math.max(0, track.start_s));
      if (video.getBoundingClientRect().bottom < 0) video.scrollIntoView({ block: "center" });
    };
    row.classList.add("seekable");
    row.tabIndex = 0;
    row.setAttribute("role", "button");
    row.title = "Show this event in the clip";
    row.addEventListener("click", go);
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        go();
      }
    });
  }

  function wire(player) {
    const { video } = player;
    const start = () => {
      player.started = true;
      if (!player.frame) loop(player);
    };
    video.addEventListener("play", start);
    video.addEventListener("playing", start);
    video.addEventListener("seeked", () => {
      player.started = true;
      draw(player);
    });
    for (const name of ["pause", "ended", "loadedmetadata", "timeupdate"]) {
      video.addEventListener(name, () => draw(player));
    }
    new ResizeObserver(() => draw(player)).observe(video);
    const toggle = document.getElementById("overlay-toggle");
    if (toggle) {
      toggle.addEventListener("change", () => {
        player.enabled = toggle.checked;
        draw(player);
      });
    }
    for (const [track, row] of player.rows) seekable(player, row, track);
    if (!video.paused) start();
    draw(player);
  }

  async function attach() {
    const box = document.getElementById("player");
    const video = document.getElementById("clip-video");
    const canvas = document.getElementById("clip-overlay");
    if (!box || !video || !canvas || box.dataset.attached) return;
    box.dataset.attached = "1";
    try {
      const response = await fetch(box.dataset.overlayUrl, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`overlay: HTTP ${response.status}`);
      const overlay = await response.json();
      const timeline = document.getElementById("timeline");
      const player = { video, canvas, overlay, timeline, enabled: true, started: false, frame: 0, rows: new Map() };
      player.span = timeline ? drawnSpan(timeline, overlay) : overlay.timeline;
      for (const track of overlay.tracks) {
        const row = timeline && timeline.querySelector(`li[data-event-id="${track.event_id}"]`);
        if (row) player.rows.set(track, row); // an event that arrived after the page did has no row
      }
      wire(player);
      box.dataset.overlay = "ready";
    } catch (err) {
      box.dataset.overlay = "failed"; // the clip still plays; only the boxes are missing
      console.warn(err);
    }
  }

  // A clip that was recording appears later (incident.js swaps the section in): attach then.
  document.addEventListener("argus:clip-changed", attach);
  attach();
})();
