// Builds a report's popup from data with DOM text nodes only: user text is never parsed as HTML.
(function (global) {
  var cell = global.geoappDom.textEl;  // dom.js
  // report: plain text per field; rows: [[heading, field], ...]
  function popup(report, rows) {
    var box = document.createElement("div");
    box.className = "report-popup";
    box.setAttribute("data-report-id", String(report.id));
    var desc = cell("p", report.description);
    desc.className = "desc";
    box.appendChild(desc);
    var table = document.createElement("table");
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.appendChild(cell("th", row[0]));
      tr.appendChild(cell("td", report[row[1]]));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }

  // The same from GET /api/v1/reports/<id> (a summary has no description nor unit), in the page's
  // language: names from *_en in English, status labels and the distance sentence from `page`
  // (the page's JSON data: lang, tz, statuses, labels.distance).
  function fromApi(r, rows, page) {
    var en = page.lang === "en";
    var name = function (o) { return o ? ((en && o.name_en) || o.name) : "—"; };
    var status = page.statuses.filter(function (s) { return s.code === r.status; })[0];
    var when = new Date(r.created_at).toLocaleString(en ? "en" : "zh-CN",
                                                     {timeZone: page.tz, dateStyle: "short", timeStyle: "short"});
    return popup({
      id: r.id, description: r.description || "", street: name(r.street),
      category: r.category.code + " " + name(r.category), unit: name(r.unit),
      status: status ? status.label : r.status,
      distance: global.geoappDom.fill(page.labels.distance, {n: Math.round(r.distance_m)}), time: when
    }, rows);
  }

  popup.fromApi = fromApi;
  global.geoappReportPopup = popup;
})(window);
