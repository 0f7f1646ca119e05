// Reload the page soon after what it shows changed on the hub (no data is read from the page).
(function () {
  "use strict";
  var body = document.body;
  var shown = body.getAttribute("data-version");
  if (shown === null) { return; }
  var every = 2000;
  function check() {
    fetch("/api/version", { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (now) {
        if (now && String(now.version) !== shown) { window.location.reload(); return; }
        window.setTimeout(check, every);
      })
      .catch(function () { window.setTimeout(check, every * 5); });
  }
  window.setTimeout(check, every);
})();
