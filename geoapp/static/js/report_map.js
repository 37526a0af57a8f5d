// The small map of one report on its street, shared by the representative's report page and the
// unit's: the whole street, the point centred. `data` is the page's JSON block: street.geometry,
// point {lat, lon, colour}, tiles (optional basemap). Every name on it is text; Leaflet writes
// attributions with innerHTML, so the configured one is escaped.
window.geoappDrawReportMap = function (elementId, data) {
  "use strict";
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  var at = [data.point.lat, data.point.lon];
  var map = L.map(elementId, {maxZoom: 19, minZoom: 10, zoomSnap: 0.25,
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
  return map;
};
