/* Live progress for long work that runs off the request (a collection run, a re-post batch,
 * a sync). Served from our own origin, so the strict Content-Security-Policy allows it; the
 * page works without it (a person can reload).
 *
 * Contract: an element with data-progress-url="<json url>" (and optional
 * data-progress-interval in ms, default 1500). The URL answers JSON:
 *   {"done": false, "fields": {"sent": "12 of 240", "errors": "0", "state": "Sending"}}
 * Every element inside the page with data-progress-field="<name>" gets that field's text.
 * An element with data-progress-bar gets its `value`/`max` from "value"/"max" numbers in the
 * JSON when present. When "done" turns true the page reloads once, so the finished state,
 * messages and links are the server's own rendering.
 */
(function () {
  "use strict";
  function start(box) {
    var url = box.getAttribute("data-progress-url");
    var every = parseInt(box.getAttribute("data-progress-interval") || "1500", 10);
    var failures = 0;
    function apply(data) {
      var fields = data.fields || {};
      Object.keys(fields).forEach(function (name) {
        document.querySelectorAll('[data-progress-field="' + name + '"]').forEach(function (el) {
          el.textContent = fields[name];
        });
      });
      if (typeof data.value === "number") {
        document.querySelectorAll("[data-progress-bar]").forEach(function (bar) {
          bar.value = data.value;
          if (typeof data.max === "number") { bar.max = data.max; }
        });
      }
    }
    function tick() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          apply(data);
          if (data.done) { window.location.reload(); } else { setTimeout(tick, every); }
        })
        .catch(function () {
          failures += 1;  // a restarting server: keep trying, more slowly
          if (failures < 20) { setTimeout(tick, every * Math.min(failures + 1, 5)); }
        });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-progress-url]").forEach(start);
  });
})();
