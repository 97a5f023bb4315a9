// Berth's dashboard: live updates only. Every page reads and acts without this script.
// Sections marked data-refresh are fetched again every few seconds and swapped in place (only
// while no field in them has focus); <pre data-live> logs are polled from their URL.
(function () {
  "use strict";
  function refresh() {
    var live = document.querySelectorAll("[data-refresh]");
    if (live.length === 0) { return; }
    fetch(location.href, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html");
        live.forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (!next || old.contains(document.activeElement)) { return; }
          if (old.innerHTML !== next.innerHTML) {
            old.innerHTML = next.innerHTML;
            if (!next.hasAttribute("data-refresh")) { old.removeAttribute("data-refresh"); }
          }
        });
        pollLogs();
      })
      .catch(function () {});
  }
  function pollLogs() {
    document.querySelectorAll("pre[data-live]").forEach(function (pre) {
      fetch(pre.getAttribute("data-live"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) { if (text !== null) { pre.textContent = text; } })
        .catch(function () {});
    });
  }
  var first = document.querySelector("[data-refresh]");
  var seconds = first ? Number(first.getAttribute("data-refresh")) || 3 : 3;
  pollLogs();
  setInterval(refresh, seconds * 1000);
})();
