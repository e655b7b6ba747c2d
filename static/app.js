/* Small progressive enhancements on top of htmx (loaded from 'self' under the CSP).
   htmx 2 does not swap error responses, so without this an expired form or a
   lost connection during a live check would fail silently. */
(function () {
  "use strict";

  function showAlert(text) {
    var region = document.getElementById("global-alert");
    if (!region) { return; }
    region.textContent = "";
    var box = document.createElement("p");
    box.className = "flash flash-error";
    box.textContent = text;
    region.appendChild(box);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = "The server could not handle that request (" + xhr.status + ").";
    try {
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var box = page.querySelector(".error-box");
      if (box) { text = box.textContent.replace(/\s+/g, " ").trim(); }
    } catch (ignored) { /* keep the generic text */ }
    showAlert(text);
  });

  document.addEventListener("htmx:sendError", function () {
    showAlert("Could not reach the server. Check your connection; what you typed is still in the form.");
  });

  // The header menus are <details> (they open without script); with script they
  // also close as menus do: on Escape (focus back on their button) and on a click
  // elsewhere on the page.
  function openMenus() {
    return Array.prototype.slice.call(document.querySelectorAll("details.menu[open]"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    openMenus().forEach(function (menu) {
      var hadFocus = menu.contains(document.activeElement);
      menu.removeAttribute("open");
      if (hadFocus) { menu.querySelector("summary").focus(); }
    });
  });

  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var region = document.getElementById("global-alert");
    if (region && event.detail.successful) { region.textContent = ""; }
  });
})();
