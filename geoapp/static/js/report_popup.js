// Builds a report's popup from data with DOM text nodes only: user text is never parsed as HTML.
(function (global) {
  var cell = global.geoappDom.textEl;  // dom.js
  global.geoappReportPopup = function (report, rows) {
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
  };
})(window);
