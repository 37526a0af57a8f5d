// The phone's outbox: a report (its fields and photo Blobs) is written to IndexedDB (db "geoapp",
// store "outbox", keyed by its client_id) BEFORE it is sent, then sent from there, so nothing typed
// or photographed is lost to a dead zone, a closed tab or an expired session.
//
// Exactly once: an item keeps its client_id for ever and is resent byte for byte; the server answers
// 200 for a retry of a report it already has. What stays queued and is retried (on `online`, when a
// page with this script opens, and every 30 s): network errors, 5xx, 401 (signed out: sent again
// after signing in), 408 and 429. Any other 4xx is the server refusing the report itself: the item
// is kept as "refused" with the server's message, to be edited or discarded by its owner.
//
// window.geoappQueue: configure({endpoint, reportPage, strings, onEdit}), add(item), list(), get(id),
// remove(id), flush(), render(container, strings), onChange(fn). Words come from the page (its
// JSON data block) and reach the DOM only as text nodes.
(function () {
  "use strict";
  var STORE = "outbox";
  var RETRY_MS = 30000;
  var KEEP_SENT_MS = 24 * 3600 * 1000;   // a sent item is listed for a day, then forgotten
  var LABELS_KEY = "geoapp.queue.labels"; // the last words a page gave us, for pages that give none
  var RETRYABLE = {401: true, 408: true, 429: true};

  var options = {endpoint: "/api/v1/reports", reportPage: "/reports/", strings: null, onEdit: null};
  var listeners = [];
  var flushing = null, again = false, started = false;

  // ---- storage ---------------------------------------------------------------------------------
  var memory = null;  // when IndexedDB cannot be used (some private modes): this page only
  var request = window.geoappIdb.request;
  var db = window.geoappIdb.store(STORE, "client_id");  // idb.js: one "geoapp" database, a store each
  function useMemory() { return memory || !window.indexedDB; }
  function tx(mode, work) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var t = d.transaction(STORE, mode), result;
        Promise.resolve(work(t.objectStore(STORE))).then(function (r) { result = r; });
        t.oncomplete = function () { resolve(result); };
        t.onerror = t.onabort = function () { reject(t.error); };
      });
    });
  }
  function put(item) {
    if (useMemory()) { (memory = memory || {})[item.client_id] = item; return Promise.resolve(item); }
    return tx("readwrite", function (s) { return request(s.put(item)); }).then(function () { return item; });
  }
  function get(id) {
    if (useMemory()) { return Promise.resolve((memory || {})[id] || null); }
    return tx("readonly", function (s) { return request(s.get(id)); }).then(function (r) { return r || null; });
  }
  function remove(id) {
    if (useMemory()) { if (memory) delete memory[id]; changed(); return Promise.resolve(); }
    return tx("readwrite", function (s) { return request(s["delete"](id)); }).then(changed);
  }
  function list() {
    var all = useMemory() ? Promise.resolve(Object.keys(memory || {}).map(function (k) { return memory[k]; }))
      : tx("readonly", function (s) { return request(s.getAll()); });
    return all.then(function (items) {
      return items.sort(function (a, b) { return b.created_at - a.created_at; });  // newest first
    });
  }
  function update(id, changes) {
    return get(id).then(function (item) {
      if (!item) return null;
      Object.keys(changes).forEach(function (k) { item[k] = changes[k]; });
      item.updated_at = Date.now();
      return put(item);
    }).then(function (item) { changed(); return item; });
  }

  // ---- sending ---------------------------------------------------------------------------------
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  // A page opened from the service worker's cache may carry the token of an older session: read a
  // fresh one from the network once, when the server says the request is bad.
  function refreshToken() {
    return fetch(location.pathname + location.search, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector('meta[name="csrf-token"]');
        var mine = document.querySelector('meta[name="csrf-token"]');
        if (fresh && mine && fresh.getAttribute("content")) {
          mine.setAttribute("content", fresh.getAttribute("content"));
          return true;
        }
        return false;
      })["catch"](function () { return false; });
  }
  function body(item) {
    var form = new FormData();
    form.append("client_id", item.client_id);
    Object.keys(item.fields).forEach(function (k) { form.append(k, String(item.fields[k])); });
    (item.photos || []).forEach(function (p, i) { form.append("photo", p.blob, p.name || ("photo-" + (i + 1) + ".jpg")); });
    return form;
  }
  function post(item) {
    return fetch(options.endpoint, {
      method: "POST", body: body(item), credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(), "Accept": "application/json"}
    }).then(function (r) {
      return r.json()["catch"](function () { return {}; }).then(function (json) { return {status: r.status, json: json}; });
    });
  }
  function sendOne(item) {
    return update(item.client_id, {state: "sending", tries: (item.tries || 0) + 1}).then(function () {
      return post(item);
    }).then(function (res) {
      if (res.status === 400 && res.json.error === "bad_request") {  // a stale CSRF token says just that
        return refreshToken().then(function (ok) { return ok ? post(item) : res; });
      }
      return res;
    }).then(function (res) {
      var s = res.status;
      if (s === 200 || s === 201) {
        // the photos are on the server now: keep only what the list shows
        return update(item.client_id, {state: "sent", report_id: res.json.id, photos: [], relogin: false, message: ""});
      }
      if (s >= 400 && s < 500 && !RETRYABLE[s]) {
        return update(item.client_id, {state: "refused", message: res.json.message || String(s), relogin: false});
      }
      return update(item.client_id, {state: "queued", relogin: s === 401, message: res.json.message || ""});
    }, function () {  // no network, or the connection dropped: try again later
      return update(item.client_id, {state: "queued"});
    });
  }
  function sendAll() {
    return list().then(function (items) {
      var now = Date.now();
      var chain = Promise.resolve();
      items.slice().reverse().forEach(function (item) {
        if (item.state === "sent" && now - (item.updated_at || item.created_at) > KEEP_SENT_MS) {
          chain = chain.then(function () { return remove(item.client_id); });
        } else if (item.state === "queued" || item.state === "sending") {
          // oldest first, one at a time; "sending" left by a closed page is sent again (same client_id)
          chain = chain.then(function () { return sendOne(item); });
        }
      });
      return chain;
    });
  }
  function withLock(work) {
    // two pages of the site open at once (the pin form and my street) send one at a time
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request("geoapp-outbox", work);
    }
    return work();
  }
  function flush() {
    // known to be offline: the `online` event will call again (a phone that thinks it is online
    // but is not simply fails the request, and the item stays queued)
    if (navigator.onLine === false) return Promise.resolve();
    if (flushing) { again = true; return flushing; }
    flushing = withLock(sendAll)["catch"](function () {}).then(function () {
      flushing = null;
      if (again) { again = false; return flush(); }
    });
    return flushing;
  }

  function add(item) {
    var now = Date.now();
    var record = {
      client_id: item.client_id, fields: item.fields, photos: item.photos || [], summary: item.summary || "",
      state: "queued", message: "", relogin: false, report_id: null, tries: 0, created_at: now, updated_at: now
    };
    var saved = put(record)["catch"](function (err) {
      // IndexedDB refused (quota, private mode): keep it in this page rather than lose it
      if (memory) throw err;
      memory = {};
      return put(record);
    });
    return saved.then(function () { changed(); flush(); return record; });
  }

  // ---- drawing ---------------------------------------------------------------------------------
  function labels(strings) {
    if (strings) return strings;
    if (options.strings) return options.strings;
    try { return JSON.parse(localStorage.getItem(LABELS_KEY)) || {}; } catch (e) { return {}; }
  }
  var textEl = window.geoappDom.textEl, fill = window.geoappDom.fill;  // dom.js
  function stateText(item, L) {
    if (item.state === "refused") return fill(L.refused || "{message}", {message: item.message});
    if (item.state === "queued" && item.relogin) return L.relogin || L.queued || item.state;
    return L[item.state] || item.state;
  }
  function button(text, className, onClick) {
    var b = textEl("button", text, "btn " + className);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }
  function edit(item) {
    if (typeof options.onEdit === "function") return options.onEdit(item);
    location.href = "/my/pin?edit=" + encodeURIComponent(item.client_id);
  }
  function draw(container, strings) {
    return list().then(function (items) {
      var L = labels(strings);
      var ul = document.createElement("ul");
      ul.className = "queue-list";
      items.forEach(function (item) {
        var li = document.createElement("li");
        li.className = "queue-item";
        li.setAttribute("data-client-id", item.client_id);
        li.setAttribute("data-state", item.state);
        li.appendChild(textEl("span", item.summary, "queue-summary"));
        var state = textEl("span", stateText(item, L), "queue-state");
        li.appendChild(state);
        if (item.state === "sent" && item.report_id) {
          var a = textEl("a", L.view || String(item.report_id), "queue-link");
          a.href = options.reportPage + item.report_id;
          li.appendChild(a);
        } else if (item.state === "refused") {
          var row = textEl("span", "", "queue-actions");
          row.appendChild(button(L.edit || "✎", "queue-edit", function () { edit(item); }));
          row.appendChild(button(L.discard || "×", "queue-discard", function () { remove(item.client_id); }));
          li.appendChild(row);
        }
        ul.appendChild(li);
      });
      while (container.firstChild) container.removeChild(container.firstChild);
      if (items.length) {
        container.appendChild(ul);
      } else if (L.empty) {
        container.appendChild(textEl("p", L.empty, "queue-empty"));
      }
      container.setAttribute("data-count", String(items.length));
    });
  }
  function render(container, strings) {
    if (!container) return Promise.resolve();
    onChange(function () { draw(container, strings); });
    return draw(container, strings);
  }

  // ---- events ----------------------------------------------------------------------------------
  var changePending = false;
  function changed() {
    if (changePending) return;
    changePending = true;
    setTimeout(function () {
      changePending = false;
      listeners.forEach(function (fn) { try { fn(); } catch (e) { /* a listener's trouble is its own */ } });
    }, 0);
  }
  function onChange(fn) { listeners.push(fn); }

  function configure(opts) {
    Object.keys(opts || {}).forEach(function (k) { options[k] = opts[k]; });
    if (opts && opts.strings) {
      try { localStorage.setItem(LABELS_KEY, JSON.stringify(opts.strings)); } catch (e) { /* storage full or off */ }
    }
  }
  function start() {
    if (started) return;
    started = true;
    window.addEventListener("online", function () { flush(); });
    setInterval(function () { if (navigator.onLine !== false) flush(); }, RETRY_MS);
    flush();
  }

  window.geoappQueue = {
    configure: configure, add: add, list: list, get: get, remove: remove, flush: flush,
    render: render, onChange: onChange, start: start
  };
  // every page that includes this script sends what is waiting, once the page's own scripts ran
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    setTimeout(start, 0);
  }
}());
