// /console/reports/<id>: the dispatch panel and the dispatcher's other actions. Every action is one
// POST /api/v1/reports/<id>/actions with the version this page was rendered from; the server decides
// (lifecycle table) and the page reloads to show the outcome. A 409 (another dispatcher was faster,
// or the state no longer allows it) shows the server's message after the reload; a 400 stays on the
// form that caused it. Words come from #console-report-data; user text only as text nodes.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("console-report-data").textContent);
  var dom = window.geoappDom;
  var labels = data.labels;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var FLASH_KEY = "geoapp-console-flash";

  Array.prototype.forEach.call(document.querySelectorAll(".status-dot[data-status]"), function (dot) {
    var colour = data.colours[dot.getAttribute("data-status")];
    if (colour) dot.style.backgroundColor = colour;
  });

  // --- what the previous action said, kept across the reload -------------------------------------
  var flash = document.getElementById("flash");
  try {
    var kept = JSON.parse(sessionStorage.getItem(FLASH_KEY) || "null");
    sessionStorage.removeItem(FLASH_KEY);
    if (kept && kept.report === data.endpoints.actions) {
      flash.textContent = kept.text;
      flash.className = "flash " + (kept.ok ? "flash-ok" : "flash-error");
      flash.hidden = false;
    }
  } catch (e) { /* storage unavailable: no message to carry */ }

  function reloadWith(text, ok) {
    try {
      sessionStorage.setItem(FLASH_KEY, JSON.stringify({report: data.endpoints.actions, text: text, ok: ok}));
    } catch (e) { /* the reload still shows the current state */ }
    window.location.reload();
  }

  function setBusy(busy) {
    Array.prototype.forEach.call(document.querySelectorAll(".detail-panel button, .detail-panel summary"),
      function (b) { if (b.tagName === "BUTTON") b.disabled = busy; });
    document.body.classList.toggle("busy", busy);
  }

  // --- one action -------------------------------------------------------------------------------
  function send(action, fields, errorEl) {
    var body = {action: action, version: data.version};
    Object.keys(fields).forEach(function (k) { body[k] = fields[k]; });
    errorEl.textContent = labels.sending;
    errorEl.classList.remove("shown-error");
    setBusy(true);
    return fetch(data.endpoints.actions, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        var name = data.action_labels[action] || action;
        if (response.ok) {
          reloadWith(dom.fill(labels.done, {action: name}), true);
        } else if (response.status === 409) {
          reloadWith(dom.fill(labels.failed, {message: answer.message || response.status}), false);
        } else {
          setBusy(false);
          errorEl.textContent = dom.fill(labels.failed, {message: answer.message || response.status});
          errorEl.classList.add("shown-error");
        }
      });
    }).catch(function () {
      setBusy(false);
      errorEl.textContent = labels.network;
      errorEl.classList.add("shown-error");
    });
  }

  function formFields(form) {
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) return;
      if (el.type === "checkbox") {
        if (el.checked) (fields[el.name] = fields[el.name] || []).push(el.value);
        return;
      }
      var value = el.value.trim();
      if (value === "") return;
      fields[el.name] = el.type === "number" ? Number(value) : value;
    });
    return fields;
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.action-form"), function (form) {
    if (form.id === "dispatch-form") return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form.getAttribute("data-action"), formFields(form), form.querySelector(".form-error"));
    });
  });

  // --- the album flag: a toggle -----------------------------------------------------------------
  var album = document.getElementById("album-toggle");
  if (album) {
    album.addEventListener("click", function () {
      var on = album.getAttribute("aria-pressed") === "true";
      send("album", {flag: !on}, document.getElementById("album-error"));
    });
  }

  // --- the dispatch panel -----------------------------------------------------------------------
  var panel = document.getElementById("dispatch-panel");
  if (!panel) return;
  var accept = document.getElementById("dispatch-accept");
  var form = document.getElementById("dispatch-form");
  var unitSelect = document.getElementById("dispatch-unit");
  var deadlineInput = document.getElementById("dispatch-deadline");
  var status = document.getElementById("suggestion-status");
  var suggestion = null, computedLocal = "";

  // "YYYY-MM-DDTHH:MM" in the city's time zone (what the API's deadline field means)
  function localInput(iso) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {timeZone: data.tz, year: "numeric", month: "2-digit", day: "2-digit",
                                      hour: "2-digit", minute: "2-digit", hourCycle: "h23"})
      .formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + "T" + parts.hour + ":" + parts.minute;
  }
  function readable(iso) {
    return new Intl.DateTimeFormat(data.lang === "en" ? "en" : "zh-CN", {
      timeZone: data.tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      weekday: "short"}).format(new Date(iso));
  }

  function show(s) {
    suggestion = s;
    computedLocal = localInput(s.deadline_at);
    deadlineInput.value = computedLocal;
    document.getElementById("suggested-deadline").textContent =
      readable(s.deadline_at) + " (" + dom.fill(labels.deadline_days, {n: s.deadline_days}) + ")";
    var back = document.getElementById("handed-back");
    var backUnits = (s.handed_back_by || []).filter(Boolean).map(function (c) { return data.units[c] || c; });
    if (backUnits.length) {
      back.textContent = dom.fill(labels.handed_back_by, {units: backUnits.join("、")});
      back.hidden = false;
    }
    if (!s.unit) {
      status.textContent = labels.no_suggestion;
      document.getElementById("dispatch-override").open = true;
      unitSelect.selectedIndex = -1;
      return;
    }
    status.hidden = true;
    document.getElementById("suggestion-facts").hidden = false;
    document.getElementById("suggested-unit").textContent = data.units[s.unit.code] || s.unit.name;
    // the stored reason is a Chinese sentence (it names Chinese places); in English, the rule it followed
    document.getElementById("suggested-reason").textContent =
      data.lang === "en" ? (data.rules[s.unit.rule] || s.unit.rule) : s.unit.reason;
    unitSelect.value = s.unit.code;
    accept.disabled = false;
  }

  fetch(data.endpoints.suggestion, {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
    .then(function (r) {
      if (r.ok) show(r.body);
      else status.textContent = dom.fill(labels.failed, {message: r.body.message || ""});
    })
    .catch(function () { status.textContent = labels.network; });

  // one click: the suggested unit; no deadline sent, so the server computes it at this moment
  accept.addEventListener("click", function () {
    if (!suggestion || !suggestion.unit) return;
    send("dispatch", {unit: suggestion.unit.code}, document.getElementById("dispatch-accept-error"));
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var fields = formFields(form);
    // an untouched deadline is the computed one: leave it to the server (it recomputes at this moment)
    if (fields.deadline === computedLocal) delete fields.deadline;
    send("dispatch", fields, form.querySelector(".form-error"));
  });
})();
