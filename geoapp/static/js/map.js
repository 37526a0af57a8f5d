// /map, the console map: streets coloured by their open problems, and the reports clustered on the
// server (GET /api/v1/map/cells), loaded tile by tile: a pan asks only for the tiles not yet loaded,
// one request per rectangle of missing tiles. Filters and the view live in the URL, so a view can be
// shared. Every name and description reaches the DOM as text (textContent), never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var dom = window.geoappDom, textEl = dom.textEl, fill = dom.fill, words = data.labels;
  var locale = data.lang === "en" ? "en" : "zh-CN";
  var TILE = 256, FILTERS = ["status", "category", "street", "unit", "from", "to", "overdue"];
  var form = document.getElementById("filters");

  // Leaflet writes layer names and attributions with innerHTML: give it escaped text.
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function number(n) { return Number(n).toLocaleString(locale); }
  function getJson(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  // --- the filter bar, filled from the page's data -------------------------------------------------
  function option(select, value, label) {
    var o = textEl("option", label);
    o.value = value;
    select.appendChild(o);
  }
  var statusBox = document.getElementById("f-status");
  data.statuses.forEach(function (s) {
    var label = document.createElement("label"), box = document.createElement("input"), swatch = textEl("i", "");
    label.className = "check status-check";
    box.type = "checkbox";
    box.name = "status";
    box.value = s.code;
    swatch.className = "swatch";
    swatch.style.backgroundColor = s.colour;
    label.appendChild(box);
    label.appendChild(swatch);
    label.appendChild(document.createTextNode(s.label));
    statusBox.appendChild(label);
  });
  data.categories.forEach(function (c) {
    option(form.category, c.code, "\u00a0\u00a0".repeat(c.depth) + c.code + " " + c.name);
  });
  data.streets.features.forEach(function (f) { option(form.street, f.properties.code, f.properties.label); });
  data.units.forEach(function (u) { option(form.unit, u.code, u.name); });

  function filters() {
    var q = new URLSearchParams();
    var statuses = Array.prototype.filter.call(form.querySelectorAll("input[name=status]"), function (b) {
      return b.checked;
    }).map(function (b) { return b.value; });
    if (statuses.length) q.set("status", statuses.join(","));
    ["category", "street", "unit", "from", "to"].forEach(function (name) {
      if (form[name].value) q.set(name, form[name].value);
    });
    if (form.overdue.checked) q.set("overdue", "1");
    return q;
  }
  function restoreFilters(q) {
    var statuses = (q.get("status") || "").split(",");
    form.querySelectorAll("input[name=status]").forEach(function (b) { b.checked = statuses.indexOf(b.value) >= 0; });
    ["category", "street", "unit", "from", "to"].forEach(function (name) { form[name].value = q.get(name) || ""; });
    form.overdue.checked = q.get("overdue") === "1";
  }

  // --- the map --------------------------------------------------------------------------------
  // zoomSnap below 1: the streets fill a phone's screen instead of the next whole zoom level out;
  // the tiles are those of the whole zoom level below (their cells show 64 to 128 px wide)
  var map = L.map("map", {maxZoom: 19, minZoom: 10, zoomSnap: 0.25, center: [41.115, 121.125], zoom: 13});
  function tileZoom() { return Math.floor(map.getZoom() + 1e-6); }
  var LABEL_MIN_ZOOM = data.lang === "en" ? 14 : 13;  // English names are longer: they fit a level later
  function fitLabels() {
    map.getContainer().classList.toggle("street-labels-hidden", map.getZoom() < LABEL_MIN_ZOOM);
  }
  map.attributionControl.setPrefix("Leaflet");
  L.control.scale({imperial: false}).addTo(map);
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {maxZoom: 19, attribution: escapeHtml(data.tiles.attribution || "")}).addTo(map);
  }
  var overlays = {};
  var zones = L.geoJSON(data.zones, {
    style: {color: "#888", weight: 1, fillColor: "#bbb", fillOpacity: 0.08, dashArray: "4 4"},
    interactive: false
  });
  overlays[escapeHtml(words.zones)] = zones;

  // Streets by their open problems (a sequential scale; the classes' upper bounds come with the data).
  function openColour(n) {
    for (var i = 0; i < data.open_classes.length; i++) {
      var upper = data.open_classes[i][0];
      if (upper === null || n <= upper) return data.open_classes[i][1];
    }
    return "#000";
  }
  var legend = document.getElementById("open-legend");
  data.open_classes.forEach(function (c, i) {
    var lower = i === 0 ? 0 : data.open_classes[i - 1][0] + 1, item = document.createElement("li"), sw = textEl("i", "");
    sw.className = "swatch line";
    sw.style.backgroundColor = c[1];
    item.appendChild(sw);
    item.appendChild(document.createTextNode(
      i === 0 ? "0" : c[0] === null ? "\u2265 " + number(lower) : number(lower) + "\u2013" + number(c[0])));
    legend.appendChild(item);
  });
  var streets = L.geoJSON(data.streets, {
    style: function (f) {
      return {color: openColour(f.properties.open), weight: 6, opacity: 0.9, className: "street-line"};
    },
    onEachFeature: function (feature, layer) {
      var p = feature.properties;
      layer.bindTooltip(function () { return textEl("span", p.label + " \u00b7 " + number(p.open)); },
                        {permanent: true, direction: "center", className: "street-label"});
      // a click shows the street's facts in a popup and its open problems in the side list
      layer.bindPopup(function () {
        var box = document.createElement("div");
        box.className = "street-popup";
        p.popup.forEach(function (line, i) { box.appendChild(textEl(i === 0 ? "strong" : "div", line)); });
        return box;
      }, {minWidth: 160, maxWidth: 280});  // a readable width on a 360 px phone (map.css)
      layer.on("click", function () { openStreet(p.code, p.label, p.open); });
    }
  }).addTo(map);
  overlays[escapeHtml(words.streets)] = streets;

  // --- reports, by tile ----------------------------------------------------------------------------
  var reports = L.layerGroup().addTo(map);
  overlays[escapeHtml(words.reports)] = reports;
  L.control.layers(null, overlays, {collapsed: true}).addTo(map);

  var cache = {};      // filters|z|x,y -> the tile's {c: clusters, r: reports} (null: nothing there)
  var pending = {};    // the same keys, while asked for
  var shown = {};      // x,y -> true for the tiles drawn at the current zoom and filters
  var shownAt = null;  // filters|z of what `reports` holds
  var requests = [];   // the API requests made (for the tests and the browser console)

  function tileRange() {
    var z = tileZoom(), b = map.getBounds(), last = Math.pow(2, z) - 1;
    var nw = map.project(b.getNorthWest(), z), se = map.project(b.getSouthEast(), z);
    var clamp = function (v) { return Math.max(0, Math.min(last, v)); };
    return {x0: clamp(Math.floor(nw.x / TILE)), y0: clamp(Math.floor(nw.y / TILE)),
            x1: clamp(Math.ceil(se.x / TILE) - 1), y1: clamp(Math.ceil(se.y / TILE) - 1)};
  }

  // The missing tiles as few rectangles: runs along each row, merged with the same run of the row above.
  function rectangles(missing) {
    var rows = {}, out = [], open = {};
    missing.forEach(function (t) { (rows[t[1]] = rows[t[1]] || []).push(t[0]); });
    Object.keys(rows).map(Number).sort(function (a, b) { return a - b; }).forEach(function (y) {
      var xs = rows[y].sort(function (a, b) { return a - b; }), runs = [], next = {};
      xs.forEach(function (x) {
        var run = runs[runs.length - 1];
        if (run && run[1] === x - 1) run[1] = x; else runs.push([x, x]);
      });
      runs.forEach(function (run) {
        var key = run[0] + "," + run[1], r = open[key];
        if (r && r.y1 === y - 1) { r.y1 = y; } else { r = {x0: run[0], x1: run[1], y0: y, y1: y}; out.push(r); }
        next[key] = r;
      });
      open = next;
    });
    return out;
  }

  function clusterIcon(count, byStatus) {
    var at = 0, stops = [];
    byStatus.forEach(function (n, i) {
      if (!n) return;
      var from = at;
      at += n / count * 360;
      stops.push(data.statuses[i].colour + " " + from.toFixed(1) + "deg " + at.toFixed(1) + "deg");
    });
    var size = Math.round(30 + 6 * Math.log(count) / Math.LN10);
    var ring = document.createElement("div");
    ring.style.background = "conic-gradient(" + stops.join(", ") + ")";
    ring.style.width = ring.style.height = size + "px";
    ring.appendChild(textEl("span", number(count)));
    return L.divIcon({html: ring, className: "map-cluster", iconSize: L.point(size, size)});
  }

  function reportMarker(r) {
    var m = L.circleMarker([r[1], r[2]], {radius: 7, weight: 2, color: "#fff", fill: true,
                                          fillColor: data.statuses[r[3]].colour, fillOpacity: 0.95,
                                          className: "report-marker"});
    m.reportId = r[0];
    var content = null;  // built once: Leaflet asks again for it each time the popup updates
    m.bindPopup(function () {
      return content || (content = popupFor(r[0], function () { m.getPopup().update(); }));
    }, {maxWidth: 320, minWidth: 200});
    return m;
  }

  // A report's popup: "…" at once, its text from the API (visibility applies there); ready() lets
  // Leaflet resize the popup to it.
  function popupFor(id, ready) {
    var box = textEl("div", "\u2026", "report-popup-wait");
    getJson("/api/v1/reports/" + id).then(function (report) {
      box.textContent = "";
      box.appendChild(geoappReportPopup.fromApi(report, data.popup_rows, data));
      if (data.console) {
        var link = textEl("a", words.report_page, "console-link");
        link.href = "/console/reports/" + encodeURIComponent(id);
        box.appendChild(link);
      }
      ready();
    }).catch(function () { box.textContent = words.load_error; });
    return box;
  }

  function drawTile(key, xy) {
    var tile = cache[key];
    shown[xy] = true;
    if (!tile) return;
    var z = map.getZoom();
    tile.c.forEach(function (c) {
      var m = L.marker([c[0], c[1]], {icon: clusterIcon(c[2], c[3]), keyboard: true});
      m.on("click", function () { map.setView([c[0], c[1]], Math.min(z + 2, map.getMaxZoom())); });
      reports.addLayer(m);
    });
    tile.r.forEach(function (r) { reports.addLayer(reportMarker(r)); });
  }

  function refresh() {
    var z = tileZoom(), q = filters().toString(), at = q + "|" + z, range = tileRange(), missing = [];
    if (at !== shownAt) { reports.clearLayers(); shown = {}; shownAt = at; }
    for (var y = range.y0; y <= range.y1; y++) {
      for (var x = range.x0; x <= range.x1; x++) {
        var xy = x + "," + y, key = at + "|" + xy;
        if (key in cache) { if (!shown[xy]) drawTile(key, xy); } else if (!pending[key]) missing.push([x, y]);
      }
    }
    rectangles(missing).forEach(function (r) { load(q, z, r); });
    writeUrl();
  }

  function load(q, z, r) {
    var at = q + "|" + z, keys = [];
    for (var y = r.y0; y <= r.y1; y++) for (var x = r.x0; x <= r.x1; x++) keys.push([at + "|" + x + "," + y, x + "," + y]);
    keys.forEach(function (k) { pending[k[0]] = true; });
    var url = "/api/v1/map/cells?z=" + z + "&tiles=" + [r.x0, r.y0, r.x1, r.y1].join(",") + (q ? "&" + q : "");
    requests.push(url);
    getJson(url).then(function (body) {
      keys.forEach(function (k) {
        cache[k[0]] = body.cells[k[1]] || null;
        delete pending[k[0]];
        if (shownAt === at && !shown[k[1]]) drawTile(k[0], k[1]);
      });
    }).catch(function () {
      keys.forEach(function (k) { delete pending[k[0]]; });
      count.textContent = words.load_error;
    });
  }

  // --- the exact count, for the whole city ---------------------------------------------------------
  var count = document.getElementById("report-count");
  function updateCount() {
    var q = filters().toString();
    count.textContent = words.counting;
    getJson("/api/v1/map/count" + (q ? "?" + q : "")).then(function (body) {
      if (filters().toString() === q) count.textContent = fill(words.count, {n: number(body.count)});
    }).catch(function () { count.textContent = words.load_error; });
  }

  // --- the URL: ?filters#z/lat/lon ----------------------------------------------------------------
  function writeUrl() {
    var q = filters(), here = new URLSearchParams(location.search), c = map.getCenter();
    if (here.get("lang")) q.set("lang", here.get("lang"));
    var qs = q.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : "") + "#" +
                         map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5));
  }
  function onFilters() {
    updateCount();
    refresh();
  }
  form.addEventListener("change", onFilters);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  document.getElementById("f-clear").addEventListener("click", function () {
    restoreFilters(new URLSearchParams());
    onFilters();
  });

  // --- a street's open reports ------------------------------------------------------------------
  var panel = document.getElementById("street-panel"), list = document.getElementById("street-list");
  var more = document.getElementById("street-more"), nextPage = null;
  function openStreet(code, label, open) {
    document.getElementById("street-title").textContent = fill(words.street_list, {street: label, n: number(open)});
    list.textContent = "";
    panel.hidden = false;
    document.getElementById("console").classList.add("with-panel");
    map.invalidateSize();
    loadStreet("/api/v1/reports?" + new URLSearchParams({street: code, status: data.open_statuses.join(","),
                                                        limit: "20"}).toString());
  }
  function loadStreet(url) {
    more.hidden = true;
    getJson(url).then(function (body) {
      if (!body.features.length && !list.children.length) list.appendChild(textEl("li", words.none, "empty"));
      body.features.forEach(function (f) { list.appendChild(streetItem(f)); });
      var next = body.links.filter(function (l) { return l.rel === "next"; })[0];
      nextPage = next ? next.href : null;
      more.hidden = !nextPage;
    }).catch(function () { list.appendChild(textEl("li", words.load_error, "empty")); });
  }
  function streetItem(f) {
    var p = f.properties, item = document.createElement("li"), en = data.lang === "en";
    var status = data.statuses.filter(function (s) { return s.code === p.status; })[0];
    var show = document.createElement("button");
    show.type = "button";
    show.className = "street-item";
    var sw = textEl("i", "", "swatch");
    sw.style.backgroundColor = status.colour;
    show.appendChild(sw);
    show.appendChild(textEl("span", "#" + f.id + " " + ((en && p.category.name_en) || p.category.name), "what"));
    show.appendChild(textEl("span", status.label + " \u00b7 " +
                            new Date(p.created_at).toLocaleDateString(locale, {timeZone: data.tz}), "when"));
    show.addEventListener("click", function () {
      var at = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      map.setView(at, 18, {animate: false});
      var popup = L.popup({maxWidth: 320, minWidth: 200}).setLatLng(at);
      popup.setContent(popupFor(f.id, function () { popup.update(); })).openOn(map);
    });
    item.appendChild(show);
    if (data.console) {
      var link = textEl("a", words.report_page, "console-link");
      link.href = "/console/reports/" + encodeURIComponent(f.id);
      item.appendChild(link);
    }
    return item;
  }
  more.addEventListener("click", function () { if (nextPage) loadStreet(nextPage); });
  document.getElementById("street-close").addEventListener("click", function () {
    panel.hidden = true;
    document.getElementById("console").classList.remove("with-panel");
    map.invalidateSize();
  });

  // --- the filter panel folds away (on a phone it starts folded) ------------------------------------
  var toggle = document.getElementById("filters-toggle"), consoleEl = document.getElementById("console");
  function setFolded(folded) {
    consoleEl.classList.toggle("filters-folded", folded);
    toggle.setAttribute("aria-expanded", String(!folded));
    map.invalidateSize();
  }
  toggle.addEventListener("click", function () { setFolded(!consoleEl.classList.contains("filters-folded")); });
  setFolded(window.matchMedia("(max-width: 640px)").matches);

  // --- start: filters and view from the URL, else the whole city ------------------------------------
  restoreFilters(new URLSearchParams(location.search));
  var view = /^#([\d.]+)\/(-?[\d.]+)\/(-?[\d.]+)$/.exec(location.hash);
  if (view) {
    map.setView([Number(view[2]), Number(view[3])], Number(view[1]), {animate: false});
  } else if (data.streets.features.length) {
    map.fitBounds(streets.getBounds(), {padding: [20, 20], animate: false});
  }
  map.on("moveend", refresh);
  map.on("zoomend", fitLabels);
  fitLabels();
  updateCount();
  refresh();
  window.geoappMap = map;  // for tests and the browser console
  window.geoappMapRequests = requests;
})();
