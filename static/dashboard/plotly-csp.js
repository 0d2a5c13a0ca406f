// Lets Plotly draw under the page's Content-Security-Policy without 'unsafe-inline' (monitor/csp.py).
// Load it, with the page's nonce, right before plotly.min.js:
//   <script src=".../plotly-csp.js" nonce="{{ csp_nonce }}"></script>
// Plotly adds its CSS as <style> elements, which the policy blocks unless they carry the nonce, and
// sets a few style="" attributes, which it blocks always; the same declarations through the CSSOM
// (element.style) are allowed. Scripts of this page are trusted anyway: markup injected into the
// page gains nothing from this, since it can run no script.
(() => {
  "use strict";
  const nonce = document.currentScript && document.currentScript.nonce;
  const createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (name, options) {
    const el = createElement.call(this, name, options);
    if (nonce && String(name).toLowerCase() === "style") el.nonce = nonce;
    return el;
  };
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === "style" && this.style) { this.style.cssText = String(value); return; }
    return setAttribute.call(this, name, value);
  };
})();
