// Waypost dashboard: live updates over Server-Sent Events, confirmations and
// the template preview. Pages work without this file; it only enhances them.
(function () {
  "use strict";

  // A page that shows a one-time secret answers a POST: point the address
  // at the page itself so reloading shows the list instead of creating
  // another key or invitation.
  var once = document.querySelector("[data-replace-url]");
  if (once && window.history && history.replaceState) {
    history.replaceState(null, "", once.getAttribute("data-replace-url"));
  }

  // Live updates: any event the page listens for asks htmx regions to refresh.
  var live = document.querySelector("[data-stream]");
  if (live && window.EventSource) {
    var stream = new EventSource(live.getAttribute("data-stream"));
    var types = (live.getAttribute("data-types") || "").split(",");
    // A trailing throttle: one refresh covers every event of a burst
    // (sent, delivered and read can arrive within milliseconds).
    var pending = null;
    var notify = function () {
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        document.body.dispatchEvent(new CustomEvent("wp:refresh"));
      }, 250);
    };
    types.forEach(function (t) {
      if (t) stream.addEventListener(t, notify);
    });
    // The stream starts at "now": refresh once it is open (and after every
    // reconnection) so changes made while it was connecting are shown too.
    stream.addEventListener("open", function () {
      live.setAttribute("data-live", "on");
      notify();
    });
    stream.addEventListener("error", function () {
      live.setAttribute("data-live", "off");
    });
  }

  // Destructive forms ask first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  // Template picker: show the chosen template's text with the parameters filled in.
  var picker = document.querySelector("[data-template-picker]");
  if (picker) {
    var select = picker.querySelector("select[name=template]");
    var preview = picker.querySelector("[data-preview]");
    var update = function () {
      var opt = select.options[select.selectedIndex];
      var body = (opt && opt.getAttribute("data-body")) || "";
      picker.querySelectorAll("input[data-param]").forEach(function (input) {
        var n = input.getAttribute("data-param");
        body = body.split("{{" + n + "}}").join(input.value || "{{" + n + "}}");
      });
      preview.textContent = body;
    };
    picker.addEventListener("input", update);
    picker.addEventListener("change", update);
    update();
  }

  // Template editor: the body with the example values in place of {{1}}, {{2}}…
  var editor = document.querySelector("[data-template-editor]");
  if (editor) {
    var bodyField = editor.querySelector("[data-body]");
    var examplesField = editor.querySelector("[data-examples]");
    var shown = editor.querySelector("[data-preview]");
    var render = function () {
      var examples = examplesField.value.split(",").map(function (e) { return e.trim(); });
      shown.textContent = bodyField.value.replace(/\{\{(\d+)\}\}/g, function (whole, n) {
        return examples[n - 1] || whole;
      });
    };
    editor.addEventListener("input", render);
    render();
  }

  // Copy buttons (the API key shown once).
  document.addEventListener("click", function (e) {
    var target = e.target.closest && e.target.closest("[data-copy]");
    if (!target || !navigator.clipboard) return;
    var source = document.getElementById(target.getAttribute("data-copy"));
    if (source) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        target.textContent = "Copied";
      });
    }
  });
})();
