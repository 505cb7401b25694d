// The dokku-audit page: filters → GET /api/events, a detail view (GET /api/events/{id}) with
// before → after changes, and live updates from GET /api/events/stream (read with fetch, so that
// it carries the Authorization header as every other request does).
// Every text from an event goes through textContent: nothing is ever parsed as HTML.
// The token lives in this tab only (sessionStorage), never in a cookie: a browser sends a cookie
// to every port of the host, so any other local service would receive it.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const FILTERS = ["app", "category", "action", "actor", "status", "classification", "q", "since", "until", "per_page"];
  const COLUMNS = ["id", "ts", "app", "actor_label", "category", "action", "classification", "status", "message"];
  let token = sessionStorage.getItem("dokku_audit_token") || "";
  let page = 1;
  let pages = 0;
  let selected = null;
  let live = null; // the AbortController of the open stream
  let liveRetry = null;
  let lastEventId = null;
  let reloadTimer = null;
  let fresh = new Set();

  function setToken(t) {
    token = t.trim();
    sessionStorage.setItem("dokku_audit_token", token);
  }

  // Earlier versions kept the token in a cookie (path /api, not visible from here): expire any
  // left over, so the browser stops sending it to other ports.
  document.cookie = "dokku_audit_token=; path=/api; max-age=0; SameSite=Strict";

  // A token handed over in the fragment (#token=…) never reaches a server or a log.
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    setToken(decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  async function api(path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const resp = await fetch(path, { headers: headers, cache: "no-store" });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.status === 401) {
      $("auth").hidden = false;
      throw new Error((body && body.error && body.error.message) || "unauthorised");
    }
    if (!resp.ok) {
      throw new Error((body && body.error && body.error.message) || ("HTTP " + resp.status));
    }
    $("auth").hidden = true;
    return body;
  }

  function params() {
    const p = new URLSearchParams();
    for (const name of FILTERS) {
      const v = $("f-" + name).value.trim();
      if (v !== "") p.set(name, v);
    }
    p.set("page", String(page));
    return p;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined || text === "" ? "-" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  async function load() {
    let data;
    try {
      data = await api("/api/events?" + params().toString());
    } catch (e) {
      showError(e.message);
      $("summary").textContent = "";
      return;
    }
    showError("");
    pages = data.pages;
    const body = $("events").tBodies[0];
    body.replaceChildren();
    for (const ev of data.events) {
      const tr = document.createElement("tr");
      tr.dataset.id = ev.id;
      for (const c of COLUMNS) cell(tr, ev[c], c === "message" ? "message" : "");
      if (fresh.has(ev.id)) tr.classList.add("new");
      if (selected === ev.id) tr.classList.add("selected");
      tr.addEventListener("click", () => detail(ev.id));
      body.appendChild(tr);
    }
    const first = (data.page - 1) * data.per_page;
    $("summary").textContent = data.total === 0 ? "no matching events"
      : data.total + " matching event" + (data.total === 1 ? "" : "s") +
        (data.events.length ? " (showing " + (first + 1) + "–" + (first + data.events.length) + ")" : "");
    $("pageinfo").textContent = pages ? "page " + data.page + " of " + pages : "";
    $("prev").disabled = !data.prev;
    $("next").disabled = !data.next;
    startLive();
  }

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 250);
  }

  async function detail(id) {
    selected = id;
    for (const tr of $("events").tBodies[0].rows) {
      tr.classList.toggle("selected", Number(tr.dataset.id) === id);
    }
    let data;
    try {
      data = await api("/api/events/" + encodeURIComponent(id));
    } catch (e) {
      showError(e.message);
      return;
    }
    const ev = data.event;
    $("d-id").textContent = "#" + ev.id;
    const dl = $("d-fields");
    dl.replaceChildren();
    for (const [k, v] of Object.entries(ev)) {
      if (k === "meta") continue;
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v === null ? "-" : String(v);
      dl.append(dt, dd);
    }
    const ul = $("d-changes");
    ul.replaceChildren();
    for (const c of data.changes) {
      const li = document.createElement("li");
      const label = document.createElement("strong");
      label.textContent = c.field + ": ";
      const before = document.createElement("span");
      before.className = "before";
      before.textContent = c.before === null || c.before === "" ? "-" : c.before;
      const after = document.createElement("span");
      after.className = "after";
      after.textContent = c.after === null || c.after === "" ? "-" : c.after;
      li.append(label, before, document.createTextNode(" → "), after);
      ul.appendChild(li);
    }
    $("d-changes-title").hidden = data.changes.length === 0;
    ul.hidden = data.changes.length === 0;
    $("d-meta").textContent = JSON.stringify(ev.meta, null, 2);
    $("detail").hidden = false;
  }

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
    try { fresh.add(JSON.parse(data.join("\n")).id); } catch (e) { return; }
    // Only the first page changes when an event arrives (newest first).
    if (page === 1) reloadSoon();
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

  function startLive() {
    if (live) return;
    clearTimeout(liveRetry);
    const ctl = new AbortController();
    live = ctl;
    readStream(ctl).catch(() => true).then((retry) => {
      if (live !== ctl) return; // stopped or replaced
      live = null;
      setLive(false);
      if (retry) liveRetry = setTimeout(startLive, 2000);
    });
  }

  function stopLive() {
    const ctl = live;
    live = null;
    clearTimeout(liveRetry);
    if (ctl) ctl.abort();
  }

  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    page = 1;
    load();
  });
  $("filters").addEventListener("reset", () => {
    setTimeout(() => { page = 1; load(); }, 0);
  });
  $("prev").addEventListener("click", () => { if (page > 1) { page--; load(); } });
  $("next").addEventListener("click", () => { if (page < pages) { page++; load(); } });
  $("d-close").addEventListener("click", () => { $("detail").hidden = true; selected = null; });
  $("auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token").value);
    stopLive();
    load();
  });
  load();
})();
