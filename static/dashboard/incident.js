// Incident page: while its clip is recording, re-read the page's clip section until it changes, so
// the video (or the reason there is none) appears without a reload that would lose a typed note.
(function () {
  "use strict";
  const EVERY_MS = 2000, GIVE_UP_AFTER = 300; // about ten minutes: longer than any post-roll
  let tries = 0;

  async function check() {
    const box = document.getElementById("clip");
    if (!box || box.dataset.clipStatus !== "recording") return;
    tries += 1;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("clip");
      if (response.ok && fresh && fresh.dataset.clipStatus !== "recording") {
        box.replaceWith(document.adoptNode(fresh));
        document.dispatchEvent(new CustomEvent("argus:clip-changed")); // playback.js attaches its overlay
        return;
      }
    } catch (err) {
      // The server is restarting or the network blinked: the next try will tell.
    }
    if (tries < GIVE_UP_AFTER) setTimeout(check, EVERY_MS);
  }

  setTimeout(check, EVERY_MS);
})();
