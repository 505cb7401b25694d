// The events view (served as /views.js): filter choices with counts (GET /api/facets), the
// list (GET /api/events) with the events of one command folded under one row (same
// correlation_id), the activity chart, and the event detail (GET /api/events/{id}).
"use strict";
(function () {
  const DA = window.DA;
  const $ = DA.$;
  const el = DA.el;
  const FILTERS = ["q", "app", "category", "action", "actor", "status", "classification", "since", "until", "per_page"];
  const COLUMNS = ["id", "ts", "app", "actor_label", "category", "action", "classification", "status", "message"];
  const FACETS = { app: "apps", category: "categories", actor: "actors", status: "statuses" };
  const expanded = new Set(); // correlation ids unfolded
  let loaded = null; // the query string of the list shown
  let listHash = "#/events";
  let pages = 0;
  let selected = null;
  let reloadTimer = null;

  // The command a group of events came from: the command line one of them records, else the
  // message of the newest (how it ended: "source deploy finished").
  function commandOf(members) {
    for (const m of members) {
      const meta = m.meta || {};
      const c = meta.command || meta.triggered_by_command;
      if (typeof c === "string" && c) return c;
    }
    return members[0].message;
  }

  function row(ev) {
    const tr = document.createElement("tr");
    tr.dataset.id = ev.id;
    tr.dataset.href = "#/events/" + ev.id;
    for (const c of COLUMNS) {
      const v = ev[c];
      let td;
      if (c === "ts") {
        td = DA.time(v, "td");
      } else {
        td = el("td", c === "message" ? "message" : "c-" + c, v === null || v === undefined || v === "" ? "-" : v);
      }
      if (c === "status" && v && v !== "success") td.classList.add("bad");
      tr.appendChild(td);
    }
    if (DA.fresh.has(ev.id)) tr.classList.add("new");
    if (selected === ev.id) tr.classList.add("selected");
    tr.addEventListener("click", (e) => {
      if (e.target.closest("button, a")) return;
      DA.go(tr.dataset.href);
    });
    return tr;
  }

  function setFolded(tbody, gid, head) {
    const open = expanded.has(gid);
    for (const r of tbody.querySelectorAll("tr.child")) if (r.dataset.group === gid) r.hidden = !open;
    const b = head.querySelector("button.fold");
    b.setAttribute("aria-expanded", String(open));
    b.textContent = (open ? "▾ " : "▸ ") + b.dataset.count;
  }

  // Rows, newest first; the events sharing a correlation_id fold under the newest of them.
  DA.renderRows = function (tbody, events) {
    tbody.replaceChildren();
    const groups = new Map();
    for (const ev of events) {
      if (!ev.correlation_id) continue;
      if (!groups.has(ev.correlation_id)) groups.set(ev.correlation_id, []);
      groups.get(ev.correlation_id).push(ev);
    }
    const done = new Set();
    for (const ev of events) {
      if (done.has(ev.id)) continue;
      const members = ev.correlation_id ? groups.get(ev.correlation_id) : [ev];
      const head = row(ev);
      tbody.appendChild(head);
      if (members.length < 2) continue;
      const gid = ev.correlation_id;
      head.classList.add("group");
      head.dataset.group = gid;
      const msg = head.cells[8];
      msg.textContent = commandOf(members);
      const b = el("button", "fold");
      b.type = "button";
      b.dataset.count = members.length;
      b.title = "the " + members.length + " events of this command (x)";
      b.addEventListener("click", () => {
        if (expanded.has(gid)) expanded.delete(gid); else expanded.add(gid);
        setFolded(tbody, gid, head);
      });
      head.cells[0].prepend(b, " ");
      for (const m of members.slice(1)) {
        const r = row(m);
        r.classList.add("child");
        r.dataset.group = gid;
        tbody.appendChild(r);
        done.add(m.id);
      }
      setFolded(tbody, gid, head);
    }
  };

  function formParams() {
    const p = new URLSearchParams();
    for (const name of FILTERS) {
      const v = $("f-" + name).value.trim();
      if (v !== "" && !(name === "per_page" && v === "50")) p.set(name, v);
    }
    return p;
  }

  function hashOf(p) {
    const s = p.toString();
    return "#/events" + (s ? "?" + s : "");
  }

  function renderFacets(data, p) {
    for (const box of document.querySelectorAll("#facets .facet")) {
      const param = box.dataset.param;
      const ul = box.querySelector("ul");
      ul.replaceChildren();
      const active = p.get(param);
      const values = data[FACETS[param]] || [];
      for (const f of values) {
        const li = el("li");
        const b = el("button", "choice" + (active === f.value ? " active" : ""));
        b.type = "button";
        b.dataset.value = f.value;
        b.append(el("span", "value", f.value), el("span", "count", f.count));
        b.title = active === f.value ? "remove this filter" : "only " + param + " " + f.value;
        b.addEventListener("click", () => {
          const next = new URLSearchParams(p);
          next.delete("page");
          if (active === f.value) next.delete(param); else next.set(param, f.value);
          DA.go(hashOf(next));
        });
        li.appendChild(b);
        if (param === "app") li.appendChild(DA.link("#/apps/" + encodeURIComponent(f.value), "›", "applink"));
        ul.appendChild(li);
      }
      if (active && !values.some((f) => f.value === active)) {
        const b = el("button", "choice active", active + " (no match)");
        b.type = "button";
        b.addEventListener("click", () => { const n = new URLSearchParams(p); n.delete(param); DA.go(hashOf(n)); });
        ul.appendChild(el("li")).appendChild(b);
      }
      const others = data.others && data.others[FACETS[param]];
      if (others) ul.appendChild(el("li", "hint", "+ " + others + " in other values"));
    }
  }

  async function load(p, force) {
    const qs = p.toString();
    if (!force && loaded === qs) return;
    loaded = qs;
    const apiParams = new URLSearchParams(p);
    let data;
    try {
      data = await DA.api("/api/events?" + apiParams.toString());
    } catch (e) {
      DA.showError(e.message);
      $("summary").textContent = "";
      loaded = null;
      return;
    }
    DA.showError("");
    pages = data.pages;
    DA.renderRows($("events").tBodies[0], data.events);
    const first = (data.page - 1) * data.per_page;
    $("summary").textContent = data.total === 0 ? "no matching events"
      : data.total + " matching event" + (data.total === 1 ? "" : "s") +
        (data.events.length ? " (showing " + (first + 1) + "–" + (first + data.events.length) + ")" : "");
    $("pageinfo").textContent = pages ? "page " + data.page + " of " + pages : "";
    $("prev").disabled = !data.prev;
    $("next").disabled = !data.next;
    DA.startLive();
    const fp = new URLSearchParams(p);
    fp.delete("page");
    fp.delete("per_page");
    DA.api("/api/facets?" + fp.toString()).then((f) => renderFacets(f, p), (e) => DA.showError(e.message));
    const ap = new URLSearchParams({ days: "30" });
    if (p.get("app")) ap.set("app", p.get("app"));
    if (DA.chart) DA.chart($("chart"), "/api/activity?" + ap.toString());
  }

  function fill(p) {
    for (const name of FILTERS) $("f-" + name).value = p.get(name) || (name === "per_page" ? "50" : "");
  }

  async function detail(id) {
    selected = Number(id);
    for (const tr of $("events").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.id) === selected);
    let data;
    try {
      data = await DA.api("/api/events/" + encodeURIComponent(id));
    } catch (e) {
      DA.showError(e.message);
      return;
    }
    const ev = data.event;
    $("d-id").textContent = "#" + ev.id;
    const a = $("d-app");
    a.hidden = !ev.app;
    if (ev.app) {
      a.href = "#/apps/" + encodeURIComponent(ev.app);
      a.textContent = "app " + ev.app + " →";
    }
    const dl = $("d-fields");
    dl.replaceChildren();
    for (const [k, v] of Object.entries(ev)) {
      if (k === "meta") continue;
      const dd = k === "ts" || k === "created_at" ? el("dd", null, DA.exact(v) + " (" + DA.rel(v) + ")")
        : el("dd", null, v === null ? "-" : v);
      dl.append(el("dt", null, k), dd);
    }
    const ul = $("d-changes");
    ul.replaceChildren();
    for (const c of data.changes) {
      const li = el("li");
      li.append(el("strong", null, c.field + ": "),
        el("span", "before", c.before === null || c.before === "" ? "-" : c.before),
        document.createTextNode(" → "),
        el("span", "after", c.after === null || c.after === "" ? "-" : c.after));
      ul.appendChild(li);
    }
    $("d-changes-title").hidden = data.changes.length === 0;
    ul.hidden = data.changes.length === 0;
    $("d-meta").textContent = JSON.stringify(ev.meta, null, 2);
    $("detail").hidden = false;
  }

  DA.views.events = {
    listHash: () => listHash,
    show(r) {
      if (r.event) {
        if (loaded === null) {
          const p = DA.parseRoute(listHash).params;
          fill(p);
          load(p);
        }
        detail(r.event);
        return;
      }
      listHash = hashOf(r.params);
      fill(r.params);
      $("detail").hidden = true;
      selected = null;
      load(r.params, false);
    },
    close() {
      $("detail").hidden = true;
      selected = null;
      if (DA.current && DA.current.event) DA.go(listHash);
    },
    onLive() {
      // Only the first page changes when an event arrives (newest first).
      const p = DA.parseRoute(listHash).params;
      if (!p.get("page") || p.get("page") === "1") {
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(() => load(p, true), 250);
      }
    },
  };

  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    loaded = null;
    DA.go(hashOf(formParams()));
  });
  $("filters").addEventListener("reset", () => {
    setTimeout(() => { loaded = null; DA.go("#/events"); }, 0);
  });
  function turn(delta) {
    const p = DA.parseRoute(listHash).params;
    const page = Number(p.get("page") || "1") + delta;
    if (page < 1 || page > pages) return;
    if (page === 1) p.delete("page"); else p.set("page", String(page));
    DA.go(hashOf(p));
  }
  $("prev").addEventListener("click", () => turn(-1));
  $("next").addEventListener("click", () => turn(1));
  $("d-close").addEventListener("click", () => DA.views.events.close());
})();
