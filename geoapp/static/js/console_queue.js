// /console: the work queue. The page works without this script (links and a GET form); it only
// colours the status dots (colours from #console-queue-data) and applies a filter as soon as it is chosen.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("console-queue-data").textContent);
  Array.prototype.forEach.call(document.querySelectorAll(".status-dot[data-status]"), function (dot) {
    var colour = data.colours[dot.getAttribute("data-status")];
    if (colour) dot.style.backgroundColor = colour;
  });
  var form = document.getElementById("filters");
  if (!form) return;
  Array.prototype.forEach.call(form.querySelectorAll("select"), function (select) {
    select.addEventListener("change", function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
  });
  // empty filters stay out of the address, so a shared link says only what was chosen
  form.addEventListener("submit", function () {
    Array.prototype.forEach.call(form.querySelectorAll("select, input[type=date]"), function (el) {
      el.disabled = !el.value;
    });
  });
})();
