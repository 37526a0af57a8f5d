// /map: streets, zones and report markers drawn from the page's JSON data (#map-data).
// Every name and description reaches the DOM as text (textContent or text nodes), never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);

  var textEl = window.geoappDom.textEl;  // dom.js
  // Leaflet writes layer names and attributions with innerHTML: give it escaped text.
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  document.querySelectorAll(".legend i[data-colour]").forEach(function (i) {
    i.style.backgroundColor = i.getAttribute("data-colour");
  });

  // zoomSnap below 1: the streets fill a phone's screen instead of the next whole zoom level out
  var map = L.map("map", {maxZoom: 19, minZoom: 10, zoomSnap: 0.25, center: [41.115, 121.125], zoom: 13});
  // Street labels overlap when zoomed far out (a phone's first view): hide them until they fit.
  function fitLabels() {
    map.getContainer().classList.toggle("street-labels-hidden", map.getZoom() < LABEL_MIN_ZOOM);
  }
  // English names are about three times as long as Chinese ones: they fit one zoom level later.
  var LABEL_MIN_ZOOM = document.documentElement.lang === "en" ? 14 : 13;
  map.on("zoomend", fitLabels);
  // Government sites show a plain text credit, without Leaflet's default flag icon.
  map.attributionControl.setPrefix("Leaflet");
  L.control.scale({imperial: false}).addTo(map);

  var overlays = {};
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {maxZoom: 19, attribution: escapeHtml(data.tiles.attribution || "")}).addTo(map);
  }

  var zones = L.geoJSON(data.zones, {
    style: {color: "#888", weight: 1, fillColor: "#bbb", fillOpacity: 0.08, dashArray: "4 4"},
    interactive: false
  });
  overlays[escapeHtml(data.labels.zones)] = zones;

  var streets = L.geoJSON(data.streets, {
    style: {color: "#3b3b98", weight: 5, opacity: 0.85, className: "street-line"},
    onEachFeature: function (feature, layer) {
      var p = feature.properties;
      layer.bindTooltip(function () { return textEl("span", p.label); },
                        {permanent: true, direction: "center", className: "street-label"});
      layer.bindPopup(function () {
        var box = document.createElement("div");
        box.className = "street-popup";
        p.popup.forEach(function (line, i) { box.appendChild(textEl(i === 0 ? "strong" : "div", line)); });
        return box;
      }, {minWidth: 160, maxWidth: 280});  // a readable width on a 360 px phone (map.css)
    }
  }).addTo(map);
  overlays[escapeHtml(data.labels.streets)] = streets;

  // Clusters are neutral grey with a ring showing the mix of album classes inside, so their colour
  // is never read as one class's colour.
  var clusters = L.markerClusterGroup({
    maxClusterRadius: 50,
    iconCreateFunction: function (cluster) {
      var children = cluster.getAllChildMarkers(), counts = {}, order = [];
      children.forEach(function (m) {
        var c = m.report.colour;
        if (!(c in counts)) { counts[c] = 0; order.push(c); }
        counts[c] += 1;
      });
      var at = 0, stops = order.map(function (c) {
        var from = at; at += counts[c] / children.length * 360;
        return c + " " + from.toFixed(1) + "deg " + at.toFixed(1) + "deg";
      });
      var ring = document.createElement("div");
      ring.style.background = "conic-gradient(" + stops.join(", ") + ")";
      ring.appendChild(textEl("span", String(children.length)));
      return L.divIcon({html: ring, className: "marker-cluster marker-cluster-neutral", iconSize: L.point(40, 40)});
    }
  });
  clusters.addLayers(data.reports.map(function (r) {
    var m = L.circleMarker([r.lat, r.lon], {radius: 7, weight: 2, color: "#fff", fill: true,
                                            fillColor: r.colour, fillOpacity: 0.9});
    m.report = r;
    m.bindPopup(function () { return geoappReportPopup(r, data.popup_rows); }, {maxWidth: 320, minWidth: 200});
    return m;
  }));
  clusters.addTo(map);
  overlays[escapeHtml(data.labels.reports)] = clusters;

  L.control.layers(null, overlays, {collapsed: window.matchMedia("(max-width: 640px)").matches}).addTo(map);
  if (data.streets.features.length) {
    map.fitBounds(streets.getBounds(), {padding: [20, 20]});
  }
  fitLabels();
  window.geoappMap = map;  // for tests and the browser console
})();
