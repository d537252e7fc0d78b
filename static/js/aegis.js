// Small enhancements only; every page works without this file.
(function () {
  "use strict";
  // --- the modal (#modal, filled by an hx-get): it takes focus, keeps Tab inside, closes on
  // Escape, the close link or the backdrop, and gives focus back to what opened it.
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), " +
    "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  var opener = null;
  function openDialog() { return document.querySelector("#modal .modal"); }
  function focusables(dialog) {
    return Array.prototype.filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) { return el.offsetParent !== null; });
  }
  function modalOpened(dialog) {
    if (!dialog.hasAttribute("role")) { dialog.setAttribute("role", "dialog"); }
    dialog.setAttribute("aria-modal", "true");
    if (!dialog.hasAttribute("tabindex")) { dialog.setAttribute("tabindex", "-1"); }
    // The dialog itself takes focus, so a screen reader starts at its title, not at its Close link.
    dialog.focus();
  }
  function closeModal() {
    var modal = document.getElementById("modal");
    if (!modal || !openDialog()) { return; }
    modal.innerHTML = "";
    if (opener && document.contains(opener)) { opener.focus(); }
    opener = null;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "modal" && !openDialog()) { opener = document.activeElement; }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    var dialog = openDialog();
    if (target && target.id === "modal" && dialog) { modalOpened(dialog); }
  });
  document.addEventListener("keydown", function (event) {
    var dialog = openDialog();
    if (!dialog) { return; }
    if (event.key === "Escape") { event.preventDefault(); closeModal(); return; }
    if (event.key !== "Tab") { return; }
    var items = focusables(dialog);
    if (!items.length) { event.preventDefault(); dialog.focus(); return; }
    var first = items[0], last = items[items.length - 1], active = document.activeElement;
    if (event.shiftKey && (active === first || active === dialog || !dialog.contains(active))) {
      event.preventDefault(); last.focus();
    } else if (!event.shiftKey && (active === last || !dialog.contains(active))) {
      event.preventDefault(); first.focus();
    }
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest && target.closest("[data-dismiss]")) {
      var toast = target.closest(".toast");
      if (toast) { toast.remove(); }
    }
    if (target.closest && target.closest("[data-close-modal]") && openDialog()) {
      event.preventDefault();
      closeModal();
    } else if (target.classList && target.classList.contains("modal-backdrop")) {
      closeModal();
    }
  });

  // --- toasts: the same text at the same level is shown once, counted ("×3"), however it came
  // (the page's messages, an HX-Trigger, the notification poller's out-of-band swap). Error toasts
  // stay until dismissed (aegis.css gives only the others the fade-out animation).
  function toastKey(toast) {
    var text = toast.querySelector(".toast-text");
    return toast.getAttribute("data-toast-key") || (toast.className + "|" + (text ? text.textContent.trim() : ""));
  }
  function toastRepeat(existing, times) {
    var count = existing.querySelector(".toast-count");
    var total = (parseInt(existing.getAttribute("data-count"), 10) || 1) + times;
    if (!count) {
      count = document.createElement("span");
      count.className = "toast-count";
      existing.querySelector(".toast-text").after(count);
    }
    existing.setAttribute("data-count", String(total));
    count.textContent = "\u00d7" + total;
    count.setAttribute("aria-label", total + " times");
    // Seen again: the fade starts over, as if it had just arrived.
    existing.style.animation = "none";
    void existing.offsetWidth;
    existing.style.animation = "";
  }
  function toastsMerge(box) {
    var seen = {};
    Array.prototype.forEach.call(box.querySelectorAll(".toast"), function (toast) {
      var key = toastKey(toast);
      if (seen[key]) {
        toastRepeat(seen[key], parseInt(toast.getAttribute("data-count"), 10) || 1);
        toast.remove();
      } else {
        seen[key] = toast;
      }
    });
  }
  function toastsWatch() {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    toastsMerge(box);
    new MutationObserver(function () { toastsMerge(box); }).observe(box, { childList: true });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", toastsWatch); } else { toastsWatch(); }

  // HTMX responses carry Django messages as an HX-Trigger event (transfers.views.render_page).
  document.addEventListener("aegis:toasts", function (event) {
    var box = document.getElementById("toasts");
    var items = (event.detail && event.detail.items) || [];
    if (!box) { return; }
    items.forEach(function (item) {
      var toast = document.createElement("div");
      toast.className = "toast toast-" + (item.level || "info");
      toast.setAttribute("role", item.level === "error" ? "alert" : "status");
      var dot = document.createElement("span"); dot.className = "toast-dot";
      var text = document.createElement("span"); text.className = "toast-text"; text.textContent = item.text;
      var close = document.createElement("button");
      close.type = "button"; close.className = "toast-close"; close.setAttribute("data-dismiss", "");
      close.setAttribute("aria-label", "Dismiss"); close.textContent = "\u00d7";
      toast.append(dot, text, close);
      box.appendChild(toast);
    });
  });
  // Polls (hx-trigger "every ..." / "load ...") are not the user at work: tell the server, so
  // they never extend an idle session (aegis.security.SessionTimeoutMiddleware).
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    var trigger = (elt && elt.getAttribute && elt.getAttribute("hx-trigger")) || "";
    if (/^\s*(every|load)\b/.test(trigger)) { event.detail.headers["X-Aegis-Background"] = "1"; }
  });
  document.addEventListener("animationend", function (event) {
    if (event.animationName === "toast-out" && event.target.classList.contains("toast")) { event.target.remove(); }
  });
})();
// The idle-timeout warning. The server tells how many seconds the session has left until the
// idle and the absolute limit, on <body> and in the X-Aegis-Session-Idle / -Left headers of every
// response (accounts.session_end), so polls and htmx requests keep this page's clock true; tabs
// share the latest deadlines through localStorage. A minute before the idle limit a banner offers
// "Stay signed in" (POST /session/keepalive, which counts as activity); at the limit the page
// reloads itself, and the server answers with the login page saying why.
(function () {
  "use strict";
  var body = document.body;
  if (!body || !body.hasAttribute("data-session-idle")) { return; }
  var KEY = "aegis.session.deadlines";
  var warnMs = (parseInt(body.getAttribute("data-session-warn"), 10) || 60) * 1000;
  var banner = document.getElementById("session-warning");
  var idleAt = 0, endsAt = 0, leaving = false;

  function leave() {
    if (leaving) { return; }
    leaving = true;
    window.location.assign(window.location.pathname + window.location.search);
  }
  function hide() { if (banner && !banner.hidden) { banner.hidden = true; } }
  function show(idleFirst, seconds) {
    if (!banner) { return; }
    banner.querySelector("[data-session-idle-text]").hidden = !idleFirst;
    banner.querySelector("[data-session-limit-text]").hidden = idleFirst;
    banner.querySelector("[data-session-stay]").hidden = !idleFirst;
    banner.querySelectorAll("[data-session-countdown]").forEach(function (el) { el.textContent = String(seconds); });
    banner.hidden = false;
  }
  function tick() {
    if (leaving || !idleAt) { return; }
    var now = Date.now(), idleFirst = idleAt <= endsAt, at = idleFirst ? idleAt : endsAt;
    if (now >= at + 1000) { leave(); return; }  // the server has ended the session by now
    if (at - now > warnMs) { hide(); return; }
    show(idleFirst, Math.max(0, Math.ceil((at - now) / 1000)));
  }
  function update(idleSeconds, leftSeconds) {
    var idle = parseInt(idleSeconds, 10), left = parseInt(leftSeconds, 10);
    if (isNaN(idle) || isNaN(left)) { return; }
    var now = Date.now();
    idleAt = now + idle * 1000;
    endsAt = now + left * 1000;
    try { window.localStorage.setItem(KEY, JSON.stringify({ idle: idleAt, ends: endsAt })); } catch (e) { /* private mode */ }
    tick();
  }
  function fromStorage(value) {
    var saved;
    try { saved = JSON.parse(value || "null"); } catch (e) { return; }
    if (saved && typeof saved.idle === "number" && typeof saved.ends === "number") {
      idleAt = saved.idle;
      endsAt = saved.ends;
      tick();
    }
  }
  function csrfToken() {
    try { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { return ""; }
  }
  function stay() {
    fetch(body.getAttribute("data-session-keepalive"), {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      if (response.status === 204 && !response.redirected) {
        update(response.headers.get("X-Aegis-Session-Idle"), response.headers.get("X-Aegis-Session-Left"));
      } else {
        leave();  // the session is already gone: the server says so on the login page
      }
    }, function () { /* offline: keep counting down */ });
  }

  update(body.getAttribute("data-session-idle"), body.getAttribute("data-session-left"));
  window.setInterval(tick, 1000);
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.getResponseHeader("X-Aegis-Session-Idle") !== null) {
      update(xhr.getResponseHeader("X-Aegis-Session-Idle"), xhr.getResponseHeader("X-Aegis-Session-Left"));
    }
  });
  window.addEventListener("storage", function (event) { if (event.key === KEY) { fromStorage(event.newValue); } });
  window.addEventListener("pageshow", function (event) {  // back from the bfcache: another page knows better
    if (event.persisted) { try { fromStorage(window.localStorage.getItem(KEY)); } catch (e) { /* private mode */ } }
  });
  var button = banner && banner.querySelector("[data-session-stay]");
  if (button) { button.addEventListener("click", stay); }
})();
