// NEXUS console: progressive enhancement only; every page works without it.
"use strict";
(function () {
  // Times arrive as ISO UTC in <time datetime>; show them in the viewer's zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = el.getAttribute("datetime");
      el.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
      });
    });
  }
  // <input type=datetime-local data-utc=NAME [data-utc-value=ISO]>: shown in the viewer's local
// time, sent as UTC in the hidden field NAME (without JS the field is read as UTC).
  function utcFields(root) {
    root.querySelectorAll("input[data-utc]").forEach(function (input) {
      var form = input.form;
      var hidden = form && form.querySelector('input[type=hidden][name="' + input.dataset.utc + '"]');
      if (!hidden) return;
      var utc = hidden.value || input.dataset.utcValue;
      if (utc) {
        var d = new Date(utc);
        if (!isNaN(d)) {
          var local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
          input.value = local.toISOString().slice(0, 16);
        }
      }
      form.addEventListener("submit", function () {
        hidden.value = input.value ? new Date(input.value).toISOString() : "";
        input.disabled = true;
      });
    });
  }
  // Import: a chosen file is read into the text area the form posts.
  function fileIntoText(root) {
    root.querySelectorAll("input[type=file][data-into]").forEach(function (input) {
      input.addEventListener("change", function () {
        var target = document.getElementById(input.dataset.into);
        var file = input.files && input.files[0];
        if (!file || !target) return;
        file.text().then(function (text) { target.value = text; });
      });
    });
  }
  // [data-refresh=MS]: the element is reloaded from the same URL every MS.
  function refresh() {
    document.querySelectorAll("[data-refresh][id]").forEach(function (el) {
      var every = parseInt(el.dataset.refresh, 10) || 5000;
      setInterval(function () {
        fetch(location.href, { credentials: "same-origin", headers: { "accept": "text/html" } })
          .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
          .then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.getElementById(el.id);
            if (!fresh) return;
            el.innerHTML = fresh.innerHTML;
            localTimes(el);
          })
          .catch(function () {
            var s = document.getElementById("refresh-status");
            if (s) s.textContent = "Refresh failed; retrying.";
          });
      }, every);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    utcFields(document);
    fileIntoText(document);
    refresh();
    document.documentElement.dataset.js = "ready";
  });
})();
