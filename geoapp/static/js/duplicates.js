// /console/duplicates: merge one group of likely duplicates in one action.
// The server rendered the groups; this only sends POST /api/v1/duplicates/merge with the survivor
// (the checked radio) and every member's version as the page saw it, then removes the group and says
// what was merged into what. A dispatched member that is not the survivor stays out of the merge
// (the lifecycle can only merge reports still being screened). Words come from the page's JSON
// data block and reach the DOM only as text nodes.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("duplicates-data").textContent);
  var labels = data.labels;
  var dom = window.geoappDom;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var log = document.getElementById("merge-log");

  function members(group, survivor) {
    var out = [];
    group.querySelectorAll(".dup-member").forEach(function (el) {
      var id = Number(el.dataset.id);
      if (id === survivor || el.dataset.mergeable === "1") {
        out.push({id: id, version: Number(el.dataset.version)});
      }
    });
    return out;
  }

  function ids(list) {
    return list.map(function (id) { return "#" + id; }).join(labels.separator);
  }

  function say(text) {
    log.appendChild(dom.textEl("p", text));
  }

  function merge(group, button) {
    var checked = group.querySelector('input[type="radio"]:checked');
    var error = group.querySelector(".dup-error");
    if (!checked) return;
    var survivor = Number(checked.value);
    var sent = members(group, survivor);
    button.disabled = true;
    error.textContent = labels.merging;
    fetch(data.endpoint, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: JSON.stringify({into: survivor, members: sent})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (answer) {
      if (!answer.ok) {
        error.textContent = dom.fill(labels.failed, {message: answer.body.message || ""});
        button.disabled = false;
        return;
      }
      var merged = sent.map(function (m) { return m.id; }).filter(function (id) { return id !== survivor; });
      say(dom.fill(labels.merged, {members: ids(merged), survivor: "#" + survivor}));
      group.remove();
      if (!document.querySelector(".dup-group")) document.getElementById("none-left").hidden = false;
    }, function () {
      error.textContent = labels.network;
      button.disabled = false;
    });
  }

  document.querySelectorAll(".dup-group").forEach(function (group) {
    var button = group.querySelector(".dups-merge");
    button.addEventListener("click", function () { merge(group, button); });
  });
})();
