// /reports/<id>: a small map of the report's street and its point (data from #report-data).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var dot = document.getElementById("status-dot");
  if (dot) dot.style.backgroundColor = data.point.colour;

  window.geoappReportMap = window.geoappDrawReportMap("report-map", data);  // report_map.js
})();

// The verification form (once the unit has handled the report): two ratings 1–5 and a comment,
// required — and said so before sending — when either rating is below "satisfied" (that reopens
// the report to the unit). Sent to the lifecycle API with the version this page was drawn from;
// the page is then drawn again by the server, which says what became of it.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var v = data.verify;
  var form = document.getElementById("verify-form");
  if (!v || !form) return;
  var L = v.labels;
  var comment = document.getElementById("verify-comment");
  var warning = document.getElementById("verify-warning");
  var submit = document.getElementById("verify-submit");
  var status = document.getElementById("verify-status");
  var csrf = document.querySelector('meta[name="csrf-token"]');

  function rating(name) {
    var checked = form.querySelector('input[name="' + name + '"]:checked');
    return checked ? Number(checked.value) : null;
  }
  function unsatisfied() {
    return ["reply_rating", "result_rating"].some(function (name) {
      var n = rating(name);
      return n !== null && n < v.satisfied;
    });
  }
  function say(el, text) {
    el.textContent = text || "";
    if (el === warning) el.hidden = !text;
  }
  function update() {
    var needed = unsatisfied();
    comment.required = needed;
    comment.classList.toggle("needed", needed && !comment.value.trim());
    say(warning, needed ? L.comment_required : "");
  }
  form.addEventListener("change", update);
  comment.addEventListener("input", update);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var reply = rating("reply_rating"), result = rating("result_rating");
    if (reply === null || result === null) { say(warning, L.choose_both); return; }
    var text = comment.value.trim();
    if (unsatisfied() && !text) { say(warning, L.comment_required); comment.focus(); return; }
    var body = {action: "verify", version: v.version, reply_rating: reply, result_rating: result};
    if (text) body.comment = text;
    submit.disabled = true;
    say(status, L.sending);
    fetch(v.url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf ? csrf.content : ""},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok) { window.location.reload(); return; }
        if (response.status === 409 && answer.error === "stale_version") {
          say(status, L.stale);
          window.setTimeout(function () { window.location.reload(); }, 800);
          return;
        }
        submit.disabled = false;
        say(status, L.failed.replace("{message}", answer.message || String(response.status)));
      });
    }, function () {
      submit.disabled = false;
      say(status, L.network);
    });
  });
})();
