// The dokku-audit page, core (served as /app.js): the token, API calls, times, the hash router,
// keyboard navigation and live updates. The views are in /views.js (events list, facets,
// detail) and /appview.js (app page, releases, activity chart); they register on `DA.views`.
// Every text from an event goes through textContent: nothing is ever parsed as HTML.
// The token lives in this tab only (sessionStorage), never in a cookie: a browser sends a cookie
// to every port of the host, so any other local service would receive it.
"use strict";
(function () {
  const DA = (window.DA = { views: {} });
  const $ = (DA.$ = (id) => document.getElementById(id));
  let token = sessionStorage.getItem("dokku_audit_token") || "";
  let live = null; // the AbortController of the open stream
  let liveRetry = null;
  let lastEventId = null;
  DA.fresh = new Set();

  function setToken(t) {
    token = t.trim();
    sessionStorage.setItem("dokku_audit_token", token);
  }

  // Earlier versions kept the token in a cookie (path /api, not visible from here): expire any
  // left over, so the browser stops sending it to other ports.
  document.cookie = "dokku_audit_token=; path=/api; max-age=0; SameSite=Strict";

  // A token handed over in the fragment (#token=…) never reaches a server or a log.
  function takeToken() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (!m) return false;
    setToken(decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
    return true;
  }
  takeToken();

  DA.showError = function (text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  };

  // GET a JSON resource; an error carries the HTTP status.
  DA.api = async function (path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const resp = await fetch(path, { headers: headers, cache: "no-store" });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.status === 401) $("auth").hidden = false;
    if (!resp.ok) {
      const err = new Error((body && body.error && body.error.message) || ("HTTP " + resp.status));
      err.status = resp.status;
      throw err;
    }
    $("auth").hidden = true;
    return body;
  };

  // An element with a class and a text (never HTML).
  DA.el = function (tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  DA.link = function (href, text, cls) {
    const a = DA.el("a", cls, text);
    a.href = href;
    return a;
  };

  // Times: "3 min ago", the exact UTC time on hover.
  DA.exact = function (ts) {
    const d = new Date(ts);
    return isNaN(d) ? String(ts) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  };
  DA.rel = function (ts) {
    const t = Date.parse(ts);
    if (isNaN(t)) return String(ts);
    let s = Math.round((Date.now() - t) / 1000);
    const future = s < 0;
    s = Math.abs(s);
    let text;
    if (s < 45) text = s + " s";
    else if (s < 45 * 60) text = Math.round(s / 60) + " min";
    else if (s < 36 * 3600) text = Math.round(s / 3600) + " h";
    else if (s < 45 * 86400) text = Math.round(s / 86400) + " days";
    else if (s < 365 * 86400) text = Math.round(s / (30 * 86400)) + " months";
    else text = Math.round(s / (365 * 86400)) + " years";
    return future ? "in " + text : text + " ago";
  };
  DA.time = function (ts, tag) {
    const e = DA.el(tag || "span", "time", DA.rel(ts));
    e.title = DA.exact(ts);
    e.dataset.ts = ts;
    return e;
  };
  setInterval(() => {
    for (const e of document.querySelectorAll("[data-ts]")) e.textContent = DA.rel(e.dataset.ts);
  }, 30000);

  // Routes: #/events?filters, #/events/ID, #/apps/NAME, #/apps/NAME/releases[/V].
  DA.parseRoute = function (hash) {
    const h = (hash || "").replace(/^#/, "");
    const q = h.indexOf("?");
    const path = q === -1 ? h : h.slice(0, q);
    const params = new URLSearchParams(q === -1 ? "" : h.slice(q + 1));
    const decode = (p) => { try { return decodeURIComponent(p); } catch (e) { return p; } };
    const parts = path.split("/").filter((p) => p !== "").map(decode);
    if (parts[0] === "apps" && parts[1]) {
      return { view: "app", app: parts[1], tab: parts[2] === "releases" ? "releases" : "timeline",
        release: parts[2] === "releases" && parts[3] ? parts[3] : null, params: params };
    }
    if (parts[0] === "events" && parts[1]) return { view: "events", event: parts[1], params: null };
    return { view: "events", event: null, params: params };
  };

  DA.go = function (hash) {
    if (location.hash === hash || (hash === "#/events" && location.hash === "")) DA.route();
    else location.hash = hash;
  };

  DA.route = function () {
    if (takeToken()) stopLive();
    const r = DA.parseRoute(location.hash);
    DA.current = r;
    for (const v of document.querySelectorAll("main .view")) v.hidden = v.id !== r.view + "-view";
    DA.showError("");
    const crumbs = $("crumbs");
    crumbs.replaceChildren(DA.link(DA.views.events ? DA.views.events.listHash() : "#/events", "events"));
    if (r.view === "app") {
      crumbs.append(" / ", DA.link("#/apps/" + encodeURIComponent(r.app), r.app));
      if (r.tab === "releases") crumbs.append(" / ", DA.link("#/apps/" + encodeURIComponent(r.app) + "/releases", "releases"));
    }
    const view = DA.views[r.view];
    if (view) view.show(r);
    if (r.view !== "events" || !r.event) $("detail").hidden = true;
  };

  // Keyboard: j/k or arrows move in the table of the view, Enter opens, x folds, Esc closes,
  // / focuses the search.
  function navRows() {
    const view = document.querySelector("main .view:not([hidden])");
    if (!view) return [];
    return Array.from(view.querySelectorAll("table.nav tbody tr")).filter((r) => !r.hidden && r.offsetParent !== null);
  }
  DA.moveCursor = function (delta) {
    const rows = navRows();
    if (!rows.length) return;
    let i = rows.findIndex((r) => r.classList.contains("cursor"));
    for (const r of rows) r.classList.remove("cursor");
    i = i === -1 ? (delta > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, i + delta));
    rows[i].classList.add("cursor");
    rows[i].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
    if (e.key === "Escape") {
      if (typing) { t.blur(); return; }
      if (DA.views.events && !$("detail").hidden) DA.views.events.close();
      else if (DA.current && DA.current.view === "app" && DA.current.release) {
        DA.go("#/apps/" + encodeURIComponent(DA.current.app) + "/releases");
      }
      return;
    }
    if (typing) return;
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); DA.moveCursor(1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); DA.moveCursor(-1); }
    else if (e.key === "Enter") {
      const row = navRows().find((r) => r.classList.contains("cursor"));
      if (row && row.dataset.href) { e.preventDefault(); DA.go(row.dataset.href); }
    } else if (e.key === "x") {
      const row = navRows().find((r) => r.classList.contains("cursor"));
      const b = row && row.querySelector("button.fold");
      if (b) b.click();
    } else if (e.key === "/") {
      e.preventDefault();
      if (DA.current && DA.current.view !== "events") DA.go(DA.views.events.listHash());
      $("f-q").focus();
    }
  });

  function setLive(on) {
    $("live").textContent = on ? "live" : "live: reconnecting";
    $("live").className = on ? "live on" : "live off";
  }

  // Server-sent events over fetch: `id:` and `data:` lines, a blank line ends a message.
  function onMessage(block) {
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("id:")) id = line.slice(3).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (id !== null) lastEventId = id;
    if (!data.length) return;
    try { DA.fresh.add(JSON.parse(data.join("\n")).id); } catch (e) { return; }
    for (const v of Object.values(DA.views)) if (v.onLive) v.onLive();
  }

  async function readStream(ctl) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    // A reconnect resumes after the last event seen: nothing lost, nothing repeated.
    if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
    const resp = await fetch("/api/events/stream", { headers: headers, cache: "no-store", signal: ctl.signal });
    if (resp.status === 401) {
      $("auth").hidden = false;
      return false;
    }
    if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
    setLive(true);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return true;
      buf += chunk.value;
      let end;
      while ((end = buf.indexOf("\n\n")) !== -1) {
        onMessage(buf.slice(0, end));
        buf = buf.slice(end + 2);
      }
    }
  }

  DA.startLive = function () {
    if (live) return;
    clearTimeout(liveRetry);
    const ctl = new AbortController();
    live = ctl;
    readStream(ctl).catch(() => true).then((retry) => {
      if (live !== ctl) return; // stopped or replaced
      live = null;
      setLive(false);
      if (retry) liveRetry = setTimeout(DA.startLive, 2000);
    });
  };

  function stopLive() {
    const ctl = live;
    live = null;
    clearTimeout(liveRetry);
    if (ctl) ctl.abort();
  }

  $("auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token").value);
    stopLive();
    DA.route();
  });
  window.addEventListener("hashchange", DA.route);
  // The views register in the scripts after this one (all deferred, run in order).
  document.addEventListener("DOMContentLoaded", DA.route);
})();
