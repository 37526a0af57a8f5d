// /my: the representative's street, where I am, the reports on it, the stretches I walked this month,
// and the walk recorder (geoappWalk, walk.js). Data and words come from the page's JSON (#my-data);
// every name reaches the DOM as text (textContent), never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("my-data").textContent);
  var L_ = data.labels;
  var numbers = new Intl.NumberFormat(data.lang === "en" ? "en" : "zh-CN", {maximumFractionDigits: 0});

  var textEl = window.geoappDom.textEl, fill = window.geoappDom.fill;  // dom.js
  function metres(n) { return fill(L_.metres, {n: numbers.format(n)}); }
  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text || "";
  }
  // Leaflet writes attributions with innerHTML: give it escaped text.
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  var colourOf = {}, labelOf = {};
  data.statuses.forEach(function (s) { colourOf[s.status] = s.colour; labelOf[s.status] = s.label; });

  // --- the map: my street ----------------------------------------------------------------------
  // no initial view: the first one is the street's (an animated zoom from elsewhere would be seen)
  var map = L.map("my-map", {maxZoom: 19, minZoom: 10, zoomSnap: 0.25});
  map.attributionControl.setPrefix("Leaflet");
  L.control.scale({imperial: false}).addTo(map);
  var street = L.geoJSON(data.street.geometry, {
    style: {color: "#3b3b98", weight: 6, opacity: 0.8, className: "my-street-line"}, interactive: false
  });
  map.fitBounds(street.getBounds(), {padding: [16, 16], animate: false});  // the view before any layer
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {maxZoom: 19, attribution: escapeHtml(data.tiles.attribution || "")}).addTo(map);
  }
  street.addTo(map);
  // Walked stretches lie on the street, thick and translucent, so the street stays visible under them.
  var walked = L.layerGroup().addTo(map);
  var reports = L.layerGroup().addTo(map);

  // a small legend: status colours, and the ring that marks my own reports
  var legend = L.control({position: "bottomleft"});
  legend.onAdd = function () {
    var box = L.DomUtil.create("div", "my-legend");
    box.setAttribute("aria-label", L_.legend);
    data.statuses.forEach(function (s) {
      var row = textEl("div", "", "my-legend-row");
      var dot = textEl("i", "", "dot");
      dot.style.backgroundColor = s.colour;
      row.appendChild(dot);
      row.appendChild(document.createTextNode(s.label));
      box.appendChild(row);
    });
    var mine = textEl("div", "", "my-legend-row");
    mine.appendChild(textEl("i", "", "dot dot-mine"));
    mine.appendChild(document.createTextNode(L_.mine));
    box.appendChild(mine);
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  legend.addTo(map);

  // --- where I am --------------------------------------------------------------------------------
  var me = null, meCircle = null, centred = false;
  function showPosition(pos) {
    var at = [pos.coords.latitude, pos.coords.longitude], acc = pos.coords.accuracy || 0;
    if (!me) {
      meCircle = L.circle(at, {radius: acc, color: "#1f6feb", weight: 1, fillOpacity: 0.12, interactive: false}).addTo(map);
      me = L.circleMarker(at, {radius: 8, color: "#fff", weight: 3, fillColor: "#1f6feb", fillOpacity: 1})
        .bindTooltip(function () { return textEl("span", L_.me); }).addTo(map);
    } else {
      me.setLatLng(at);
      meCircle.setLatLng(at).setRadius(acc);
    }
    // keep my street in view; follow me only once I am away from it
    if (!centred && !map.getBounds().contains(at)) { map.panTo(at); }
    centred = true;
    setText("geo-status", fill(L_.accuracy, {n: numbers.format(acc)}));
  }
  if (navigator.geolocation) {
    setText("geo-status", L_.locating);
    navigator.geolocation.watchPosition(showPosition, function (err) {
      setText("geo-status", L_["geo_" + err.code] || L_.geolocation);  // the browser's message is in its own language
    }, {enableHighAccuracy: true, maximumAge: 5000, timeout: 30000});
  }

  // --- the reports on my street (the API, page by page) -------------------------------------------
  function reportPopup(p) {
    var box = textEl("div", "", "my-popup");
    var cat = data.lang === "en" && p.category.name_en ? p.category.name_en : p.category.name;
    box.appendChild(textEl("strong", p.category.code + " " + cat));
    box.appendChild(textEl("div", labelOf[p.status] || p.status));
    var a = textEl("a", L_.details);
    a.href = data.endpoints.report_page + p.id;
    box.appendChild(a);
    return box;
  }
  function drawReport(f) {
    var p = f.properties, c = f.geometry.coordinates;
    var mine = p.reporter === data.username;  // only my own reports carry who reported them to me
    var m = L.circleMarker([c[1], c[0]], {
      radius: mine ? 9 : 7, weight: mine ? 4 : 2, color: mine ? "#111" : "#fff",
      fillColor: colourOf[p.status] || "#57606a", fillOpacity: 0.9, className: mine ? "report-mine" : "report-other"
    });
    m.bindPopup(function () { return reportPopup(p); }, {minWidth: 160, maxWidth: 260});
    m.reportId = p.id;
    reports.addLayer(m);
  }
  function loadReports(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (fc) {
        fc.features.forEach(drawReport);
        var next = (fc.links || []).filter(function (l) { return l.rel === "next"; })[0];
        if (next) return loadReports(next.href);
        map.getContainer().setAttribute("data-reports", String(reports.getLayers().length));
      });
  }
  loadReports(data.endpoints.reports).catch(function () { setText("geo-status", L_.load_failed); });

  // --- the stretches I walked this month ---------------------------------------------------------
  function loadWalks() {
    return fetch(data.endpoints.walks, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (body) {
        walked.clearLayers();
        var total = 0;
        body.stretches.forEach(function (s) {
          total += s.length_m;
          if (s.geometry) {
            walked.addLayer(L.geoJSON(s.geometry, {
              style: {color: "#2da44e", weight: 12, opacity: 0.55, lineCap: "round", className: "walked-line"},
              interactive: false
            }));
          }
        });
        map.getContainer().setAttribute("data-walked", String(walked.getLayers().length));
        setText("walked", body.stretches.length
          ? fill(L_.walked, {n: numbers.format(body.stretches.length), length: metres(total)})
          : L_.walked_none);
      });
  }
  loadWalks().catch(function () { setText("walked", L_.load_failed); });

  // --- the walk recorder (walk.js) ---------------------------------------------------------------
  var toggle = document.getElementById("walk-toggle");
  var recorder = window.geoappWalk;
  var wasRecording = false;
  function pick(state, names) {
    for (var i = 0; i < names.length; i++) {
      if (state[names[i]] !== undefined && state[names[i]] !== null) return state[names[i]];
    }
    return undefined;
  }
  // the server's message is already in the reader's language; the browser's are not: say those here
  function walkErrorText(error) {
    if (typeof error !== "object") return String(error);
    if (error.code === "geolocation") return L_["geo_" + error.geolocationCode] || L_.geolocation;
    if (error.code === "storage") return L_.storage;
    if (!error.status) return L_.network;
    return error.message || error.code;
  }
  function showWalk(state) {
    state = state || {};
    var recording = !!pick(state, ["recording", "active"]);
    toggle.textContent = recording ? L_.walk_stop : L_.walk_start;
    toggle.classList.toggle("recording", recording);
    toggle.setAttribute("aria-pressed", recording ? "true" : "false");
    setText("walk-state", recording ? L_.walk_recording : L_.walk_idle);
    var points = pick(state, ["points", "pointCount", "point_count"]);
    var sent = pick(state, ["sentChunks", "chunksSent", "sent"]);
    var pending = pick(state, ["pending", "chunksPending"]);
    var parts = [];
    if (typeof points === "number") parts.push(fill(L_.walk_points, {n: numbers.format(points)}));
    if (typeof sent === "number" || typeof pending === "number") {
      parts.push(fill(L_.walk_chunks, {sent: numbers.format(sent || 0), pending: numbers.format(pending || 0)}));
    }
    // nothing recorded and nothing waiting: no numbers to show
    setText("walk-detail", recording || points || pending ? parts.join(" · ") : "");
    var error = pick(state, ["lastError", "error", "last_error"]);
    setText("walk-error", error ? fill(L_.walk_error, {error: walkErrorText(error)}) : "");
    document.getElementById("walk-box").setAttribute("data-recording", recording ? "1" : "0");
    // once stopped and everything sent, draw what was walked
    if (wasRecording && !recording && !pending) { loadWalks().catch(function () {}); }
    wasRecording = recording;
  }
  if (recorder && typeof recorder.init === "function") {
    var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
    recorder.init({endpoint: data.endpoints.walks_post, csrfToken: csrf, onChange: showWalk});
    toggle.disabled = false;
    toggle.addEventListener("click", function () {
      var recording = !!pick(recorder.state || {}, ["recording", "active"]);
      var done = recording ? recorder.stop() : recorder.start();
      Promise.resolve(done).then(function () {
        showWalk(recorder.state);
        if (recording) { return loadWalks(); }
      }).catch(function () { showWalk(recorder.state); });  // walk.js keeps the reason in its state
    });
    showWalk(recorder.state);
  } else {
    setText("walk-state", L_.walk_unavailable);
  }

  // --- reports waiting to be sent (queue.js) ------------------------------------------------------
  var queueBox = document.getElementById("queue");
  if (queueBox && window.geoappQueue && typeof window.geoappQueue.render === "function") {
    if (typeof window.geoappQueue.configure === "function") {
      window.geoappQueue.configure({reportPage: data.endpoints.report_page});
    }
    window.geoappQueue.render(queueBox, data.queue_labels);
  }

  window.geoappMyStreet = {map: map, street: street, reports: reports, walked: walked, reloadWalks: loadWalks};
})();
