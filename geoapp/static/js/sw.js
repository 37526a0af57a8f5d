// The service worker (served at /sw.js, scope "/"): "my street" (/my) and the pin form (/my/pin)
// open with no network, and a report made offline waits in the outbox (queue.js) until it can go.
//
// - Pages (/my, /my/pin): network first, the cached copy when the network fails or is too slow
//   (a weak signal in the street), and every good answer refreshes the cache. Not stale-first: the
//   page carries my latest reports and the session's CSRF token, both stale in an old copy.
// - Static files (/static/, /vendor/): cache first, fetched and kept on first use.
// - The API is never cached, except GET /api/v1/streets and /api/v1/categories (network first).
// - Signing in or out (any visit to /login) forgets the cached pages: they belong to one person.
//
// VERSION is replaced by the server (web/pin.py) with a digest of the static files, so any change to
// them installs a new worker with fresh caches and drops the old ones.
"use strict";
var VERSION = "dev";
var STATIC_CACHE = "geoapp-static-" + VERSION;
var PAGE_CACHE = "geoapp-pages-" + VERSION;
var PAGES = ["/my", "/my/pin"];
var CACHED_API = ["/api/v1/streets", "/api/v1/categories"];
var PRECACHE = [
  "/static/css/base.css", "/static/css/phone.css", "/static/css/pin.css", "/static/css/queue.css",
  "/static/js/mystreet.js", "/static/js/dom.js", "/static/js/idb.js", "/static/js/walk.js", "/static/js/queue.js", "/static/js/pin.js",
  "/static/js/sw-register.js", "/static/vendor/exifr-7.1.3/lite.legacy.umd.js",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png",
  "/vendor/leaflet/leaflet.js", "/vendor/leaflet/leaflet.css"
];
var PAGE_TIMEOUT_MS = 5000;  // then the cached copy, if there is one

function keep(cacheName, request, response) {
  // only whole, good, same-origin answers; never a redirect (to /login) in a page's place
  if (!response || !response.ok || response.redirected || response.type !== "basic") return response;
  var copy = response.clone();
  caches.open(cacheName).then(function (c) { return c.put(request, copy); });
  return response;
}

function precache() {
  return Promise.all([
    caches.open(STATIC_CACHE).then(function (c) {
      // one by one: a file missing on this server must not stop the others
      return Promise.all(PRECACHE.map(function (url) { return c.add(url).catch(function () {}); }));
    }),
    caches.open(PAGE_CACHE).then(function (c) {
      return Promise.all(PAGES.map(function (url) {
        return fetch(url, {credentials: "same-origin"}).then(function (r) {
          if (r.ok && !r.redirected) return c.put(url, r);
        }).catch(function () {});
      }));
    })
  ]);
}

self.addEventListener("install", function (event) {
  event.waitUntil(precache().then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) {
      return n.indexOf("geoapp-") === 0 && n !== STATIC_CACHE && n !== PAGE_CACHE;
    }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function networkFirst(cacheName, request, key, timeoutMs) {
  return caches.open(cacheName).then(function (cache) {
    var network = fetch(request).then(function (r) { return keep(cacheName, key, r); });
    var fallback = function () {
      return cache.match(key).then(function (hit) { return hit || network; });
    };
    if (!timeoutMs) return network.catch(fallback);
    return new Promise(function (resolve, reject) {
      var settled = false;
      var timer = setTimeout(function () {
        cache.match(key).then(function (hit) { if (hit && !settled) { settled = true; resolve(hit); } });
      }, timeoutMs);
      network.then(function (r) {
        clearTimeout(timer);
        if (!settled) { settled = true; resolve(r); }
      }, function () {
        clearTimeout(timer);
        if (!settled) { settled = true; fallback().then(resolve, reject); }
      });
    });
  });
}

function cacheFirst(request) {
  // Pages name static files with ?v=<release> (web/assets.py) and PRECACHE names them bare: one copy
  // per path, the query ignored. STATIC_CACHE is per VERSION already, so a release never mixes.
  var key = new URL(request.url).pathname;
  return caches.open(STATIC_CACHE).then(function (cache) {
    return cache.match(key).then(function (hit) {
      return hit || fetch(request).then(function (r) { return keep(STATIC_CACHE, key, r); });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var path = url.pathname;
  if (path === "/login") {
    caches.delete(PAGE_CACHE);  // someone is signing in or out: the cached pages were not theirs
    return;
  }
  if (PAGES.indexOf(path) >= 0 && request.mode === "navigate") {
    // one copy per page, whatever its query (?lang=, ?edit=): the page reads its query itself
    event.respondWith(networkFirst(PAGE_CACHE, request, path, PAGE_TIMEOUT_MS));
  } else if (CACHED_API.indexOf(path) >= 0) {
    event.respondWith(networkFirst(STATIC_CACHE, request, request, 0));
  } else if (path.indexOf("/static/") === 0 || path.indexOf("/vendor/") === 0) {
    event.respondWith(cacheFirst(request));
  }
  // anything else (the rest of the API, photos, other pages) goes to the network as if we were not here
});
