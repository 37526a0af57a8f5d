/* The few DOM helpers every page's script uses. User text and city data only ever reach the page
   as text nodes (textEl), never as HTML; fill puts values into a translated sentence ("{n} 米"). */
(function () {
  "use strict";
  function textEl(tag, text, className) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (className) el.className = className;
    return el;
  }
  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (m, key) { return key in values ? String(values[key]) : m; });
  }
  window.geoappDom = {textEl: textEl, fill: fill};
})();
