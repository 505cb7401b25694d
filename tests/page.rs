//! The web page's views (issue 17) and the two endpoints they count with: `/api/facets` and
//! `/api/activity` give what counting the export gives on the same data; headless Chromium
//! drives the events list with its filter choices, folded commands, the app page, the activity
//! chart, deep links, the keyboard, a phone-wide window. The releases view is checked against
//! the releases API only when this build answers it; otherwise its "not available" state.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::util::serve::{start, Driver, Server};
use crate::util::{self, TestEnv};

/// The demo history with some deploys failed (no release number, as the writer gives them).
fn fixture() -> TestEnv {
    let env = TestEnv::new();
    let mut events: Vec<Value> = String::from_utf8(util::demo_jsonl(1500, 20))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut n = 0;
    for e in &mut events {
        if e["category"] == "deploy" && e["action"] == "finish" {
            n += 1;
            if n % 6 == 0 {
                e["status"] = json!("failed");
                e["classification"] = json!("deploy_failed");
                e["message"] = json!("deploy failed: exit code 1");
                e["meta"].as_object_mut().unwrap().remove("release");
            }
        }
    }
    // Markup in the data stays text: the newest command says so.
    let last = events
        .iter_mut()
        .rev()
        .find(|e| e["category"] == "command" && e["correlation_id"].is_null())
        .unwrap();
    last["message"] = json!("dokku run <img src=x id=pwned>");
    let mut out = Vec::new();
    for e in &events {
        out.extend_from_slice(e.to_string().as_bytes());
        out.push(b'\n');
    }
    let file = env.file("demo.jsonl", &out);
    env.ok(&["import", file.to_str().unwrap()]);
    env
}

fn count_by(events: &[&Value], field: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in events {
        if let Some(v) = e[field].as_str() {
            *m.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn facet_map(v: &Value) -> BTreeMap<String, u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn api_facets_count_what_the_export_counts() {
    let env = fixture();
    let server = start(&env, &[]);
    // After the start: serve records the token it creates.
    let all = env.export_events();
    for (query, keep) in [
        ("", &(|_: &Value| true) as &dyn Fn(&Value) -> bool),
        ("?app=api", &|e: &Value| e["app"] == "api"),
        ("?app=api&category=deploy", &|e: &Value| {
            e["app"] == "api" && e["category"] == "deploy"
        }),
        ("?status=failed&page=2&per_page=10", &|e: &Value| {
            e["status"] == "failed"
        }),
    ] {
        let want: Vec<&Value> = all.iter().filter(|e| keep(e)).collect();
        let got = server.ok_json(&format!("/api/facets{query}"));
        assert_eq!(got["total"].as_u64(), Some(want.len() as u64), "{query}");
        for (facet, field) in [
            ("apps", "app"),
            ("categories", "category"),
            ("actors", "actor_label"),
            ("statuses", "status"),
        ] {
            assert_eq!(
                facet_map(&got[facet]),
                count_by(&want, field),
                "{facet} {query}"
            );
        }
        // Most frequent first.
        let counts: Vec<u64> = got["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["count"].as_u64().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
        // The same total as the list.
        let list = server.ok_json(&format!("/api/events{query}"));
        assert_eq!(list["total"], got["total"], "{query}");
    }
    // Full text too.
    let got = server.ok_json("/api/facets?q=RAILS_ENV");
    let list = server.ok_json("/api/events?q=RAILS_ENV");
    assert_eq!(got["total"], list["total"]);
    assert!(got["total"].as_u64().unwrap() > 0);
    // Same checks as /api/events: unknown parameters, bad values, the token.
    assert_eq!(server.get("/api/facets?nope=1").status, 400);
    assert_eq!(server.get("/api/facets?since=yesterday").status, 400);
    let anon = crate::util::serve::get_with(server.port, "/api/facets", &[]);
    assert_eq!(anon.status, 401);
}

#[test]
fn api_activity_counts_each_day_as_the_export_does() {
    let env = fixture();
    let server = start(&env, &[]);
    // After the start: serve records the token it creates.
    let all = env.export_events();
    for (query, app) in [("", None), ("&app=api", Some("api"))] {
        let got = server.ok_json(&format!("/api/activity?days=30{query}"));
        let days = got["days"].as_array().unwrap();
        assert_eq!(days.len(), 30);
        // DOKKU_AUDIT_NOW is 2026-04-08T20:00:00Z: today is the last day.
        assert_eq!(days[29]["day"], "2026-04-08");
        assert_eq!(days[0]["day"], "2026-03-10");
        let mut want: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for e in &all {
            if app.is_some_and(|a| e["app"] != a) {
                continue;
            }
            let day = e["ts"].as_str().unwrap()[..10].to_string();
            let w = want.entry(day).or_default();
            w.0 += 1;
            if e["category"] == "deploy" && e["action"] == "finish" {
                w.1 += 1;
                if e["status"] != "success" {
                    w.2 += 1;
                }
            }
        }
        let mut failed_days = 0;
        for d in days {
            let w = want
                .get(d["day"].as_str().unwrap())
                .copied()
                .unwrap_or_default();
            let g = (
                d["events"].as_u64().unwrap(),
                d["deploys"].as_u64().unwrap(),
                d["failed"].as_u64().unwrap(),
            );
            assert_eq!(g, w, "{d}");
            failed_days += usize::from(g.2 > 0);
        }
        assert!(failed_days > 0, "the fixture has failed deploys");
        // Every event is in the window.
        let total: u64 = days.iter().map(|d| d["events"].as_u64().unwrap()).sum();
        assert_eq!(total, want.values().map(|w| w.0).sum::<u64>());
    }
    let short = server.ok_json("/api/activity?days=1");
    assert_eq!(short["days"].as_array().unwrap().len(), 1);
    for bad in ["days=0", "days=367", "days=x", "nope=1", "days=1&days=2"] {
        assert_eq!(
            server.get(&format!("/api/activity?{bad}")).status,
            400,
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The page in headless Chromium.

fn open(driver: &Driver, server: &Server, route: &str) {
    // The token goes in the fragment first (kept in sessionStorage), then the route.
    // A whole load each time (from another document, not a fragment change).
    driver.call("POST", "/url", Some(json!({"url": "about:blank"})));
    let url = format!("http://127.0.0.1:{}/#token={}", server.port, server.token);
    driver.call("POST", "/url", Some(json!({"url": url})));
    driver.wait_for(
        "the first page",
        "return document.querySelectorAll('#events tbody tr').length > 0;",
    );
    driver.script(&format!("location.hash = {};", json!(route)));
}

fn keys(driver: &Driver, keys: &[&str]) {
    let mut actions = Vec::new();
    for k in keys {
        actions.push(json!({"type": "keyDown", "value": k}));
        actions.push(json!({"type": "keyUp", "value": k}));
    }
    driver.call(
        "POST",
        "/actions",
        Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
    );
}

const FACET_COUNTS: &str = "const out = {}; for (const b of document.querySelectorAll('#facets .facet[data-param=\"app\"] button.choice')) out[b.dataset.value] = Number(b.querySelector('.count').textContent); return Object.keys(out).length ? out : null;";

#[test]
fn browser_page_facets_filter_the_list_and_commands_fold() {
    let env = fixture();
    let server = start(&env, &[]);
    let driver = Driver::start();
    open(&driver, &server, "#/events");
    let apps = driver.wait_for("the app choices", FACET_COUNTS);
    let api_count = apps["api"].as_u64().unwrap();
    let total = server.ok_json("/api/events")["total"].as_u64().unwrap();
    assert!(api_count > 0 && api_count < total);
    // Click the `api` choice: the route, the list and the counts follow.
    driver.click("#facets .facet[data-param=\"app\"] button.choice[data-value=\"api\"]");
    let summary = driver.wait_for(
        "the filtered list",
        &format!(
            "const s = document.getElementById('summary').textContent; return s.startsWith('{api_count} matching') ? s : null;"
        ),
    );
    assert!(
        summary.as_str().unwrap().contains("(showing 1–50)"),
        "{summary}"
    );
    assert_eq!(
        driver.script("return location.hash;"),
        json!("#/events?app=api")
    );
    let after = driver.wait_for(
        "the counts of the filtered list",
        "const b = document.querySelectorAll('#facets .facet[data-param=\"app\"] button.choice'); return b.length === 1 && b[0].classList.contains('active') ? b[0].textContent : null;",
    );
    assert_eq!(after, json!(format!("api{api_count}")));
    let categories: u64 = driver
        .script("return Array.from(document.querySelectorAll('#facets .facet[data-param=\"category\"] .count')).map(c => Number(c.textContent));")
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(categories, api_count);
    let apps_shown = driver.script(
        "return Array.from(document.querySelectorAll('#events tbody tr')).every(r => r.cells[2].textContent === 'api');",
    );
    assert_eq!(apps_shown, json!(true));
    // Clicking it again removes the filter.
    driver.click("#facets .facet[data-param=\"app\"] button.choice.active");
    driver.wait_for(
        "the whole list again",
        &format!(
            "return document.getElementById('summary').textContent.startsWith('{total} matching');"
        ),
    );

    // Folded commands: a group row with its other events hidden under it, until unfolded.
    open(&driver, &server, "#/events?per_page=200");
    driver.wait_for(
        "the page of 200",
        "return document.querySelectorAll('#events tbody tr').length === 200;",
    );
    let group = driver.wait_for(
        "a folded command",
        "const g = document.querySelector('#events tbody tr.group'); if (!g) return null; const kids = Array.from(document.querySelectorAll('#events tbody tr.child')).filter(r => r.dataset.group === g.dataset.group); return [g.dataset.group, kids.length, kids.every(k => k.hidden), g.nextElementSibling === kids[0]];",
    );
    assert!(group[1].as_u64().unwrap() >= 1, "{group}");
    assert_eq!(group[2], json!(true), "children start folded: {group}");
    assert_eq!(
        group[3],
        json!(true),
        "children sit under their command: {group}"
    );
    driver.click("#events tbody tr.group button.fold");
    let unfolded = driver.script(&format!(
        "return Array.from(document.querySelectorAll('#events tbody tr.child')).filter(r => r.dataset.group === {}).every(k => !k.hidden);",
        group[0]
    ));
    assert_eq!(unfolded, json!(true));
    // Every group's events share its correlation id in the API answer.
    let corr = group[0].as_str().unwrap();
    let api = server.ok_json("/api/events?per_page=200");
    let members: Vec<&Value> = api["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["correlation_id"] == corr)
        .collect();
    assert_eq!(members.len() as u64, group[1].as_u64().unwrap() + 1);
    // Relative times, the exact UTC time on hover.
    let time = driver.script(
        "const c = document.querySelector('#events tbody tr td.time'); return [c.textContent, c.title];",
    );
    assert!(time[0].as_str().unwrap().ends_with(" ago"), "{time}");
    assert!(time[1].as_str().unwrap().ends_with(" UTC"), "{time}");
    // Markup in the data is shown as text, never parsed.
    let markup = driver.script(
        "return [document.getElementById('pwned') === null, Array.from(document.querySelectorAll('#events td.message')).some(td => td.textContent.includes('<img src=x id=pwned>'))];",
    );
    assert_eq!(markup, json!([true, true]));
    // Nothing was fetched from another origin.
    let foreign = driver.script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin + '/'));",
    );
    assert_eq!(foreign, json!([]));
}

#[test]
fn browser_page_app_view_chart_releases_and_deep_links() {
    let env = fixture();
    let server = start(&env, &[]);
    // After the start: serve records the token it creates.
    let all = env.export_events();
    let driver = Driver::start();
    open(&driver, &server, "#/apps/api");
    let title = driver.wait_for(
        "the app page",
        "const v = document.getElementById('app-view'); return !v.hidden && document.querySelectorAll('#app-events tbody tr').length ? document.getElementById('app-title').textContent : null;",
    );
    assert_eq!(title, json!("api"));
    // Config keys in effect, replayed from the config events (set adds, unset removes).
    let mut keys = std::collections::BTreeSet::new();
    for e in all
        .iter()
        .filter(|e| e["app"] == "api" && e["category"] == "config")
    {
        for k in e["meta"]["keys"].as_array().unwrap() {
            let k = k.as_str().unwrap().to_string();
            if e["action"] == "unset" {
                keys.remove(&k);
            } else {
                keys.insert(k);
            }
        }
    }
    let shown = driver.wait_for(
        "the config keys",
        "const k = Array.from(document.querySelectorAll('#app-keys li:not(.none)')).map(l => l.textContent); return k.length ? k : null;",
    );
    assert_eq!(shown, json!(keys.into_iter().collect::<Vec<_>>()));
    let latest_domains = all
        .iter()
        .rev()
        .find(|e| e["app"] == "api" && e["category"] == "domains")
        .map(|e| e["meta"]["domains_after"].clone())
        .unwrap();
    let domains = driver.wait_for(
        "the domains",
        "const k = Array.from(document.querySelectorAll('#app-domains li:not(.none)')).map(l => l.textContent); return k.length ? k : null;",
    );
    assert_eq!(domains, latest_domains);
    // The chart: one mark per day, failed deploys marked on the days the API says.
    let activity = server.ok_json("/api/activity?days=30&app=api");
    let failed_days: Vec<Value> = activity["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["failed"].as_u64().unwrap() > 0)
        .map(|d| d["day"].clone())
        .collect();
    assert!(!failed_days.is_empty());
    let chart = driver.wait_for(
        "the chart",
        "const s = document.querySelector('#app-chart svg.chart'); return s ? [s.querySelectorAll('g.day').length, Array.from(s.querySelectorAll('g.day')).filter(g => g.querySelector('.failed-mark')).map(g => g.dataset.day)] : null;",
    );
    assert_eq!(chart, json!([30, failed_days]));
    // A reload keeps the view.
    driver.call("POST", "/refresh", Some(json!({})));
    driver.wait_for(
        "the app page after a reload",
        "return !document.getElementById('app-view').hidden && document.getElementById('app-title').textContent === 'api' && document.querySelectorAll('#app-chart g.day').length === 30;",
    );
    // An event deep link, reloaded.
    let id = all.iter().rev().find(|e| e["app"] == "web").unwrap()["id"].clone();
    driver.script(&format!("location.hash = '#/events/{id}';"));
    driver.call("POST", "/refresh", Some(json!({})));
    driver.wait_for(
        "the event after a reload",
        &format!("return !document.getElementById('detail').hidden && document.getElementById('d-id').textContent === '#{id}';"),
    );
    // A filtered list, reloaded: the form and the list keep the filter.
    driver.script("location.hash = '#/events?app=web&category=config';");
    driver.call("POST", "/refresh", Some(json!({})));
    let want = server.ok_json("/api/events?app=web&category=config")["total"].clone();
    driver.wait_for(
        "the filtered list after a reload",
        &format!("return document.getElementById('f-app').value === 'web' && document.getElementById('summary').textContent.startsWith('{want} matching');"),
    );

    // Releases: the real view when this build answers the releases API, else its state.
    driver.script("location.hash = '#/apps/api/releases';");
    let releases = server.get("/api/apps/api/releases?limit=100");
    if releases.status == 200 {
        let n = releases.json()["releases"].as_array().unwrap().len();
        let rows = driver.wait_for(
            "the releases",
            &format!("const r = document.querySelectorAll('#releases tbody tr'); return r.length === {n} ? r.length : null;"),
        );
        assert_eq!(rows, json!(n));
        if n > 0 {
            driver.click("#releases tbody tr");
            driver.wait_for(
                "a release",
                "return !document.getElementById('release-detail').hidden && location.hash.startsWith('#/apps/api/releases/');",
            );
        }
    } else {
        assert_eq!(releases.status, 404);
        let state = driver.wait_for(
            "the releases state",
            "const s = document.getElementById('rel-state').textContent; return s.startsWith('releases not available') ? s : null;",
        );
        assert!(state.as_str().unwrap().contains("not available"), "{state}");
    }
}

#[test]
fn browser_page_keyboard_and_a_phone_wide_window() {
    let env = fixture();
    let server = start(&env, &[]);
    let driver = Driver::start();
    driver.call(
        "POST",
        "/window/rect",
        Some(json!({"width": 375, "height": 812})),
    );
    open(&driver, &server, "#/events");
    driver.wait_for(
        "the list",
        "return document.querySelectorAll('#events tbody tr').length === 50 && document.querySelectorAll('#facets button.choice').length > 0;",
    );
    assert_eq!(driver.script("return window.innerWidth;"), json!(375));
    let fits = "const s = document.scrollingElement; return [s.scrollWidth, window.innerWidth];";
    let w = driver.script(fits);
    assert!(w[0].as_u64() <= w[1].as_u64(), "horizontal scroll: {w}");
    // j j k: the cursor on the second visible row; Enter opens its event.
    keys(&driver, &["j", "j", "j", "k"]);
    let want = driver.script(
        "const rows = Array.from(document.querySelectorAll('#events tbody tr')).filter(r => !r.hidden); return [rows[1].dataset.id, rows[1].classList.contains('cursor')];",
    );
    assert_eq!(want[1], json!(true), "{want}");
    keys(&driver, &["\u{E007}"]);
    driver.wait_for(
        "the event opened with Enter",
        &format!("return location.hash === '#/events/{}' && !document.getElementById('detail').hidden && document.getElementById('d-id').textContent === '#{}';", want[0].as_str().unwrap(), want[0].as_str().unwrap()),
    );
    let w = driver.script(fits);
    assert!(w[0].as_u64() <= w[1].as_u64(), "horizontal scroll: {w}");
    // Esc closes it, back to the list.
    keys(&driver, &["\u{E00C}"]);
    driver.wait_for(
        "the list again",
        "return location.hash === '#/events' && document.getElementById('detail').hidden;",
    );
    // `/` focuses the search.
    keys(&driver, &["/"]);
    assert_eq!(
        driver.script("return document.activeElement.id;"),
        json!("f-q")
    );
    // The app page fits too.
    driver.script("location.hash = '#/apps/web';");
    driver.wait_for(
        "the app page",
        "return document.querySelectorAll('#app-events tbody tr').length > 0 && document.querySelector('#app-chart svg.chart');",
    );
    let w = driver.script(fits);
    assert!(w[0].as_u64() <= w[1].as_u64(), "horizontal scroll: {w}");
}

/// Writes the screenshots in docs/img (run by hand: `cargo test --test tests page::screenshots
/// -- --ignored`).
#[test]
#[ignore]
fn screenshots() {
    let env = fixture();
    let server = start(&env, &[]);
    let driver = Driver::start_with(&["--window-size=1280,860".into()]);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
    std::fs::create_dir_all(&out).unwrap();
    for (route, name, ready) in [
        (
            "#/events",
            "page-events.png",
            "return document.querySelectorAll('#facets button.choice').length && document.querySelector('#chart svg.chart');",
        ),
        (
            "#/apps/api",
            "page-app.png",
            "return document.querySelectorAll('#app-keys li').length && document.querySelector('#app-chart svg.chart') && document.querySelectorAll('#app-events tbody tr').length;",
        ),
    ] {
        open(&driver, &server, route);
        driver.wait_for(name, ready);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let png = driver.call("GET", "/screenshot", None);
        let bytes = base64_decode(png.as_str().unwrap());
        std::fs::write(out.join(name), bytes).unwrap();
    }
}

/// Standard base64 (WebDriver's screenshots), without a crate for it.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|c| *c != b'=').collect();
        let mut n = 0u32;
        for (i, c) in data.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..data.len()]);
    }
    out
}
