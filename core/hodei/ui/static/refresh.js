// Refreshes the parts of the page marked data-live, in place, every data-refresh seconds: the same URL
// is fetched again (the server renders the whole page) and each live part is swapped for its new
// version. Forms are left alone, so typing is never interrupted. Without JavaScript a <noscript>
// refresh reloads the page instead.
(function () {
  "use strict";
  var seconds = parseFloat(document.body.getAttribute("data-refresh"));
  if (!(seconds > 0)) {
    return;
  }
  var busy = false;

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live][id]").forEach(function (part) {
      var next = fresh.getElementById(part.id);
      if (next && next.innerHTML !== part.innerHTML) {
        part.innerHTML = next.innerHTML;
      }
    });
    if (fresh.title) {
      document.title = fresh.title;
    }
  }

  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, {credentials: "same-origin"})
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload();  // signed out meanwhile: show the sign-in form
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html) {
          swap(html);
        }
      })
      .catch(function () {
        // The daemon is restarting or unreachable: the next tick tries again.
      })
      .then(function () {
        busy = false;
      });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
}());
