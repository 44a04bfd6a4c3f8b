// Rapport's small bit of JavaScript: confirmations, upload progress and the
// import progress poll. Pages work without it.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Ask before destructive actions.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Show the upload's progress, then follow the import page it leads to.
  var form = document.getElementById("import-form");
  if (form && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var bar = document.getElementById("upload-progress");
      bar.hidden = false;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) bar.value = Math.round(ev.loaded * 100 / ev.total);
      };
      xhr.onload = function () { window.location.href = xhr.responseURL || "/import"; };
      xhr.onerror = function () { form.submit(); };
      xhr.send(new FormData(form));
    });
  }

  // Poll a running import and reload when it finishes.
  var status = document.getElementById("import-status");
  if (status && status.getAttribute("data-status") === "running") {
    var id = status.getAttribute("data-import");
    var poll = function () {
      fetch("/imports/" + id + "/status.json", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          var im = d.import;
          document.getElementById("import-progress").value = d.percent;
          document.getElementById("import-rows").textContent = im.rows_read;
          ["inserted", "updated", "unchanged", "rejected"].forEach(function (k) {
            document.getElementById("n-" + k).textContent = im[k];
          });
          if (im.status !== "running") window.location.reload();
          else setTimeout(poll, 700);
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 500);
  }
})();
