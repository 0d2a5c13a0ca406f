// Zone and rule editor: draws zones over the camera picture (SVG, normalized points) and saves
// zones and rules through the REST API; the API's messages per field are shown next to the fields.
(function () {
  "use strict";
  const root = document.getElementById("editor");
  if (!root) return;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const canEdit = root.dataset.canEdit === "true";
  const cameraId = Number(root.dataset.cameraId);
  const siteId = Number(root.dataset.siteId);
  const svg = document.getElementById("overlay");
  const hint = document.getElementById("hint");
  const zoneList = document.getElementById("zone-list");
  const zonePanel = document.getElementById("zone-panel");
  const zoneForm = document.getElementById("zone-form");
  const rulePanel = document.getElementById("rule-panel");
  const ruleList = document.getElementById("rule-list");
  const ruleForm = document.getElementById("rule-form");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;

  // size: the picture's pixels (the SVG's viewBox); points are normalized to 0..1.
  const state = { zones: [], rules: [], selected: null, mode: "idle", draft: [], rule: null, size: [1600, 900] };

  // --- API -------------------------------------------------------------------------------------

  async function api(method, url, body) {
    const res = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? null : await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, data };
  }

  async function loadZones() {
    const res = await api("GET", `${root.dataset.zonesUrl}?camera=${cameraId}&page_size=500`);
    state.zones = res.ok ? res.data.results : [];
  }

  async function loadRules(zoneId) {
    const res = await api("GET", `${root.dataset.rulesUrl}?zone=${zoneId}&page_size=500`);
    state.rules = res.ok ? res.data.results : [];
  }

  // --- Errors next to fields --------------------------------------------------------------------

  function clearErrors(form) { form.querySelectorAll(".error").forEach((p) => { p.textContent = ""; }); }

  function showErrors(form, errors) {
    clearErrors(form);
    for (const [field, messages] of Object.entries(errors || {})) {
      const key = field === "__all__" ? "non_field_errors" : field.replace(/^zone\./, "");
      const own = form.querySelector(`[data-error-for="${key}"]`);
      const slot = own || form.querySelector('[data-error-for="non_field_errors"]');
      const text = (Array.isArray(messages) ? messages : [messages]).join(" ");
      const line = own ? text : `${field}: ${text}`;  // a field the form does not show: say which
      slot.textContent = slot.textContent ? `${slot.textContent} ${line}` : line;
    }
  }

  // --- Drawing ---------------------------------------------------------------------------------

  function el(name, attrs) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function px(p) { return [p[0] * state.size[0], p[1] * state.size[1]]; }
  function pointsAttr(points) { return points.map((p) => px(p).join(",")).join(" "); }

  // An arrowhead in the middle of a directed line, pointing from its point 1 to point 2.
  function arrowhead(a, b, cls) {
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
    const [ux, uy] = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
    const size = state.size[0] / 40;
    const [mx, my] = [(a[0] + b[0]) / 2 + ux * size / 2, (a[1] + b[1]) / 2 + uy * size / 2];
    const tip = [mx, my], back = [mx - ux * size, my - uy * size];
    const left = [back[0] - uy * size * 0.6, back[1] + ux * size * 0.6];
    const right = [back[0] + uy * size * 0.6, back[1] - ux * size * 0.6];
    return el("polygon", { points: [tip, left, right].map((p) => p.join(",")).join(" "), class: `arrow ${cls.split(" ").map((c) => "is-" + c).join(" ")}` });
  }

  function shape(kind, points, cls) {
    if (kind === "line") {
      if (points.length < 2) return null;
      const [a, b] = [px(points[0]), px(points[1])];
      const g = el("g", { class: "line-zone" });
      g.append(el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: cls }), arrowhead(a, b, cls));
      return g;
    }
    return el(points.length >= 3 && cls !== "draft" ? "polygon" : "polyline", { points: pointsAttr(points), class: cls });
  }

  function label(zone) {
    const [x, y] = px(zone.points[0]);
    const size = state.size[0] / 45;
    const text = el("text", { x: x + size / 2, y: Math.max(size, y - size / 2), "font-size": size, class: "zone-label" });
    text.textContent = zone.name;
    return text;
  }

  function handles(points, editable) {
    return points.map((p, i) => {
      const [x, y] = px(p);
      const r = state.size[0] / 120;
      return el("circle", { cx: x, cy: y, r, class: editable ? "handle" : "handle fixed", "data-index": i });
    });
  }

  function render() {
    svg.replaceChildren();
    for (const zone of state.zones) {
      if (state.selected && zone.id === state.selected.id) continue;
      const node = shape(zone.kind, zone.points, "zone");
      if (node) { node.dataset.zoneId = zone.id; svg.append(node, label(zone)); }
    }
    const sel = state.selected;
    if (sel && sel.points.length) {
      const node = shape(sel.kind, sel.points, "zone selected");
      if (node) svg.append(node);
      if (sel.name) svg.append(label(sel));
      svg.append(...handles(sel.points, canEdit));
    }
    if (state.mode !== "idle" && state.draft.length) {
      const node = shape(state.mode === "line" ? "line" : "polygon", state.draft, "draft");
      if (node) svg.append(node);
      svg.append(...handles(state.draft, false));
    }
  }

  function normalized(event) {
    const box = svg.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 10000) / 10000));
    return [clamp((event.clientX - box.left) / box.width), clamp((event.clientY - box.top) / box.height)];
  }

  function setMode(mode) {
    state.mode = mode;
    state.draft = [];
    const drawing = mode !== "idle";
    root.querySelectorAll('[data-action="cancel"], [data-action="undo"]').forEach((b) => { b.hidden = !drawing; });
    const finish = root.querySelector('[data-action="finish"]');
    if (finish) finish.hidden = mode !== "polygon";
    svg.classList.toggle("drawing", drawing);
    hint.textContent = {
      polygon: "Click to add points; double-click or Enter closes the area; Backspace undoes a point; Esc cancels.",
      line: "Click the line's start, then its end: the arrow shows the direction. Esc cancels.",
      idle: canEdit ? "Pick a zone to edit it (drag its points), or draw a new one." : "",
    }[mode];
    if (drawing) svg.focus();
    render();
  }

  function finishDraft() {
    const kind = state.mode === "line" ? "line" : "polygon";
    if (kind === "polygon" && state.draft.length < 3) { hint.textContent = "An area needs at least 3 points."; return; }
    const points = state.draft;
    setMode("idle");
    select({ id: null, name: "", kind, anchor: "bottom_center", points });
    zoneForm.querySelector("[name=name]").focus();
    hint.textContent = "Name the zone and save it.";
  }

  function addPoint(event) {
    state.draft.push(normalized(event));
    if (state.mode === "line" && state.draft.length === 2) { finishDraft(); return; }
    render();
  }

  // Dragging a vertex of the selected zone.
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    const handle = event.target.closest("circle.handle:not(.fixed)");
    if (!handle || state.mode !== "idle" || !state.selected) return;
    drag = Number(handle.dataset.index);
    svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  svg.addEventListener("pointermove", (event) => {
    if (drag === null) return;
    state.selected.points[drag] = normalized(event);
    render();
  });
  svg.addEventListener("pointerup", () => { drag = null; });

  svg.addEventListener("click", (event) => {
    if (state.mode === "idle") {
      const hit = event.target.closest("[data-zone-id]");
      if (hit) selectZone(Number(hit.dataset.zoneId));
      return;
    }
    // The second click of a double-click closes the area instead of adding a point on top.
    if (event.detail > 1) return;
    addPoint(event);
  });
  svg.addEventListener("dblclick", (event) => {
    if (state.mode !== "polygon") return;
    event.preventDefault();
    finishDraft();
  });

  document.addEventListener("keydown", (event) => {
    if (state.mode === "idle") return;
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (event.key === "Escape") { setMode("idle"); event.preventDefault(); }
    else if (typing) return;
    else if (event.key === "Enter" && state.mode === "polygon") { finishDraft(); event.preventDefault(); }
    else if (event.key === "Backspace") { state.draft.pop(); render(); event.preventDefault(); }
  });

  // --- Zones -----------------------------------------------------------------------------------

  function renderZoneList() {
    zoneList.replaceChildren();
    if (!state.zones.length) {
      const li = document.createElement("li"); li.className = "muted"; li.textContent = "No zones yet.";
      zoneList.append(li);
    }
    for (const zone of state.zones) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.className = "link"; b.dataset.zoneId = zone.id;
      b.textContent = `${zone.name} (${zone.kind === "line" ? "line" : "area"})`;
      b.setAttribute("aria-pressed", String(!!state.selected && state.selected.id === zone.id));
      b.addEventListener("click", () => selectZone(zone.id));
      li.append(b);
      zoneList.append(li);
    }
  }

  function select(zone) {
    state.selected = zone ? { ...zone, points: zone.points.map((p) => [...p]) } : null;
    zonePanel.hidden = !zone;
    clearErrors(zoneForm);
    if (zone) {
      zoneForm.elements.name.value = zone.name;
      zoneForm.elements.kind.value = zone.kind;
      zoneForm.elements.anchor.value = zone.anchor;
      document.getElementById("zone-title").textContent = zone.id ? `Zone: ${zone.name}` : "New zone";
      const del = zoneForm.querySelector('[data-action="delete-zone"]');
      if (del) del.hidden = !zone.id;
    }
    renderZoneList();
    render();
    showRules();
  }

  async function selectZone(id) {
    if (state.mode !== "idle") setMode("idle");
    select(state.zones.find((z) => z.id === id) || null);
  }

  zoneForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const zone = state.selected;
    const body = { name: zoneForm.elements.name.value.trim(), anchor: zoneForm.elements.anchor.value, points: zone.points };
    const res = zone.id
      ? await api("PATCH", `${root.dataset.zonesUrl}${zone.id}/`, body)
      : await api("POST", root.dataset.zonesUrl, { ...body, camera: cameraId, kind: zone.kind });
    if (!res.ok) { showErrors(zoneForm, res.data); hint.textContent = "The zone was not saved."; return; }
    await loadZones();
    select(res.data);
    hint.textContent = `Zone “${res.data.name}” saved.`;
  });

  root.addEventListener("click", async (event) => {
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "draw-polygon") { select(null); setMode("polygon"); }
    else if (action === "draw-line") { select(null); setMode("line"); }
    else if (action === "cancel") setMode("idle");
    else if (action === "finish") finishDraft();
    else if (action === "undo") { state.draft.pop(); render(); }
    else if (action === "delete-zone") await deleteZone();
    else if (action === "new-rule") editRule(null);
    else if (action === "delete-rule") await deleteRule();
    else if (action === "preview") await preview();
  });

  async function deleteZone() {
    const zone = state.selected;
    if (!zone || !zone.id || !confirm(`Delete zone “${zone.name}” and its rules?`)) return;
    const res = await api("DELETE", `${root.dataset.zonesUrl}${zone.id}/`);
    if (!res.ok) { showErrors(zoneForm, res.data); return; }
    await loadZones();
    select(null);
    hint.textContent = `Zone “${zone.name}” deleted.`;
  }

  // --- Rules -----------------------------------------------------------------------------------

  async function showRules() {
    const zone = state.selected;
    rulePanel.hidden = !zone;
    ruleForm.hidden = true;
    document.getElementById("preview").hidden = true;
    if (!zone) return;
    state.rules = [];
    ruleList.replaceChildren();
    if (zone.id) await loadRules(zone.id);
    for (const rule of state.rules) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.className = "link"; b.dataset.ruleId = rule.id;
      b.textContent = `${rule.name} (${rule.kind.replace("_", " ")}, ${rule.severity})${rule.enabled ? "" : " – off"}`;
      b.addEventListener("click", () => editRule(rule));
      li.append(b);
      ruleList.append(li);
    }
    if (!zone.id) {
      const li = document.createElement("li"); li.className = "muted"; li.textContent = "Save the zone to add rules; you can preview a draft now.";
      ruleList.append(li);
      editRule(null);
    } else if (!state.rules.length) {
      const li = document.createElement("li"); li.className = "muted"; li.textContent = "No rules on this zone yet.";
      ruleList.append(li);
    }
    const newRule = rulePanel.querySelector('[data-action="new-rule"]');
    if (newRule) newRule.hidden = !zone.id;
  }

  const DEFAULTS = { kind: "presence", actor_class: "person", min_confidence: 0.5, min_duration_s: 1, dwell_s: 30, min_count: 2, speed_unit: "px/s", crossing: "any", severity: "medium", enabled: true, schedule: [], channels: [] };

  function editRule(rule) {
    state.rule = rule;
    const values = rule || { ...DEFAULTS, name: "", kind: state.selected && state.selected.kind === "line" ? "crossing" : "presence" };
    clearErrors(ruleForm);
    for (const input of ruleForm.querySelectorAll("[name]")) {
      const v = values[input.name];
      if (input.name === "channels") input.checked = (values.channels || []).map(String).includes(input.value);
      else if (input.type === "checkbox") input.checked = !!v;
      else if (input.dataset.type === "json") input.value = v && v.length ? JSON.stringify(v) : "";
      else input.value = v === null || v === undefined ? "" : String(v);
    }
    document.getElementById("rule-title").textContent = rule ? `Rule: ${rule.name}` : "New rule";
    const del = ruleForm.querySelector('[data-action="delete-rule"]');
    if (del) del.hidden = !rule;
    ruleForm.hidden = false;
    showKindFields();
  }

  function showKindFields() {
    const kind = ruleForm.elements.kind.value;
    ruleForm.querySelectorAll("[data-kinds]").forEach((div) => { div.hidden = !div.dataset.kinds.split(" ").includes(kind); });
  }
  ruleForm.elements.kind.addEventListener("change", showKindFields);

  // The form as the API wants it; a value the browser cannot even parse is an error here already.
  function ruleBody() {
    const body = {}, errors = {};
    for (const input of ruleForm.querySelectorAll("[name]")) {
      const name = input.name, raw = input.value.trim();
      if (name === "channels") { if (input.checked) (body.channels = body.channels || []).push(Number(input.value)); continue; }
      if (input.type === "checkbox") body[name] = input.checked;
      else if (input.dataset.type === "number") body[name] = raw === "" ? null : Number(raw);
      else if (input.dataset.type === "number-or-null") body[name] = raw === "" ? null : Number(raw);
      else if (input.dataset.type === "json") {
        try { body[name] = raw === "" ? [] : JSON.parse(raw); } catch (e) { errors[name] = ["not valid JSON"]; }
      } else body[name] = raw;
    }
    body.channels = body.channels || [];
    return { body, errors };
  }

  ruleForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { body, errors } = ruleBody();
    if (Object.keys(errors).length) { showErrors(ruleForm, errors); return; }
    const rule = state.rule;
    const res = rule
      ? await api("PATCH", `${root.dataset.rulesUrl}${rule.id}/`, body)
      : await api("POST", root.dataset.rulesUrl, { ...body, site: siteId, zone: state.selected.id });
    if (!res.ok) { showErrors(ruleForm, res.data); hint.textContent = "The rule was not saved."; return; }
    await showRules();
    editRule(res.data);
    hint.textContent = `Rule “${res.data.name}” saved.`;
  });

  async function deleteRule() {
    const rule = state.rule;
    if (!rule || !confirm(`Delete rule “${rule.name}”?`)) return;
    const res = await api("DELETE", `${root.dataset.rulesUrl}${rule.id}/`);
    if (!res.ok) { showErrors(ruleForm, res.data); return; }
    await showRules();
    hint.textContent = `Rule “${rule.name}” deleted.`;
  }

  // --- Preview ---------------------------------------------------------------------------------

  async function preview() {
    const { body, errors } = ruleBody();
    if (Object.keys(errors).length) { showErrors(ruleForm, errors); return; }
    const zone = state.selected;
    const draftZone = { kind: zone.kind, points: zone.points, anchor: zoneForm.elements.anchor.value };
    const res = await api("POST", root.dataset.previewUrl, { zone: draftZone, rule: body });
    const panel = document.getElementById("preview");
    const list = document.getElementById("preview-hits");
    const summary = document.getElementById("preview-summary");
    list.replaceChildren();
    panel.hidden = false;
    if (!res.ok) {
      summary.textContent = "Fix the draft first.";
      showErrors(ruleForm, res.data.errors);
      return;
    }
    clearErrors(ruleForm);
    const n = res.data.hits.length;
    summary.textContent = `${n} of the last day's ${res.data.events_checked} tube segments would have fired.`;
    for (const hit of res.data.hits) {
      const li = document.createElement("li");
      li.className = "alert";
      const title = document.createElement("strong");
      title.textContent = `${hit.label} (track ${hit.track_id}) at ${new Date(hit.fired_at).toLocaleString()}`;
      const why = document.createElement("span");
      why.className = "meta"; why.textContent = hit.summary;
      li.append(title, why);
      list.append(li);
    }
  }

  // --- Start -----------------------------------------------------------------------------------

  const img = document.getElementById("snapshot");
  function fitPicture() {
    if (img && img.naturalWidth) state.size = [img.naturalWidth, img.naturalHeight];
    svg.setAttribute("viewBox", `0 0 ${state.size[0]} ${state.size[1]}`);
    render();
  }
  if (img) {
    img.addEventListener("load", fitPicture);
    img.addEventListener("error", () => { img.replaceWith(Object.assign(document.createElement("div"), { className: "stage-empty", textContent: "No picture from this camera yet" })); });
  }

  loadZones().then(() => { fitPicture(); renderZoneList(); setMode("idle"); root.dataset.ready = "true"; });
})();
