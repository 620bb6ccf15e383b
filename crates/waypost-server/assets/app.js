// Waypost dashboard: live updates over Server-Sent Events, confirmations,
// the template preview and passkey ceremonies. Pages work without this
// file; it only enhances them.
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

  // Passkeys (WebAuthn). A form marked data-passkey="create" or "get" posts
  // its fields to data-start for the ceremony's options, asks the browser's
  // authenticator, and posts the answer to data-finish. The server answers
  // {redirect} to go on (also in a step-up problem), or a problem whose
  // detail is shown. Without WebAuthn the form
  // posts normally and the server explains what is needed.
  var bytes = function (b64url) {
    var s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  };
  var b64url = function (buf) {
    if (!buf) return null;
    var a = new Uint8Array(buf), bin = "";
    for (var i = 0; i < a.length; i++) bin += String.fromCharCode(a[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  var decodeOptions = function (options) {
    var pk = options.publicKey;
    pk.challenge = bytes(pk.challenge);
    if (pk.user) pk.user.id = bytes(pk.user.id);
    ["excludeCredentials", "allowCredentials"].forEach(function (list) {
      (pk[list] || []).forEach(function (c) { c.id = bytes(c.id); });
    });
    return options;
  };
  var encodeCredential = function (cred) {
    var r = cred.response, response = { clientDataJSON: b64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64url(r.attestationObject);
    } else {
      response.authenticatorData = b64url(r.authenticatorData);
      response.signature = b64url(r.signature);
      response.userHandle = b64url(r.userHandle);
    }
    return JSON.stringify({ id: cred.id, rawId: b64url(cred.rawId), type: cred.type, response: response, extensions: {} });
  };
  var postFields = function (url, fields) {
    return fetch(url, {
      method: "POST", body: fields, credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (res) {
      // JSON, or a problem document (RFC 9457) whose detail is for the member.
      if (!/^application\/(problem\+)?json/.test(res.headers.get("content-type") || "")) {
        // Signed out meanwhile, or an error page: show it.
        window.location.reload();
        return new Promise(function () {});
      }
      return res.json().then(function (body) {
        if (body.redirect) {
          window.location.assign(body.redirect);
          return new Promise(function () {});
        }
        if (!res.ok) throw new Error(body.detail || "Something went wrong; try again.");
        return body;
      });
    });
  };
  var ceremonyError = function (err) {
    if (err && err.name === "NotAllowedError") return "The passkey prompt was closed or timed out. Try again.";
    if (err && err.name === "InvalidStateError") return "This authenticator already holds a passkey for your account.";
    // WebAuthn refuses IP addresses and origins other than the configured one.
    if (err && err.name === "SecurityError") return "Passkeys work only on this site's own name (for example localhost rather than 127.0.0.1).";
    return (err && err.message) || "Something went wrong; try again.";
  };
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var status = form.querySelector("[data-passkey-status]");
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (e) {
      if (!window.PublicKeyCredential || !navigator.credentials) return;
      e.preventDefault();
      if (button.disabled) return;
      var kind = form.getAttribute("data-passkey");
      var fields = new URLSearchParams(new FormData(form));
      button.disabled = true;
      status.className = "muted";
      status.textContent = "Waiting for your passkey…";
      postFields(form.getAttribute("data-start"), fields).then(function (started) {
        var options = decodeOptions(started.options);
        return (kind === "create" ? navigator.credentials.create(options) : navigator.credentials.get(options))
          .then(function (cred) {
            fields.set("challenge_id", started.challenge_id);
            fields.set("credential", encodeCredential(cred));
            return postFields(form.getAttribute("data-finish"), fields);
          });
      }).catch(function (err) {
        status.className = "error";
        status.textContent = ceremonyError(err);
        button.disabled = false;
      });
    });
  });

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
