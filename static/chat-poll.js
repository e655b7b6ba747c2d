/* Adaptive polling of the visitor's chat (loaded from 'self' under the CSP; no inline code).
   htmx asks for #chat-log every 2 s ("every 2s" in the markup: without this script the page
   polls as before). This script lets a tick through only when it is due: every
   data-poll-active seconds while the chat is active, every data-poll-idle seconds once nothing
   happened for data-idle-after seconds, every data-poll-hidden seconds while the tab is hidden.
   Typing, sending, a new message from the store, or coming back to the tab make it fast again. */
(function () {
  "use strict";

  var lastActivity = Date.now();
  var lastPoll = 0;

  function seconds(log, name, fallback) {
    var value = parseFloat(log.getAttribute("data-" + name));
    return isNaN(value) ? fallback : value;
  }

  function interval(log) {
    if (document.visibilityState === "hidden") { return seconds(log, "poll-hidden", 30); }
    var quiet = (Date.now() - lastActivity) / 1000;
    return quiet >= seconds(log, "idle-after", 60) ? seconds(log, "poll-idle", 15) : seconds(log, "poll-active", 2);
  }

  function active() {
    lastActivity = Date.now();
    var log = document.getElementById("chat-log");
    if (log) { log.setAttribute("data-poll-mode", "active"); }
  }

  function isPoll(event) {
    var elt = event.detail && event.detail.elt;
    return elt && elt.id === "chat-log" && event.detail.requestConfig && event.detail.requestConfig.verb === "get";
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!isPoll(event)) { return; }
    var log = event.detail.elt;
    var every = interval(log);
    // Half a second of slack: htmx's 2 s ticks never land exactly on the due moment.
    if (Date.now() - lastPoll < every * 1000 - 500) {
      event.preventDefault();
      return;
    }
    lastPoll = Date.now();
    log.setAttribute("data-poll-mode", every > seconds(log, "poll-active", 2) ? "slow" : "active");
  });

  // Before the swap: afterwards the polled element is gone from the page, and its events with it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    // 200: something new arrived (the store answered) — 204 means nothing did.
    if (isPoll(event) && event.detail.xhr && event.detail.xhr.status === 200) { active(); }
  });

  document.addEventListener("input", function (event) {
    if (event.target && event.target.closest && event.target.closest("#chat-form")) { active(); }
  });

  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "chat-form") { active(); }
  });

  document.addEventListener("visibilitychange", function () {
    // Back on the tab: the next tick asks at once, and the chat counts as active again.
    if (document.visibilityState === "visible") { active(); lastPoll = 0; }
  });
})();
