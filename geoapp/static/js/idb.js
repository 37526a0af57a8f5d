/* geoapp's IndexedDB on the phone: one database, "geoapp", in which each script (queue.js: the
   outbox; walk.js: the walk's points) keeps its own object store. A script asks for its store by
   name; if the database lacks it, the database is reopened one version up and only that store is
   added — never a fixed version number, so no script's upgrade can make another's open fail.
   window.geoappIdb.store(name, keyPath) -> function db(): Promise of an open IDBDatabase holding it.
   window.geoappIdb.request(req): an IDBRequest as a Promise. */
(function () {
  "use strict";
  var DB_NAME = "geoapp";

  function request(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function store(name, keyPath) {
    var dbPromise = null;

    function open(version) {
      return new Promise(function (resolve, reject) {
        var req = version ? indexedDB.open(DB_NAME, version) : indexedDB.open(DB_NAME);
        req.onupgradeneeded = function () {
          if (!req.result.objectStoreNames.contains(name)) {
            req.result.createObjectStore(name, {keyPath: keyPath});
          }
        };
        req.onsuccess = function () {
          var db = req.result;
          // another page wants to upgrade the database: let it, and open again when next needed
          db.onversionchange = function () { db.close(); dbPromise = null; };
          resolve(db);
        };
        req.onerror = function () { reject(req.error); };
        req.onblocked = function () { /* waits for the other tab to close its connection */ };
      });
    }

    return function db() {
      if (!dbPromise) {
        dbPromise = open(0).then(function (found) {
          if (found.objectStoreNames.contains(name)) return found;
          var next = found.version + 1;
          found.close();
          return open(next);
        });
        dbPromise.catch(function () { dbPromise = null; });
      }
      return dbPromise;
    };
  }

  window.geoappIdb = {request: request, store: store};
})();
