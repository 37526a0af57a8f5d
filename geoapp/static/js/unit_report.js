// /unit/reports/<id>: the report's small map, and its action forms sent to the lifecycle API
// (POST /api/v1/reports/<id>/actions, multipart, with the page's CSRF token and the version seen).
// After an action, or a refusal because the report moved on (409), the page's [data-live] parts are
// replaced by this page's fresh rendering from the server: a report is rendered in one place.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var labels = data.labels;
  var notice = document.getElementById("notice");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  function drawMap() {
    window.geoappUnitMap = window.geoappDrawReportMap("report-map", data);  // report_map.js
  }

  function say(text, kind) {
    notice.textContent = text;
    notice.className = "notice" + (kind ? " " + kind : "");
    notice.hidden = !text;
  }

  // This page again, from the server; its [data-live] parts replace ours (same ids).
  function refresh() {
    return fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) old.replaceWith(document.adoptNode(next));
        });
        bindForms();
      });
  }

  function tooManyPhotos(form) {
    var input = form.querySelector('input[type="file"]');
    return input && input.files && input.files.length > data.max_photos;
  }

  function send(form) {
    if (tooManyPhotos(form)) {
      say(labels.too_many_photos.replace("{n}", String(data.max_photos)), "error");
      return;
    }
    var button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    say(labels.sending, "");
    fetch(data.endpoints.actions, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok) {
          say(labels.done, "ok");
          return refresh();
        }
        say(body.message || labels.failed, "error");
        // the report moved on (someone else acted, or its state no longer allows this): show it as it is now
        if (r.status === 409 || r.status === 404) return refresh();
        button.disabled = false;
      });
    }).catch(function () {
      say(labels.failed, "error");
      button.disabled = false;
    });
  }

  function bindForms() {
    document.querySelectorAll("form.action-form").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        send(form);
      });
    });
  }

  drawMap();
  bindForms();
})();
