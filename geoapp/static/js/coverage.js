// /coverage and /coverage/<code>: the streets drawn bin by bin (runs of bins in one state, cut from
// the street's geometry by PostGIS and sent as GeoJSON in the page's data), the period's walks on
// demand (GET /api/v1/walks), and the table sorted by any numeric column, client-side. Names reach
// the DOM as text nodes only (geoappDom.textEl); Leaflet's tooltips get DOM elements, never HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("coverage-data").textContent);
  var dom = window.geoappDom, textEl = dom.textEl, fill = dom.fill, words = data.labels;
  var locale = data.lang === "en" ? "en" : "zh-CN";
  var COLOURS = {covered: "#0072b2", uncovered: "#d55e00", others: "#e69f00", walk: "#1d2b4f"};

  function number(n) { return Number(n).toLocaleString(locale, {maximumFractionDigits: 0}); }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  // --- the map -------------------------------------------------------------------------------------
  var map = L.map("coverage-map", {zoomSnap: 0.25, maxZoom: 19, minZoom: 10, center: [41.115, 121.125], zoom: 13});
  map.attributionControl.setPrefix("Leaflet");
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {maxZoom: 19, attribution: escapeHtml(data.tiles.attribution || "")}).addTo(map);
  }
  function state(run) { return run.covered ? "covered" : run.by_others ? "others" : "uncovered"; }
  function tip(street, run) {
    var box = document.createElement("div");
    box.appendChild(textEl("strong", street.name + " " + street.share));
    box.appendChild(document.createElement("br"));
    box.appendChild(document.createTextNode(words[state(run) === "others" ? "by_others" : state(run)] + " · " +
      fill(words.metres, {from: number(run.from_m), to: number(run.to_m)})));
    return box;
  }
  var drawn = L.featureGroup().addTo(map), runs = 0;
  data.streets.forEach(function (street) {
    street.runs.forEach(function (run) {
      if (!run.geometry) return;
      var s = state(run);
      L.geoJSON(run.geometry, {style: {color: COLOURS[s], weight: s === "covered" ? 6 : 5, opacity: 0.9,
                                       dashArray: s === "others" ? "6 6" : null, lineCap: "butt"}})
        .bindTooltip(tip(street, run), {sticky: true})
        .on("click", function () {
          if (data.page === "table") window.location.href = "/coverage/" + encodeURIComponent(street.code) + window.location.search;
        })
        .addTo(drawn);
      runs += 1;
    });
  });
  if (runs) map.fitBounds(drawn.getBounds(), {padding: [16, 16], animate: false});
  document.body.dataset.coverageRuns = String(runs);

  // --- the period's walks, on demand --------------------------------------------------------------
  var walks = null, box = document.getElementById("show-walks");
  function walkUrl() {
    var q = new URLSearchParams({from: data.period.from, to: data.period.to});
    if (data.street) q.set("street", data.street);
    return "/api/v1/walks?" + q.toString();
  }
  if (box) box.addEventListener("change", function () {
    if (!box.checked) { if (walks) map.removeLayer(walks); return; }
    if (walks) { walks.addTo(map); return; }
    fetch(walkUrl(), {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }).then(function (body) {
      walks = L.featureGroup();
      body.stretches.forEach(function (w) {
        if (w.geometry) L.geoJSON(w.geometry, {style: {color: COLOURS.walk, weight: 2, opacity: 0.8}}).addTo(walks);
      });
      walks.addTo(map);
      document.body.dataset.coverageWalks = String(body.stretches.length);
    }).catch(function () {
      box.checked = false;
      box.parentNode.appendChild(textEl("span", words.load_error, "cov-error"));
    });
  });

  // --- sorting the table ---------------------------------------------------------------------------
  var table = document.getElementById("coverage-table");
  if (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(table.querySelectorAll("button.cov-sort"), function (button) {
      button.addEventListener("click", function () {
        var th = button.parentNode, col = Array.prototype.indexOf.call(heads, th);
        var down = th.getAttribute("aria-sort") !== "descending";   // first click: largest first
        var numeric = button.dataset.type === "number";
        Array.prototype.forEach.call(heads, function (h) { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
          var c = numeric ? Number(x) - Number(y) : String(x).localeCompare(String(y));
          if (c === 0) c = a.dataset.code.localeCompare(b.dataset.code);
          return down ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
})();
