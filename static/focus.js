/* Focus and announcements after htmx swaps (loaded from 'self' under the CSP).
   The server marks what should take focus with data-autofocus="N" (the step's
   heading is 1, a finished result 2, a confirm panel 3): after a swap the
   highest one takes focus and its text goes to the polite live region. Live
   field checks carry no mark, so they never move focus away from typing; they
   only keep each input's aria-invalid in step with its messages, as a full
   submit renders it. */
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) { return; }
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function takeFocus() {
    var marked = Array.prototype.slice.call(document.querySelectorAll("[data-autofocus]"));
    if (!marked.length) { return; }
    marked.sort(function (a, b) { return Number(b.dataset.autofocus) - Number(a.dataset.autofocus); });
    var target = marked[0];
    marked.forEach(function (el) { el.removeAttribute("data-autofocus"); });
    if (!target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
    target.focus();
    announce(target.textContent.replace(/\s+/g, " ").trim());
  }

  function syncInvalid() {
    document.querySelectorAll(".feedback[id^='feedback-']").forEach(function (box) {
      var input = document.getElementById(box.id.slice("feedback-".length));
      if (!input) { return; }
      var invalid = box.querySelector(".msg-error") !== null;
      input.setAttribute("aria-invalid", invalid ? "true" : "false");
      var field = input.closest(".field");
      if (field) { field.classList.toggle("has-error", invalid); }
    });
  }

  function syncTitle() {
    var step = document.getElementById("wizard-step");
    if (step && step.dataset.title) { document.title = step.dataset.title; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    // A page load keeps the browser's own focus; the marks are for swaps only.
    document.querySelectorAll("[data-autofocus]").forEach(function (el) { el.removeAttribute("data-autofocus"); });
  });

  document.addEventListener("htmx:afterSettle", function () {
    syncInvalid();
    syncTitle();
    takeFocus();
  });
})();
