// Fills the compose preview's sandboxed frame: a form beside it posts the draft to the
// frame's own URL (which has its own content policy). Without JavaScript its button does
// the same; with it, the form is sent as soon as it appears and its button goes away.
(function () {
  "use strict";

  function fill(root) {
    var forms = (root || document).querySelectorAll("form[data-fills-frame]:not([data-filled])");
    Array.prototype.forEach.call(forms, function (form) {
      form.setAttribute("data-filled", "1");
      form.hidden = true;
      form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { fill(document); });
  document.addEventListener("htmx:afterSettle", function () { fill(document); });
})();
