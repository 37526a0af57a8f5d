// /my/pin: pin a problem on the phone — where (GPS, else the photo's EXIF GPS, else a tap on the map;
// the pin can be dragged), what the server says about that place (GET /api/v1/snap: the street,
// the distance, reports of the same kind nearby; no snapping is decided here), 1–3 photos, the
// problem item (searchable by name, code or pinyin), a description; then into the phone's outbox
// (queue.js) first, and sent from there.
//
// Data and words come from the page's JSON (#pin-data); text reaches the DOM as text nodes only.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("pin-data").textContent);
  var L_ = data.labels;
  var numbers = new Intl.NumberFormat(data.lang === "en" ? "en" : "zh-CN", {maximumFractionDigits: 0});
  var RECENT_KEY = "geoapp.recentCategories", RECENT_MAX = 5, RESULTS_MAX = 12, SNAP_DELAY_MS = 400;

  function $(id) { return document.getElementById(id); }
  var textEl = window.geoappDom.textEl, fill = window.geoappDom.fill;  // dom.js
  function setText(id, text) { $(id).textContent = text || ""; }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  // Leaflet writes attributions with innerHTML: give it escaped text.
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function newClientId() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) { crypto.getRandomValues(bytes); } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // --- the map: the streets, and the pin ---------------------------------------------------------
  var map = L.map("pin-map", {maxZoom: 19, minZoom: 10, zoomSnap: 0.25, center: [41.115, 121.125], zoom: 15});
  map.attributionControl.setPrefix("Leaflet");
  L.control.scale({imperial: false}).addTo(map);
  if (data.tiles) {
    L.tileLayer(data.tiles.url, {maxZoom: 19, attribution: escapeHtml(data.tiles.attribution || "")}).addTo(map);
  }
  var ownStreet = null;
  L.geoJSON(data.streets, {
    style: function (f) {
      var own = f.properties.code === data.own_street;
      return {color: own ? "#1d2b4f" : "#6e7781", weight: own ? 7 : 4, opacity: own ? 0.85 : 0.6,
              className: own ? "pin-street pin-street-own" : "pin-street"};
    },
    interactive: false,
    onEachFeature: function (f, layer) { if (f.properties.code === data.own_street) ownStreet = layer; }
  }).addTo(map);
  if (ownStreet) map.fitBounds(ownStreet.getBounds(), {padding: [16, 16]});

  var pinIcon = L.divIcon({className: "pin-marker", html: "", iconSize: [44, 44], iconAnchor: [22, 44]});
  var pin = null, accuracy = null;
  // where the problem is: {lat, lon, crs, source: "gps" | "photo" | "manual"}
  var position = null;

  function placePin(lat, lon, crs, source, accuracyM) {
    position = {lat: lat, lon: lon, crs: crs, source: source};
    var at = [lat, lon];
    if (!pin) {
      pin = L.marker(at, {icon: pinIcon, draggable: true, keyboard: true, title: L_.me, autoPan: true}).addTo(map);
      pin.on("dragend", function () {
        var p = pin.getLatLng();
        // the pin was set against the streets as drawn (WGS-84): so is where it was dragged to
        placePin(p.lat, p.lng, "wgs84", "manual");
        setText("geo-status", L_.pin_moved);
      });
    } else {
      pin.setLatLng(at);
    }
    if (accuracyM) {
      if (!accuracy) {
        accuracy = L.circle(at, {radius: accuracyM, color: "#1f6feb", weight: 1, fillOpacity: 0.12, interactive: false,
                                 className: "pin-accuracy"}).addTo(map);
      } else {
        accuracy.setLatLng(at).setRadius(accuracyM);
      }
    } else if (accuracy) {
      map.removeLayer(accuracy);
      accuracy = null;
    }
    var box = map.getContainer();  // what the pin says, readable by tests and assistive tools
    box.setAttribute("data-source", source);
    box.setAttribute("data-lat", lat.toFixed(7));
    box.setAttribute("data-lon", lon.toFixed(7));
    if (!map.getBounds().pad(-0.1).contains(at)) map.setView(at, Math.max(map.getZoom(), 17));
    snapSoon();
  }

  map.on("click", function (e) {
    placePin(e.latlng.lat, e.latlng.lng, "wgs84", "manual");
    setText("geo-status", L_.pin_moved);
  });

  // --- where I am: GPS first ---------------------------------------------------------------------
  var gpsFailed = false;
  var photoPosition = null;  // the first chosen photo's EXIF GPS, if it has one
  function usePhotoPosition() {
    if (!photoPosition || (position && position.source !== "photo")) return;
    // cameras write EXIF GPS in WGS-84
    placePin(photoPosition.lat, photoPosition.lon, "wgs84", "photo");
    setText("geo-status", L_.from_photo);
  }
  function onGps(pos) {
    if (position && position.source === "manual") return;  // the user's correction wins
    placePin(pos.coords.latitude, pos.coords.longitude, data.crs, "gps", pos.coords.accuracy || 0);
    setText("geo-status", fill(L_.accuracy, {n: numbers.format(pos.coords.accuracy || 0)}));
  }
  function onGpsError() {
    gpsFailed = true;
    if (position && position.source === "gps") return;  // keep the last fix we had
    if (photoPosition) { usePhotoPosition(); } else if (!position) { setText("geo-status", L_.tap_map); }
  }
  if (navigator.geolocation) {
    setText("geo-status", L_.locating);
    navigator.geolocation.watchPosition(onGps, onGpsError, {enableHighAccuracy: true, maximumAge: 5000, timeout: 20000});
  } else {
    onGpsError();
  }

  // --- what the server says about this place (GET /api/v1/snap) ----------------------------------
  var snapTimer = null, snapSeq = 0;
  var category = null;  // the chosen item: {code, name}
  var snapKey = null;  // what the last question was about: a GPS fix repeating itself asks nothing new
  function snapSoon() {
    if (!position) return;
    var key = [position.lat.toFixed(6), position.lon.toFixed(6), position.crs, category ? category.code : ""].join();
    if (key === snapKey) return;
    snapKey = key;
    clearTimeout(snapTimer);
    snapTimer = setTimeout(snap, SNAP_DELAY_MS);
  }
  function showSnap(state, text, nearbyText, nearby) {
    $("snap").setAttribute("data-state", state);
    setText("snap-text", text);
    setText("nearby-text", nearbyText);
    var list = $("nearby");
    clear(list);
    (nearby || []).forEach(function (r) {
      (r.photos || []).slice(0, 1).forEach(function (p) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = data.endpoints.report_page + r.id;
        var img = document.createElement("img");
        img.src = p.url;
        img.alt = L_.nearby_photo;
        img.width = 64;
        img.height = 64;
        img.loading = "lazy";
        a.appendChild(img);
        li.appendChild(a);
        list.appendChild(li);
      });
    });
  }
  function snap() {
    if (!position) return;
    if (navigator.onLine === false) { snapKey = null; showSnap("offline", L_.snap_offline); return; }
    var seq = ++snapSeq;
    var q = "lat=" + encodeURIComponent(position.lat) + "&lon=" + encodeURIComponent(position.lon) +
      "&crs=" + encodeURIComponent(position.crs) + (category ? "&category=" + encodeURIComponent(category.code) : "");
    setText("snap-text", L_.checking);
    fetch(data.endpoints.snap + "?" + q, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) { return {ok: r.ok, body: body}; });
      })
      .then(function (res) {
        if (seq !== snapSeq) return;  // the pin moved again meanwhile
        if (res.ok) {
          showSnap(res.body.on_own_street === false ? "other-street" : "ok", res.body.text, res.body.nearby_text,
                   res.body.nearby);
        } else {
          showSnap("refused", res.body.message || "");
        }
      })
      .catch(function () {
        if (seq !== snapSeq) return;
        snapKey = null;  // ask again when the pin moves or the network is back
        showSnap("offline", L_.snap_offline);
      });
  }

  window.addEventListener("online", snapSoon);

  // --- photos --------------------------------------------------------------------------------------
  var photos = [];  // {blob, name, type, thumb (a data: URL or null)}
  // A small preview drawn on a canvas (the CSP allows data: images, not blob: ones); null when the
  // browser cannot decode the file: the server will say what is wrong with it.
  function thumbnail(blob) {
    if (!window.createImageBitmap) return Promise.resolve(null);
    return createImageBitmap(blob).then(function (bmp) {
      var size = 160, scale = Math.max(size / bmp.width, size / bmp.height);
      var canvas = document.createElement("canvas");
      canvas.width = size;
      canvas.height = size;
      var w = bmp.width * scale, h = bmp.height * scale;
      canvas.getContext("2d").drawImage(bmp, (size - w) / 2, (size - h) / 2, w, h);
      if (bmp.close) bmp.close();
      return canvas.toDataURL("image/jpeg", 0.8);
    })["catch"](function () { return null; });
  }
  function exifPosition(blob) {
    if (!window.exifr || !exifr.gps) return Promise.resolve(null);
    return exifr.gps(blob).then(function (gps) {
      return gps && isFinite(gps.latitude) && isFinite(gps.longitude) ? {lat: gps.latitude, lon: gps.longitude} : null;
    })["catch"](function () { return null; });
  }
  function drawPhotos() {
    var list = $("photos");
    clear(list);
    photos.forEach(function (p, i) {
      var li = document.createElement("li");
      li.className = "photo";
      if (p.thumb) {
        var img = document.createElement("img");
        img.src = p.thumb;
        img.alt = fill(L_.photo_alt, {n: i + 1});
        img.width = 96;
        img.height = 96;
        li.appendChild(img);
      } else {
        li.appendChild(textEl("span", p.name, "photo-name"));
      }
      var remove = textEl("button", L_.photo_remove, "photo-remove");
      remove.type = "button";
      remove.setAttribute("aria-label", L_.photo_remove + " " + fill(L_.photo_alt, {n: i + 1}));
      remove.addEventListener("click", function () { photos.splice(i, 1); drawPhotos(); });
      li.appendChild(remove);
      list.appendChild(li);
    });
    setText("photo-count", fill(L_.photo_count, {n: photos.length, max: data.max_photos}));
    var full = photos.length >= data.max_photos;
    $("photo-camera").disabled = full;
    $("photo-gallery").disabled = full;
    document.querySelector(".photo-buttons").setAttribute("data-full", full ? "1" : "0");
    list.setAttribute("data-count", String(photos.length));
  }
  function addPhoto(blob, name, type) {
    var p = {blob: blob, name: name || "photo.jpg", type: type || blob.type || "image/jpeg", thumb: null};
    photos.push(p);
    drawPhotos();
    return Promise.all([thumbnail(blob), exifPosition(blob)]).then(function (found) {
      p.thumb = found[0];
      drawPhotos();
      if (found[1] && !photoPosition) {
        photoPosition = found[1];
        if (gpsFailed || !position) usePhotoPosition();
      }
    });
  }
  function onFiles(e) {
    var files = Array.prototype.slice.call(e.target.files || []);
    setText("form-error", "");
    var room = data.max_photos - photos.length;
    if (files.length > room) setText("form-error", fill(L_.too_many_photos, {max: data.max_photos}));
    files.slice(0, Math.max(room, 0)).forEach(function (f) { addPhoto(f, f.name, f.type); });
    e.target.value = "";  // the same photo may be chosen again after removing it
  }
  $("photo-camera").addEventListener("change", onFiles);
  $("photo-gallery").addEventListener("change", onFiles);

  // --- the problem item: search, recently used, browse -------------------------------------------
  var items = [];  // every item: {code, name, keys, path}
  data.categories.forEach(function (cls) {
    cls.children.forEach(function (cat) {
      cat.children.forEach(function (item) {
        items.push({code: item.code, name: item.name, keys: item.keys, path: cls.name + " › " + cat.name});
      });
    });
  });
  var itemByCode = {};
  items.forEach(function (it) { itemByCode[it.code] = it; });

  function recent() {
    try {
      return (JSON.parse(localStorage.getItem(RECENT_KEY)) || []).filter(function (c) { return itemByCode[c]; });
    } catch (e) { return []; }
  }
  function remember(code) {
    var codes = [code].concat(recent().filter(function (c) { return c !== code; })).slice(0, RECENT_MAX);
    try { localStorage.setItem(RECENT_KEY, JSON.stringify(codes)); } catch (e) { /* storage off: fine */ }
  }
  function choiceButton(it, className) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.setAttribute("data-code", it.code);
    b.setAttribute("aria-pressed", category && category.code === it.code ? "true" : "false");
    b.appendChild(textEl("span", it.code, "code"));
    b.appendChild(document.createTextNode(" " + it.name));
    b.addEventListener("click", function () { choose(it.code); });
    return b;
  }
  function choose(code) {
    var it = itemByCode[code];
    if (!it) return;
    category = {code: it.code, name: it.name};
    remember(it.code);
    setText("category-chosen", fill(L_.chosen, {name: it.code + " " + it.name}));
    $("category-chosen").setAttribute("data-code", it.code);
    $("category-search").value = "";
    $("category-browse").open = false;  // chosen: the description and the send button come next
    drawResults();
    drawRecent();
    drawTree();
    setText("form-error", "");
    snapSoon();
  }
  function normalise(q) { return q.replace(/\s+/g, "").toLowerCase(); }
  function search(q) {
    var starts = [], contains = [];
    items.forEach(function (it) {
      var hit = false, first = false;
      it.keys.forEach(function (k) {
        var at = k.indexOf(q);
        if (at >= 0) { hit = true; if (at === 0) first = true; }
      });
      if (hit) (first ? starts : contains).push(it);
    });
    return starts.concat(contains).slice(0, RESULTS_MAX);
  }
  function drawResults() {
    var list = $("category-results");
    clear(list);
    var q = normalise($("category-search").value);
    $("category-browse").hidden = !!q;
    if (!q) return;
    var found = search(q);
    if (!found.length) { list.appendChild(textEl("li", L_.search_none, "choice-none")); return; }
    found.forEach(function (it) {
      var li = document.createElement("li");
      li.appendChild(choiceButton(it, "choice"));
      li.appendChild(textEl("span", it.path, "choice-path"));
      list.appendChild(li);
    });
  }
  function drawRecent() {
    var box = $("category-recent");
    clear(box);
    var codes = recent();
    if (!codes.length) return;
    box.appendChild(textEl("span", L_.recent, "chips-label"));
    codes.forEach(function (c) { box.appendChild(choiceButton(itemByCode[c], "chip")); });
  }
  function drawTree() {
    var tree = $("category-tree");
    var open = {};
    Array.prototype.forEach.call(tree.querySelectorAll("details[open]"), function (d) { open[d.getAttribute("data-code")] = true; });
    clear(tree);
    data.categories.forEach(function (cls) {
      tree.appendChild(textEl("h3", cls.name, "tree-class"));
      cls.children.forEach(function (cat) {
        var details = document.createElement("details");
        details.setAttribute("data-code", cat.code);
        if (open[cat.code]) details.open = true;
        details.appendChild(textEl("summary", cat.name));
        var ul = document.createElement("ul");
        ul.className = "choice-list";
        cat.children.forEach(function (item) {
          var li = document.createElement("li");
          li.appendChild(choiceButton(itemByCode[item.code], "choice"));
          ul.appendChild(li);
        });
        details.appendChild(ul);
        tree.appendChild(details);
      });
    });
  }
  $("category-search").addEventListener("input", drawResults);
  $("category-search").addEventListener("keydown", function (e) {
    if (e.key === "Enter") {  // Enter picks the first match rather than sending the form
      e.preventDefault();
      var first = $("category-results").querySelector("button.choice");
      if (first) first.click();
    }
  });
  drawRecent();
  drawTree();

  // --- description ---------------------------------------------------------------------------------
  function drawCount() {
    setText("description-count", fill(L_.chars, {n: numbers.format($("description").value.length),
                                                  max: numbers.format(data.max_description)}));
  }
  $("description").addEventListener("input", drawCount);
  drawCount();
  drawPhotos();

  // --- the outbox (queue.js) ----------------------------------------------------------------------
  var queue = window.geoappQueue;
  var editing = null;  // the client_id of a refused report being corrected
  function loadItem(item) {
    // a refused report back in the form: the same photos, place, item and words, to be corrected
    editing = item.client_id;
    photos = [];
    drawPhotos();
    (item.photos || []).forEach(function (p) { addPhoto(p.blob, p.name, p.type); });
    var f = item.fields;
    placePin(Number(f.lat), Number(f.lon), f.crs, "manual");
    if (f.category) choose(f.category);
    $("description").value = f.description || "";
    drawCount();
    setText("form-note", L_.editing);
    window.scrollTo(0, 0);
  }
  queue.configure({endpoint: data.endpoints.reports, reportPage: data.endpoints.report_page,
                   strings: data.queue_labels, onEdit: loadItem});
  queue.render($("queue"), data.queue_labels);
  var editId = new URLSearchParams(location.search).get("edit");
  if (editId) queue.get(editId).then(function (item) { if (item) loadItem(item); });

  // "saved, sending…" stays only while it is true; the outbox below says what happened next
  var lastSaved = null;
  queue.onChange(function () {
    if (!lastSaved) return;
    queue.get(lastSaved).then(function (it) {
      if (!it || it.state === "sent" || it.state === "refused") { lastSaved = null; setText("form-note", ""); }
    });
  });

  function problem() {
    if (!position) return L_.need_position;
    if (!photos.length) return L_.need_photo;
    if (!category) return L_.need_category;
    if (!$("description").value.trim()) return L_.need_description;
    return null;
  }
  function resetForm() {
    photos = [];
    photoPosition = null;
    drawPhotos();
    $("description").value = "";
    drawCount();
    editing = null;
  }
  $("pin-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var missing = problem();
    setText("form-error", missing);
    setText("form-note", "");
    if (missing) return;
    var description = $("description").value.trim();
    var item = {
      client_id: newClientId(),  // made before anything is sent: every retry carries the same one
      fields: {lat: position.lat, lon: position.lon, crs: position.crs, category: category.code, description: description},
      photos: photos.map(function (p) { return {blob: p.blob, name: p.name, type: p.type}; }),
      summary: category.code + " " + category.name + " · " + (description.length > 24 ? description.slice(0, 24) + "…" : description)
    };
    var replaced = editing;
    var button = $("send");
    button.disabled = true;
    queue.add(item).then(function () {
      lastSaved = item.client_id;
      if (replaced) queue.remove(replaced);
      resetForm();
      setText("form-note", navigator.onLine === false ? L_.saved_offline : L_.saved);
      $("queue").scrollIntoView({block: "nearest"});
    }, function (err) {
      setText("form-error", fill(L_.save_failed, {error: err && err.message || String(err)}));
    }).then(function () { button.disabled = false; });
  });

  if (window.geoappServiceWorker) window.geoappServiceWorker.register(data.endpoints.service_worker);
}());
