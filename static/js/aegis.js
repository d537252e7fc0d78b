// Small enhancements only; every page works without this file.
(function () {
  "use strict";
  function closeModal() {
    var modal = document.getElementById("modal");
    if (modal) { modal.innerHTML = ""; }
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest && target.closest("[data-dismiss]")) {
      var toast = target.closest(".toast");
      if (toast) { toast.remove(); }
    }
    if (target.closest && target.closest("[data-close-modal]") && document.querySelector("#modal .modal")) {
      event.preventDefault();
      closeModal();
    } else if (target.classList && target.classList.contains("modal-backdrop")) {
      closeModal();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { closeModal(); }
  });
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
