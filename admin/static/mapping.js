// Mapping editor enhancements; every page works without this file.
// - Tabs: show either the forms or the raw YAML (without JS both are shown one after the other).
// - Confirmation before activating a version (forms or buttons with data-confirm).
(function () {
  "use strict";

  function setupTabs() {
    var list = document.querySelector(".mapping [role=tablist]");
    if (!list) { return; }
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    function select(tab) {
      tabs.forEach(function (other) {
        var selected = other === tab;
        other.setAttribute("aria-selected", selected ? "true" : "false");
        other.tabIndex = selected ? 0 : -1;
        document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
      });
    }
    tabs.forEach(function (tab, index) {
      tab.addEventListener("click", function () { select(tab); });
      tab.addEventListener("keydown", function (event) {
        var step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (step) {
          var next = tabs[(index + step + tabs.length) % tabs.length];
          select(next);
          next.focus();
        }
      });
    });
    list.hidden = false;
    // Open the YAML tab when the form cannot be shown or the YAML itself is invalid.
    var yamlFirst = document.getElementById("form-unavailable");
    select(yamlFirst ? tabs[1] : tabs[0]);
  }

  function setupConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("button[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupTabs();
    setupConfirm();
  });
}());
