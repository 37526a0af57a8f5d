// Registers the site's service worker (/sw.js, scope "/"), which keeps "my street" and the pin form
// usable with no network. Include it on any page; where service workers are unsupported (or the page
// is not served over https or from localhost) nothing happens and the pages work online as before.
(function () {
  "use strict";
  var done = null;
  function register(url) {
    if (done) return done;
    if (!("serviceWorker" in navigator) || !window.isSecureContext) {
      done = Promise.resolve(null);
      return done;
    }
    done = navigator.serviceWorker.register(url || "/sw.js", {scope: "/"})["catch"](function () { return null; });
    return done;
  }
  window.geoappServiceWorker = {register: register};
  if (document.readyState === "complete") {
    register();
  } else {
    window.addEventListener("load", function () { register(); });
  }
}());
