// The walk recorder ("开始巡街 / 结束巡街"): window.geoappWalk, used by the my-street page.
//
//   geoappWalk.init({endpoint: "/api/v1/walks", csrfToken, onChange(state), crs: "wgs84"})
//   geoappWalk.start(), geoappWalk.stop()  (both return Promises)
//   geoappWalk.state  {recording, walkId, points, sentChunks, pending, lastError, lastResult}
//
// While recording, every position from watchPosition is written to IndexedDB (db "geoapp", store
// "walk_points") before anything else, so a reload, a closed tab or a dead network loses nothing.
// Every 30 s or 50 points (and on stop) the buffered points become a chunk — also kept in IndexedDB —
// and chunks are uploaded; a chunk leaves IndexedDB only when the server answered 2xx. Unsent chunks
// are retried on `online`, on a timer, and when a page calling init() opens (which also resumes a
// walk that was being recorded). Each chunk begins with the last point of the one before, so the
// server joins the stretches across chunks. The server makes a re-sent chunk harmless (same walk id
// and chunk number → the first answer), so sending twice is never a problem; losing one would be.
//
// No words here: the page says everything, from the state and the server's own messages.
(function () {
  "use strict";

  var STORE = "walk_points";
  var META_KEY = "meta";
  var defaults = {endpoint: "/api/v1/walks", csrfToken: "", crs: "wgs84", chunkPoints: 50,
                  chunkMs: 30000, retryMs: 30000, onChange: null};
  // Answers worth trying again later (signed out, CSRF token of an old page, rate limits, the
  // server or the network down); any other 4xx is the chunk's own fault and is not retried by the
  // timer — only when a page opens, in case the server has changed since.
  var RETRY_STATUSES = {0: 1, 401: 1, 403: 1, 408: 1, 425: 1, 429: 1};
  var RETRY_ERRORS = {csrf_failed: 1};

  var options = null;
  var meta = null;        // {walkId, recording, nextSeq, nextChunk, carry, points, sentChunks, crs, lastT}
  var watchId = null;
  var timer = null;
  var flushing = null;    // the Promise of the upload under way
  var again = null;       // the upload asked for while one was under way
  var pending = 0;        // chunks stored and not yet acknowledged
  var buffered = 0;       // points stored and not yet in a chunk
  var lastError = null;
  var lastResult = null;
  var queue = Promise.resolve();  // storage writes, one after another, in the order positions came
  var ready = null;               // init's reading of what a previous page left
  var listening = false;

  // ---- storage: one object store, records keyed "meta", "p:<walk>:<seq>", "c:<walk>:<chunk>" ----
  var store = (function () {
    var memory = null;   // used when IndexedDB is unavailable (some private modes): this tab only
    var request = window.geoappIdb.request;
    var db = window.geoappIdb.store(STORE, "key");  // idb.js: one "geoapp" database, a store each
    function useMemory() {
      if (!memory) memory = {};
      return memory;
    }
    function inRange(key, prefix) { return key.indexOf(prefix) === 0; }

    return {
      // every record whose key starts with `prefix`, in key order
      read: function (prefix) {
        if (memory || !window.indexedDB) {
          var mem = useMemory();
          return Promise.resolve(Object.keys(mem).filter(function (k) { return inRange(k, prefix); })
            .sort().map(function (k) { return mem[k]; }));
        }
        return db().then(function (d) {
          var range = IDBKeyRange.bound(prefix, prefix + "\uffff");
          return request(d.transaction(STORE, "readonly").objectStore(STORE).getAll(range));
        }).catch(function () { memory = useMemory(); return []; });
      },
      // puts and deletes in ONE transaction: a chunk is made and its points removed together
      write: function (puts, deletes) {
        if (memory || !window.indexedDB) {
          var mem = useMemory();
          puts.forEach(function (r) { mem[r.key] = JSON.parse(JSON.stringify(r)); });
          (deletes || []).forEach(function (k) { delete mem[k]; });
          return Promise.resolve();
        }
        return db().then(function (d) {
          return new Promise(function (resolve, reject) {
            var tx = d.transaction(STORE, "readwrite");
            var os = tx.objectStore(STORE);
            puts.forEach(function (r) { os.put(r); });
            (deletes || []).forEach(function (k) { os.delete(k); });
            tx.oncomplete = function () { resolve(); };
            tx.onerror = tx.onabort = function () { reject(tx.error); };
          });
        });
      }
    };
  })();

  function pad(n) { return ("0000000000" + n).slice(-10); }
  function pointKey(walkId, seq) { return "p:" + walkId + ":" + pad(seq); }
  function chunkKey(walkId, n) { return "c:" + walkId + ":" + pad(n); }

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function snapshot() {
    var m = meta || {};
    return {
      recording: !!m.recording, walkId: m.walkId || null, points: m.points || 0,
      sentChunks: m.sentChunks || 0, chunksSent: m.sentChunks || 0,  // chunksSent: the same, for callers using that name
      pending: pending, buffered: buffered, lastError: lastError, lastResult: lastResult
    };
  }
  function changed() {
    if (options && typeof options.onChange === "function") {
      try { options.onChange(snapshot()); } catch (e) { if (window.console) console.error(e); }
    }
  }
  function saveMeta() { return store.write([Object.assign({key: META_KEY}, meta)]); }
  // storage work in order, each step after the last one has finished
  function serial(step) {
    var next = queue.then(step);
    queue = next.catch(function (e) { lastError = {status: 0, code: "storage", message: String(e && e.message || e)}; changed(); });
    return next;
  }

  // ---- recording ---------------------------------------------------------------------------------
  function onPosition(pos) {
    if (!meta || !meta.recording) return;
    var t = pos.timestamp || Date.now();
    if (meta.lastT && t <= meta.lastT) return;  // the server takes strictly increasing times only
    meta.lastT = t;
    var point = {lon: pos.coords.longitude, lat: pos.coords.latitude, t: new Date(t).toISOString(),
                 acc: pos.coords.accuracy == null ? 9999 : pos.coords.accuracy};
    serial(function () {
      var seq = meta.nextSeq++;
      meta.points += 1;
      return store.write([{key: pointKey(meta.walkId, seq), walkId: meta.walkId, point: point},
                          Object.assign({key: META_KEY}, meta)]).then(function () {
        buffered += 1;
        changed();
        // not waiting for the upload here: it needs this queue for its own bookkeeping
        if (buffered >= options.chunkPoints) return cutChunk(false).then(function () { flushSoon(); });
      });
    });
  }
  function onPositionError(err) {
    // denied, unavailable, timeout: the page shows it; watchPosition keeps trying on its own
    lastError = {status: 0, code: "geolocation", message: err && err.message || "", geolocationCode: err && err.code};
    changed();
  }
  function watch() {
    if (watchId !== null || !navigator.geolocation) return;
    watchId = navigator.geolocation.watchPosition(onPosition, onPositionError,
                                                  {enableHighAccuracy: true, maximumAge: 0, timeout: 60000});
  }
  function unwatch() {
    if (watchId !== null && navigator.geolocation) navigator.geolocation.clearWatch(watchId);
    watchId = null;
  }

  // The buffered points (after the last chunk's last point) become the next chunk. A lone point
  // with nothing before it cannot be a line: it waits for the next one (or, at the end, is dropped).
  function cutChunk(final) {
    var walkId = meta.walkId;
    return store.read("p:" + walkId + ":").then(function (records) {
      var points = records.map(function (r) { return r.point; });
      var line = (meta.carry ? [meta.carry] : []).concat(points);
      if (line.length < 2) {
        if (final && records.length) {
          buffered = 0;
          return store.write([], records.map(function (r) { return r.key; }));
        }
        return null;
      }
      var n = meta.nextChunk;
      var body = {walk_id: walkId, chunk: n, crs: meta.crs || "wgs84",
                  trace: {type: "LineString", coordinates: line.map(function (p) { return [p.lon, p.lat]; })},
                  times: line.map(function (p) { return p.t; }),
                  accuracies: line.map(function (p) { return p.acc; })};
      meta.nextChunk = n + 1;
      meta.carry = line[line.length - 1];
      return store.write([{key: chunkKey(walkId, n), walkId: walkId, chunk: n, body: body},
                          Object.assign({key: META_KEY}, meta)],
                         records.map(function (r) { return r.key; })).then(function () {
        buffered = 0;
        pending += 1;
        changed();
      });
    });
  }

  // ---- uploading ---------------------------------------------------------------------------------
  function send(record) {
    return fetch(options.endpoint, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": options.csrfToken || ""},
      body: JSON.stringify(record.body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (json) { return {status: r.status, json: json}; });
    }, function (err) {
      return {status: 0, json: {error: "network", message: err && err.message || ""}};
    });
  }

  // Every stored chunk, in order; `all` also tries the ones the server refused before.
  function flush(all) {
    if (flushing) {
      // one upload at a time; a call during one runs once it ends, to take the chunks made since
      again = again || flushing.then(function () { again = null; return flush(all); });
      return again;
    }
    flushing = store.read("c:").then(function (records) {
      pending = records.length;
      var chain = Promise.resolve();
      records.forEach(function (record) {
        chain = chain.then(function () {
          if (record.refused && !all) return null;
          return send(record).then(function (answer) {
            if (answer.status >= 200 && answer.status < 300) {
              lastResult = answer.json;
              lastError = null;
              return serial(function () {
                if (meta && meta.walkId === record.walkId) {
                  meta.sentChunks = (meta.sentChunks || 0) + 1;
                  return store.write([Object.assign({key: META_KEY}, meta)], [record.key]);
                }
                return store.write([], [record.key]);
              }).then(function () { pending = Math.max(pending - 1, 0); changed(); });
            }
            var json = answer.json || {};
            lastError = {status: answer.status, code: json.error || "http_" + answer.status, message: json.message || ""};
            var retry = answer.status >= 500 || RETRY_STATUSES[answer.status] || RETRY_ERRORS[json.error];
            changed();
            if (!retry) {
              // kept (only a 2xx removes a chunk), but not retried by the timer
              return store.write([Object.assign({}, record, {refused: lastError})]);
            }
            if (answer.status === 0) throw new Error("offline");  // no point trying the rest now
            return null;
          });
        });
      });
      return chain;
    }).catch(function () { /* offline: the next `online` event or tick tries again */ })
      .then(function () { return store.read("c:"); })
      .then(function (left) { pending = left.length; }, function () {})
      .then(function () { flushing = null; changed(); return snapshot(); });
    return flushing;
  }
  function flushSoon() { return flush(false); }

  function tick() {
    var work = meta && meta.recording && buffered > 0 ? serial(function () { return cutChunk(false); }) : Promise.resolve();
    return work.then(flushSoon);
  }
  function startTimer() {
    if (timer === null) timer = setInterval(tick, Math.min(options.chunkMs, options.retryMs));
  }

  // ---- the public face ---------------------------------------------------------------------------
  function init(opts) {
    options = Object.assign({}, defaults, opts || {});
    if (!listening) {
      window.addEventListener("online", function () { flush(false); });
      listening = true;
    }
    startTimer();
    ready = store.read(META_KEY).then(function (found) {
      meta = found.length ? found[0] : null;
      if (meta) delete meta.key;
      return meta ? store.read("p:" + meta.walkId + ":") : [];
    }).then(function (points) {
      buffered = points.length;
      if (meta && meta.recording) watch();  // the page was reloaded mid-walk: carry on
      changed();
      flush(true);
    });
    return ready;
  }
  function whenReady() { return ready || init({}); }

  function start(opts) {
    return whenReady().then(function () {
      if (meta && meta.recording) return snapshot();
      return begin(opts);
    });
  }
  function begin(opts) {
    return serial(function () {
      meta = {walkId: uuid(), recording: true, nextSeq: 0, nextChunk: 0, carry: null, points: 0,
              sentChunks: 0, crs: (opts && opts.crs) || options.crs || "wgs84", lastT: 0};
      buffered = 0;
      lastError = null;
      lastResult = null;
      return saveMeta();
    }).then(function () {
      watch();
      changed();
      return snapshot();
    });
  }

  function stop() {
    return whenReady().then(end);
  }
  function end() {
    unwatch();
    if (!meta || !meta.recording) return flush(false);
    return serial(function () {
      meta.recording = false;
      return cutChunk(true).then(saveMeta);
    }).then(function () {
      changed();
      return flush(false);
    });
  }

  window.geoappWalk = {
    init: init, start: start, stop: stop, flush: function () { return flush(true); },
    get state() { return snapshot(); }
  };
})();
