// Incident list keys: j/k move between incidents, Enter opens (the link has focus), / jumps to search.
(function () {
  "use strict";
  const links = Array.from(document.querySelectorAll("#incident-list .row-link"));
  const search = document.getElementById("id_q");

  function typing(el) { return el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA"); }

  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || typing(document.activeElement)) return;
    if (ev.key === "/" && search) { ev.preventDefault(); search.focus(); return; }
    if (ev.key !== "j" && ev.key !== "k") return;
    if (!links.length) return;
    const at = links.indexOf(document.activeElement);
    const next = ev.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
    ev.preventDefault();
    links[next].focus();
  });
})();
