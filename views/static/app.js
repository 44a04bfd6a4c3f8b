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

  // Campaign builder: show the fields of the chosen kind, and keep the
  // audience count and sample current as the filter changes (debounced).
  var builder = document.getElementById("builder");
  if (builder) {
    var showKind = function () {
      var kind = (builder.querySelector('input[name="kind"]:checked') || {}).value || "event";
      builder.querySelectorAll("[data-kind]").forEach(function (el) {
        el.hidden = el.getAttribute("data-kind") !== kind;
      });
    };
    builder.querySelectorAll('input[name="kind"]').forEach(function (r) {
      r.addEventListener("change", function () { showKind(); clearTimeout(timer); timer = setTimeout(preview, 100); });
    });
    showKind();

    var cents = function (v) {
      v = (v || "").replace(/[$,\s]/g, "");
      if (v === "") return undefined;
      var n = Number(v);
      return isFinite(n) ? Math.round(n * 100) : NaN;
    };
    var int = function (v) { return v === "" || v == null ? undefined : parseInt(v, 10); };
    var selected = function (id) {
      return Array.prototype.map.call(document.getElementById(id).selectedOptions, function (o) { return o.value; });
    };
    var timer = null, seq = 0;
    var preview = function () {
      var f = {
        min_spend_cents: cents(builder.min_spend.value), max_spend_cents: cents(builder.max_spend.value),
        metros: selected("metros"), owner_ids: selected("owner_ids").map(Number),
        min_level: int(builder.min_level.value), max_level: int(builder.max_level.value),
        not_contacted_within_days: int(builder.not_contacted_within_days.value),
        kind: (builder.querySelector('input[name="kind"]:checked') || {}).value,
        holdout_percent: parseInt(builder.holdout_percent.value, 10) || 0
      };
      var mine = ++seq;
      fetch("/api/v1/audience/preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(f)
      }).then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); })
        .then(function (res) {
          if (mine !== seq) return;
          var err = document.getElementById("preview-error");
          if (!res.ok) {
            var e = res.d.error || {};
            err.textContent = e.message + (e.fields ? ": " + Object.keys(e.fields).map(function (k) { return k + " " + e.fields[k]; }).join("; ") : "");
            err.hidden = false;
            return;
          }
          err.hidden = true;
          document.getElementById("preview-count").textContent = res.d.count.toLocaleString();
          var pct = parseInt(builder.holdout_percent.value, 10) || 0;
          document.getElementById("preview-holdout").textContent = pct > 0 ?
            " (about " + Math.round(res.d.count * pct / 100).toLocaleString() + " held out, not contacted)" : "";
          var fc = res.d.forecast, fe = document.getElementById("preview-forecast");
          if (fc && fc.based_on > 0) {
            var money = function (c) { return "$" + (c / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); };
            var parts = [];
            if (fc.expected_yes != null) parts.push("about " + fc.expected_yes.toLocaleString() + " yes (" + Math.round(fc.yes_rate * 100) + "%)");
            if (fc.expected_attendees != null) parts.push("about " + fc.expected_attendees.toLocaleString() + (f.kind === "gift" ? " gifts delivered" : " attending"));
            if (fc.cost_per_attendee_cents != null) parts.push(money(fc.cost_per_attendee_cents) + (f.kind === "gift" ? " per gift" : " per attendee"));
            if (fc.expected_cost_cents != null) parts.push("about " + money(fc.expected_cost_cents) + " in all");
            fe.textContent = "Forecast: " + parts.join(", ") + ". Based on " + fc.based_on + " past " + (f.kind || "") + " campaign" +
              (fc.based_on === 1 ? "" : "s") + (fc.scope === "metro" ? " in these metros." : " (fewer than 3 in these metros, so all of them).");
          } else if (fc) {
            fe.textContent = "No forecast yet: no past " + f.kind + " campaign has finished.";
          } else {
            fe.textContent = "";
          }
          var ul = document.getElementById("preview-sample");
          ul.textContent = "";
          res.d.sample.forEach(function (c) {
            var li = document.createElement("li");
            li.textContent = c.name + " · " + c.metro_area + " · $" + (c.annual_spend_cents / 100).toLocaleString() + " · " + c.level_name;
            ul.appendChild(li);
          });
        }).catch(function () {});
    };
    builder.addEventListener("input", function (e) {
      if (!e.target.hasAttribute("data-preview")) return;
      clearTimeout(timer);
      timer = setTimeout(preview, 300);
    });
    builder.addEventListener("change", function (e) {
      if (e.target.hasAttribute("data-preview")) { clearTimeout(timer); timer = setTimeout(preview, 100); }
    });
    preview();
  }

  // A sending campaign's page refreshes its funnel until sending ends.
  var sending = document.getElementById("sending-note");
  if (sending) setTimeout(function () { window.location.reload(); }, 3000);

  // Check-in: type-ahead over the invitees, one tap to check in or undo,
  // without reloading; the forms work without JavaScript too.
  var door = document.getElementById("checkin");
  if (door) {
    var id = door.getAttribute("data-campaign");
    var list = document.getElementById("guests");
    var input = document.getElementById("checkin-q");
    var counts = function (c) {
      document.getElementById("n-expected").textContent = c.expected;
      document.getElementById("n-seats").textContent = c.seats;
      document.getElementById("n-arrived").textContent = c.arrived;
      document.getElementById("n-walkins").textContent = c.walk_ins;
    };
    var row = function (g) {
      var li = document.createElement("li");
      li.className = "guest" + (g.attended ? " arrived" : "");
      var who = document.createElement("div");
      who.className = "who";
      var b = document.createElement("strong");
      b.textContent = g.name;
      who.appendChild(b);
      if (g.company) who.appendChild(document.createTextNode(" · " + g.company));
      var sub = document.createElement("div");
      sub.className = "muted small";
      var reply = g.rsvp === "yes" ? "coming" + (g.guests ? " +" + g.guests : "") : (g.rsvp === "none" ? "no reply" : g.rsvp);
      sub.textContent = g.email + " · " + reply + (g.walk_in ? " · walk-in" : "");
      who.appendChild(sub);
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = g.attended ? "Undo" : "Check in";
      if (g.attended) btn.className = "secondary";
      btn.addEventListener("click", function () {
        btn.disabled = true;
        var body = new URLSearchParams();
        body.set(g.attended ? "invitation_id" : "customer_id", g.attended ? g.invitation_id : g.customer_id);
        fetch("/campaigns/" + id + "/checkin" + (g.attended ? "/undo" : ""), {
          method: "POST", credentials: "same-origin", body: body,
          headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
        }).then(function () { search(); });
      });
      li.appendChild(who);
      li.appendChild(btn);
      return li;
    };
    var seqD = 0;
    var search = function () {
      var mine = ++seqD;
      fetch("/campaigns/" + id + "/checkin/search?q=" + encodeURIComponent(input.value), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (mine !== seqD) return;
          counts(d.counts);
          list.textContent = "";
          if (!d.items.length) {
            var li = document.createElement("li");
            li.className = "muted";
            li.textContent = "Nobody matches. Add them as a walk-in below.";
            list.appendChild(li);
          }
          d.items.forEach(function (g) { list.appendChild(row(g)); });
        });
    };
    var t2 = null;
    input.addEventListener("input", function () { clearTimeout(t2); t2 = setTimeout(search, 200); });
  }
})();
