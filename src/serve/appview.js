// The app page (served as /appview.js): #/apps/NAME (timeline, config keys and domains in
// effect, activity), #/apps/NAME/releases[/V] (GET /api/apps/{app}/releases[/{v}]), and the
// activity chart (GET /api/activity), drawn here as inline SVG.
"use strict";
(function () {
  const DA = window.DA;
  const $ = DA.$;
  const el = DA.el;
  const SVG = "http://www.w3.org/2000/svg";
  let shown = null; // the app whose page is loaded

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // Events per day (bars), deploys (darker, inside), failed deploys (a red mark above the bar).
  DA.chart = async function (box, url) {
    let data;
    try {
      data = await DA.api(url);
    } catch (e) {
      box.replaceChildren(el("p", "hint", "activity not available: " + e.message));
      return;
    }
    const days = data.days;
    const W = 12;
    const H = 80;
    const max = Math.max(1, ...days.map((d) => d.events));
    const s = svg("svg", { class: "chart", viewBox: "0 0 " + days.length * W + " " + (H + 14), preserveAspectRatio: "none", role: "img" });
    const total = days.reduce((a, d) => a + d.events, 0);
    const deploys = days.reduce((a, d) => a + d.deploys, 0);
    const failed = days.reduce((a, d) => a + d.failed, 0);
    s.setAttribute("aria-label", days.length + " days: " + total + " events, " + deploys + " deploys, " + failed + " failed");
    days.forEach((d, i) => {
      const g = svg("g", { class: "day" + (d.failed ? " has-failed" : ""), "data-day": d.day });
      const title = svg("title");
      title.textContent = d.day + ": " + d.events + " events, " + d.deploys + " deploys" + (d.failed ? ", " + d.failed + " failed" : "");
      g.appendChild(title);
      g.appendChild(svg("rect", { class: "hit", x: i * W, y: 0, width: W, height: H + 14 }));
      const h = (d.events / max) * H;
      g.appendChild(svg("rect", { class: "events", x: i * W + 1, y: 10 + H - h, width: W - 2, height: h }));
      const dh = (d.deploys / max) * H;
      if (d.deploys) g.appendChild(svg("rect", { class: "deploys", x: i * W + 1, y: 10 + H - dh, width: W - 2, height: Math.max(dh, 1.5) }));
      // A bar, not a dot: the chart stretches to the width of the page.
      if (d.failed) g.appendChild(svg("rect", { class: "failed-mark", x: i * W + 1, y: Math.max(0, 10 + H - h - 7), width: W - 2, height: 5 }));
      s.appendChild(g);
    });
    const legend = el("p", "legend");
    legend.append(el("span", "key events", "events"), el("span", "key deploys", "deploys"),
      el("span", "key failed", "failed deploy"),
      el("span", "range", (days.length ? days[0].day + " → " + days[days.length - 1].day : "") +
        " · " + total + " events, " + deploys + " deploys, " + failed + " failed"));
    box.replaceChildren(s, legend);
  };

  const appHash = (app) => "#/apps/" + encodeURIComponent(app);

  function chips(ul, values, empty) {
    ul.replaceChildren();
    for (const v of values) ul.appendChild(el("li", null, v));
    if (!values.length) ul.appendChild(el("li", "none", empty));
  }

  // Config keys in effect: the config events replayed oldest first (set adds, unset removes,
  // clear empties); key names only, values are never stored.
  async function configKeys(app) {
    const note = $("app-keys-note");
    try {
      const data = await DA.api("/api/events?per_page=200&category=config&app=" + encodeURIComponent(app));
      const keys = new Set();
      for (const ev of data.events.slice().reverse()) {
        const ks = Array.isArray(ev.meta && ev.meta.keys) ? ev.meta.keys : [];
        if (ev.action === "clear") keys.clear();
        else if (ev.action === "unset") ks.forEach((k) => keys.delete(k));
        else ks.forEach((k) => keys.add(k));
      }
      chips($("app-keys"), Array.from(keys).sort(), "none recorded");
      note.textContent = data.total > data.events.length
        ? "from the latest " + data.events.length + " of " + data.total + " config events" : "";
    } catch (e) {
      chips($("app-keys"), [], "not available");
      note.textContent = e.message;
    }
  }

  async function domains(app) {
    try {
      const data = await DA.api("/api/events?per_page=1&category=domains&app=" + encodeURIComponent(app));
      const ev = data.events[0];
      const list = ev && ev.meta && Array.isArray(ev.meta.domains_after) ? ev.meta.domains_after : [];
      chips($("app-domains"), list, "none recorded");
      $("app-domains-note").textContent = ev ? "as of " + DA.exact(ev.ts) : "";
    } catch (e) {
      chips($("app-domains"), [], "not available");
    }
  }

  async function timeline(app) {
    try {
      const data = await DA.api("/api/events?per_page=50&app=" + encodeURIComponent(app));
      DA.renderRows($("app-events").tBodies[0], data.events);
    } catch (e) {
      DA.showError(e.message);
    }
  }

  function releaseRef(r) {
    return r.version !== null && r.version !== undefined ? String(r.version) : "id:" + r.id;
  }

  async function releases(app) {
    const state = $("rel-state");
    const body = $("releases").tBodies[0];
    body.replaceChildren();
    state.textContent = "loading releases…";
    let data;
    try {
      data = await DA.api("/api/apps/" + encodeURIComponent(app) + "/releases?limit=100");
    } catch (e) {
      state.textContent = e.status === 404 ? "releases not available (this server has no releases API)"
        : "releases not available: " + e.message;
      state.className = "hint unavailable";
      return;
    }
    state.className = "hint";
    state.textContent = data.releases.length ? data.releases.length + " releases" : "no releases recorded";
    for (const r of data.releases) {
      const tr = el("tr");
      tr.dataset.href = appHash(app) + "/releases/" + encodeURIComponent(releaseRef(r));
      tr.append(el("td", null, (r.version !== null ? "v" + r.version : "-") + (r.current ? " (current)" : "")),
        DA.time(r.ts, "td"), el("td", "message", r.description), el("td", "c-actor_label", r.actor),
        el("td", r.status === "success" ? null : "bad", r.status),
        el("td", null, r.rollback_to !== null && r.rollback_to !== undefined ? "v" + r.rollback_to : "-"));
      if (r.current) tr.classList.add("current");
      tr.addEventListener("click", () => DA.go(tr.dataset.href));
      body.appendChild(tr);
    }
  }

  async function release(app, ref) {
    const box = $("release-detail");
    let r;
    try {
      r = await DA.api("/api/apps/" + encodeURIComponent(app) + "/releases/" + encodeURIComponent(ref));
    } catch (e) {
      box.hidden = false;
      $("rd-title").textContent = "release " + ref;
      $("rd-fields").replaceChildren(el("dt", null, "error"), el("dd", null,
        e.status === 404 ? "release not available" : e.message));
      $("rd-redeploy").textContent = "";
      $("rd-caveat").textContent = "";
      return;
    }
    $("rd-title").textContent = (r.version !== null ? "release v" + r.version : "deploy #" + r.id) + (r.current ? " (current)" : "");
    const dl = $("rd-fields");
    dl.replaceChildren();
    const add = (k, v) => dl.append(el("dt", null, k), v instanceof Node ? (() => { const d = el("dd"); d.appendChild(v); return d; })() : el("dd", null, v === null || v === undefined || v === "" ? "-" : v));
    add("time", DA.exact(r.ts) + " (" + DA.rel(r.ts) + ")");
    for (const k of ["description", "actor", "status", "classification", "source_type", "rev", "image_tag", "command", "build_seconds"]) add(k, r[k]);
    add("rollback to", r.rollback_to !== null && r.rollback_to !== undefined ? "v" + r.rollback_to : null);
    for (const k of ["config_keys_changed", "domains", "ports"]) add(k.replace(/_/g, " "), (r[k] || []).join(", "));
    const fails = r.failed_attempts || [];
    if (fails.length) {
      const ul = el("ul");
      for (const f of fails) {
        const li = el("li");
        li.append(DA.link("#/events/" + f.id, "#" + f.id), " ", DA.time(f.ts), " ", el("span", null, f.description));
        ul.appendChild(li);
      }
      add("failed attempts", ul);
    }
    add("event", DA.link("#/events/" + r.id, "#" + r.id));
    $("rd-redeploy").textContent = (r.redeploy && r.redeploy.command) || "-";
    $("rd-caveat").textContent = (r.redeploy && r.redeploy.caveat) || "";
    box.hidden = false;
  }

  DA.views.app = {
    show(r) {
      const app = r.app;
      $("app-title").textContent = app;
      $("app-events-link").href = "#/events?app=" + encodeURIComponent(app);
      $("tab-timeline").href = appHash(app);
      $("tab-releases").href = appHash(app) + "/releases";
      $("tab-timeline").classList.toggle("active", r.tab === "timeline");
      $("tab-releases").classList.toggle("active", r.tab === "releases");
      $("app-timeline").hidden = r.tab !== "timeline";
      $("app-releases").hidden = r.tab !== "releases";
      if (shown !== app) {
        shown = app;
        configKeys(app);
        domains(app);
        timeline(app);
        DA.chart($("app-chart"), "/api/activity?days=30&app=" + encodeURIComponent(app));
        $("releases").dataset.app = "";
      }
      if (r.tab === "releases") {
        if ($("releases").dataset.app !== app) {
          $("releases").dataset.app = app;
          releases(app);
        }
        $("release-detail").hidden = true;
        if (r.release) release(app, r.release);
      }
      DA.startLive();
    },
    onLive() {
      if (shown && DA.current && DA.current.view === "app") {
        const app = shown;
        shown = null;
        DA.views.app.show(DA.current);
        shown = app;
      }
    },
  };
})();
