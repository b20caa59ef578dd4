// The client's upload page: send each chosen file at once, with a progress bar per file.
// Progressive enhancement only: without this script the forms post normally.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function outcomeLine(li, text, ok) {
    var p = li.querySelector(".outcome") || document.createElement("p");
    p.className = "outcome " + (ok ? "ok" : "refused");
    p.textContent = (ok ? "✓ " : "✗ ") + text;
    if (!p.parentNode) li.appendChild(p);
  }

  function entry(list, file, form) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.className = "file-name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", form.dataset.sending + " " + file.name);
    li.appendChild(name);
    li.appendChild(bar);
    list.appendChild(li);
    return { li: li, bar: bar };
  }

  function send(form, file, row) {
    return new Promise(function (resolve) {
      var maxBytes = parseInt(form.dataset.maxBytes || "0", 10);
      if (maxBytes && file.size > maxBytes) {
        row.bar.value = 100;
        outcomeLine(row.li, form.dataset.tooLarge, false);
        resolve(false);
        return;
      }
      var data = new FormData();
      data.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
      data.append("fichiers", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) row.bar.value = Math.round((event.loaded / event.total) * 100);
      });
      xhr.addEventListener("load", function () {
        row.bar.value = 100;
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        var result = body && body.files && body.files[0];
        if (result) {
          outcomeLine(row.li, result.message, result.ok);
          resolve(result.ok);
        } else {
          var message = body && body.error && body.error.message;
          outcomeLine(row.li, message || form.dataset.failed, false);
          resolve(false);
        }
      });
      xhr.addEventListener("error", function () {
        outcomeLine(row.li, form.dataset.failed, false);
        resolve(false);
      });
      xhr.send(data);
    });
  }

  // Replace the line's state (and the list of files sent) with a fresh copy of the page's.
  function refresh(form) {
    var article = form.closest(".public-item");
    if (!article) return Promise.resolve();
    var state = article.querySelector(".item-state");
    return fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(article.id);
        if (!fresh) return;
        var freshState = fresh.querySelector(".item-state");
        if (freshState && state) state.replaceWith(freshState);
        article.className = fresh.className;
      })
      .catch(function () { /* the outcome lines already say what happened */ });
  }

  function onChange(event) {
    var input = event.target;
    var form = input.form;
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length) return;
    var list = form.querySelector(".progress-list");
    var rows = files.map(function (file) { return entry(list, file, form); });
    form.setAttribute("aria-busy", "true");
    // One after the other: kinder to a weak phone connection than all at once.
    var chain = Promise.resolve();
    files.forEach(function (file, i) {
      chain = chain.then(function () { return send(form, file, rows[i]); });
    });
    chain.then(function () {
      input.value = "";
      return refresh(form);
    }).then(function () {
      form.removeAttribute("aria-busy");
      form.dataset.done = String(parseInt(form.dataset.done || "0", 10) + 1);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form.upload-form");
    Array.prototype.forEach.call(forms, function (form) {
      Array.prototype.forEach.call(form.querySelectorAll("input[type=file]"), function (input) {
        input.addEventListener("change", onChange);
      });
    });
  });

  // After a post: the field in error, else the message that says what happened (a status
  // already on the page when it loads is not read out; focus makes screen readers read it).
  // On load, not earlier: the browser's jump to the #element-… fragment would take focus away.
  window.addEventListener("load", function () {
    var target = document.querySelector("[aria-invalid='true']") || document.querySelector("[data-announce]");
    if (target) target.focus();
  });
})();
