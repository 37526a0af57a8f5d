// /reports/<id>: a small map of the report's street and its point (data from #report-data).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  function escapeHtml(s) {  // Leaflet writes attributions with innerHTML
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  var dot = document.getElementById("status-dot");
  if (dot) dot.style.backgroundColor = data.point.colour;

  var at = [data.point.lat, data.point.lon];
  var map = L.map("report-map", {maxZoom: 19, minZoom: 10, zoomSnap: 0.25,
                                 scrollWheelZoom: false});  // the page scrolls; the map does not steal it
  map.attributionControl.setPrefix("Leaflet");
  var street = L.geoJSON(data.street.geometry, {
    style: {color: "#3b3b98", weight: 6, opacity: 0.8}, interactive: false
  });
  // the view first (layers cannot be placed on a map without one): the whole street, the point centred
  map.fitBounds(street.getBounds(), {padding: [12, 12], animate: false});
  map.panTo(at, {animate: false});
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {maxZoom: 19, attribution: escapeHtml(data.tiles.attribution || "")}).addTo(map);
  }
  street.addTo(map);
  L.circleMarker(at, {radius: 9, weight: 3, color: "#fff", fillColor: data.point.colour, fillOpacity: 1,
                      className: "report-point"}).addTo(map);
  window.geoappReportMap = map;
})();
