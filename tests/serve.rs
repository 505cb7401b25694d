//! `serve` end to end: the binary on a loopback port against a temporary data directory. Every
//! `/api/events` parameter gives what the CLI gives for the same filters, pages walk the whole
//! answer, auth (missing, wrong, right, rotated, never a cookie; no `--no-auth` off loopback), bad input
//! is a 4xx JSON error and the server keeps serving, the stream delivers what a trigger appends
//! and resumes with `Last-Event-ID` without loss or duplicates, and headless Chromium loads the
//! page, applies a filter and sees the matching events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use crate::util;
use crate::util::serve::{
    api_ids, cli_ids, data_env, get_with, open_stream, raw, read_events, start, trigger, Driver,
    Server,
};

#[test]
fn every_parameter_matches_the_cli_and_pages_walk_everything() {
    let env = data_env();
    let server = start(&env, &[]);
    let first = server.ok_json("/api/events?per_page=1");
    let everything = cli_ids(&env, &["recent"]);
    assert!(everything.len() >= 1500);
    assert_eq!(first["total"].as_u64(), Some(everything.len() as u64));
    assert_eq!(first["events"][0]["id"].as_u64(), Some(everything[0]));
    assert_eq!(first["page"].as_u64(), Some(1));
    // Newest first, full §5 events in the canonical field order.
    let ev = &first["events"][0];
    let keys: Vec<&str> = ev.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    // The contract's field order (the CSV header is that order).
    assert_eq!(keys, dokku_audit::output::csv::HEADER);
    let cases: &[(&str, &[&str])] = &[
        ("app=api", &["recent", "--app", "api"]),
        ("category=config", &["recent", "--category", "config"]),
        ("action=set", &["recent", "--action", "set"]),
        ("action=cron-job*", &["recent", "--action", "cron-job*"]),
        (
            "actor=ssh-key%3Aalice",
            &["recent", "--actor", "ssh-key:alice"],
        ),
        ("actor=alice", &["recent", "--actor", "alice"]),
        ("status=failed", &["recent", "--status", "failed"]),
        (
            "classification=source_deploy",
            &["recent", "--classification", "source_deploy"],
        ),
        ("since=3d", &["recent", "--since", "3d"]),
        ("until=2026-04-01", &["recent", "--until", "2026-04-01"]),
        (
            "since=2026-03-25T00:00:00Z&until=2026-04-02T12:00:00%2B02:00",
            &[
                "recent",
                "--since",
                "2026-03-25T00:00:00Z",
                "--until",
                "2026-04-02T12:00:00+02:00",
            ],
        ),
        (
            "app=api&category=deploy&status=success&classification=release_only",
            &[
                "recent",
                "--app",
                "api",
                "--category",
                "deploy",
                "--status",
                "success",
                "--classification",
                "release_only",
            ],
        ),
        ("q=deploy", &["search", "--query", "deploy"]),
        (
            "q=%22config+keys%22",
            &["search", "--query", "\"config keys\""],
        ),
        (
            "q=RAILS_ENV+OR+TZ&app=api",
            &["search", "--query", "RAILS_ENV OR TZ", "--app", "api"],
        ),
        (
            "q=deploy&category=deploy&since=10d",
            &[
                "search",
                "--query",
                "deploy",
                "--category",
                "deploy",
                "--since",
                "10d",
            ],
        ),
        ("app=no-such-app", &["recent", "--app", "no-such-app"]),
        ("app=&category=&q=", &["recent"]),
    ];
    for (query, cli) in cases {
        let want = cli_ids(&env, cli);
        let (got, total) = api_ids(&server, query, 97);
        assert_eq!(got, want, "{query}");
        assert_eq!(total as usize, want.len(), "{query}");
        let mut sorted = got.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "{query}: duplicates across pages");
    }
    // Small pages and the maximum page size walk the same answer.
    let want = cli_ids(&env, &["recent", "--category", "config"]);
    assert!(want.len() > 20);
    assert_eq!(api_ids(&server, "category=config", 7).0, want);
    assert_eq!(api_ids(&server, "category=config", 200).0, want);
    // A page past the end is empty, not an error; the links say where the neighbours are.
    let past = server.ok_json("/api/events?category=config&page=999&per_page=10");
    assert_eq!(past["events"].as_array().unwrap().len(), 0);
    assert!(past["next"].is_null());
    let mid = server.get("/api/events?app=api&page=2&per_page=5");
    let link = mid.header("Link").unwrap().to_string();
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"prev\""),
        "{link}"
    );
    assert!(
        link.contains("page=3") && link.contains("app=api"),
        "{link}"
    );
    assert_eq!(mid.json()["prev"], "/api/events?app=api&per_page=5&page=1");
    // One event, with its before → after changes.
    let config_set = cli_ids(&env, &["recent", "--category", "config", "--action", "set"]);
    let one = server.ok_json(&format!("/api/events/{}", config_set[0]));
    assert_eq!(one["event"]["id"].as_u64(), Some(config_set[0]));
    let changes = one["changes"].as_array().unwrap();
    assert!(!changes.is_empty(), "{one}");
    assert!(changes[0]["field"].as_str().unwrap().starts_with("config "));
    assert!(changes[0]["after"].is_string());
    let domains = cli_ids(&env, &["recent", "--category", "domains"]);
    if let Some(id) = domains.first() {
        let d = server.ok_json(&format!("/api/events/{id}"));
        assert!(
            d["changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["field"] == "domains"),
            "{d}"
        );
    }
    // The page and its assets: embedded, no external references.
    let page = get_with(server.port, "/", &[]);
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<table id=\"events\""));
    assert!(!html.contains("http://") && !html.contains("https://"));
    for asset in ["/app.js", "/app.css"] {
        let r = get_with(server.port, asset, &[]);
        assert_eq!(r.status, 200, "{asset}");
        assert!(!String::from_utf8_lossy(&r.body).contains("https://"));
    }
    let health = get_with(server.port, "/api/health", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}

#[test]
fn auth_missing_wrong_right_rotated_and_no_auth_only_on_loopback() {
    let env = data_env();
    let server = start(&env, &[]);
    assert_eq!(server.token.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.data.join("serve-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for path in ["/api/events", "/api/events/1", "/api/events/stream"] {
        let missing = get_with(server.port, path, &[]);
        assert_eq!(missing.status, 401, "{path}");
        assert_eq!(missing.json()["error"]["status"], 401);
        assert!(missing.header("WWW-Authenticate").is_some());
        let wrong = get_with(server.port, path, &[("Authorization", "Bearer nope")]);
        assert_eq!(wrong.status, 401, "{path}");
        let mut almost = server.token.clone();
        almost.pop();
        almost.push('x');
        let auth = format!("Bearer {almost}");
        assert_eq!(
            get_with(server.port, path, &[("Authorization", &auth)]).status,
            401
        );
        let basic = format!("Basic {}", server.token);
        assert_eq!(
            get_with(server.port, path, &[("Authorization", &basic)]).status,
            401
        );
    }
    assert_eq!(server.get("/api/events").status, 200);
    // The token is never taken from a cookie (a browser sends cookies to every port of a
    // host): only the header counts (tests/security_serve.rs has the rest).
    let cookie = format!("other=1; dokku_audit_token={}", server.token);
    assert_eq!(
        get_with(server.port, "/api/events", &[("Cookie", &cookie)]).status,
        401
    );
    // Health and the page need no token (they carry no audit data).
    assert_eq!(get_with(server.port, "/api/health", &[]).status, 200);
    assert_eq!(get_with(server.port, "/", &[]).status, 200);
    // Rotation takes effect at once, without a restart.
    let out = env.ok(&["serve", "--rotate-token"]);
    let new_token = out.trim().to_string();
    assert_eq!(new_token.len(), 64);
    assert_ne!(new_token, server.token);
    assert_eq!(server.get("/api/events").status, 401);
    let auth = format!("Bearer {new_token}");
    assert_eq!(
        get_with(server.port, "/api/events", &[("Authorization", &auth)]).status,
        200
    );
    drop(server);

    // --no-auth: fine on loopback, refused anywhere else.
    let open = start(&env, &["--no-auth"]);
    assert_eq!(get_with(open.port, "/api/events", &[]).status, 200);
    drop(open);
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = env.run(&["serve", "--listen", addr, "--no-auth"]);
        assert!(!out.status.success(), "{addr}");
        assert!(
            util::stderr(&out).contains("without a token"),
            "{}",
            util::stderr(&out)
        );
    }
    // A non-loopback address with the token: served, and the token is required.
    let mut child = env
        .command(&["serve", "--listen", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .split("0.0.0.0:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let public = Server {
        child,
        port,
        token: new_token,
    };
    assert_eq!(get_with(public.port, "/api/events", &[]).status, 401);
    assert_eq!(public.get("/api/events").status, 200);
    // Bad --listen values are usage errors.
    for bad in ["nope", "127.0.0.1", "127.0.0.1:99999"] {
        let out = env.run(&["serve", "--listen", bad]);
        assert!(!out.status.success(), "{bad}");
    }
}

/// A malformed search is the client's fault (400); an index the server cannot read is the
/// server's (500, logged on stderr), never reported as the query's fault.
///
/// The index is damaged before the server starts: a running server keeps its index files
/// mapped, and a file truncated in place under a mapping faults the process (no dokku-audit
/// command does that: a rebuild writes new files and unlinks the old ones, which stay readable).
#[test]
fn an_unreadable_index_is_a_logged_500_and_a_bad_query_a_400() {
    let env = data_env();
    // Build the index with a query, then damage its data files, not its metadata: nothing to
    // catch up, nothing rebuilt.
    env.ok(&["recent", "--limit", "1"]);
    for e in std::fs::read_dir(env.data.join("index")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if [".fast", ".idx", ".term"].iter().any(|x| name.ends_with(x)) {
            std::fs::write(e.path(), b"").unwrap();
        }
    }
    let mut child = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let token = std::fs::read_to_string(env.data.join("serve-token")).unwrap();
    let mut server = Server {
        child,
        port,
        token: token.trim().to_string(),
    };
    let auth = format!("Bearer {}", server.token);
    let get = |path: &str| get_with(port, path, &[("Authorization", &auth)]);
    assert_eq!(get("/api/events?q=%22unclosed").status, 400);
    let r = get("/api/events?q=deploy");
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("search index"), "{msg}");
    assert!(!msg.contains("invalid query"), "{msg}");
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut logged = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logged)
        .unwrap();
    assert!(
        logged.contains("dokku-audit serve: error: search index"),
        "{logged}"
    );
}

#[test]
fn bad_input_is_a_4xx_json_error_and_the_server_keeps_serving() {
    let env = data_env();
    let server = start(&env, &[]);
    let auth = format!("Bearer {}", server.token);
    let check = |path: &str, want: u16| {
        let r = get_with(server.port, path, &[("Authorization", &auth)]);
        assert_eq!(
            r.status,
            want,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["error"]["status"].as_u64(), Some(want as u64), "{path}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(!msg.is_empty());
        assert!(!msg.contains(&server.token));
        msg.to_string()
    };
    for (q, name) in [
        ("since=yesterday", "since"),
        ("until=2026-13-45", "until"),
        ("since=-3d", "since"),
        ("since=99999999999999999999d", "since"),
        ("per_page=0", "per_page"),
        ("per_page=1000", "per_page"),
        ("per_page=201", "per_page"),
        ("per_page=abc", "per_page"),
        ("page=-1", "page"),
        ("page=0", "page"),
        ("page=1.5", "page"),
        ("page=99999999999999999999999999", "page"),
        ("page=1000&per_page=200", "page"),
        ("nope=1", "nope"),
        ("APP=x", "APP"),
        ("app=a&app=b", "app"),
        ("q=%22unclosed", "q"),
        ("q=app%3A", "q"),
        ("q=(((((a", "q"),
        ("app=%ff", "app"),
        ("app=%zz", "percent"),
    ] {
        let msg = check(&format!("/api/events?{q}"), 400);
        assert!(msg.contains(name), "{q}: {msg}");
    }
    // Odd but well-formed values: an answer (200) or a 400, never a 500.
    let long_glob = format!("action={}", "a*%28%5B".repeat(1500));
    let many_or = format!("q={}", "a+OR+".repeat(1500) + "b");
    for q in [
        long_glob.as_str(),
        many_or.as_str(),
        "app=..%2F..%2Fetc%2Fpasswd",
        "actor=%E2%86%92%F0%9F%98%80",
        "action=%00%01%7F",
        "category=%22%3Cscript%3E",
        "q=app%3Aapi+AND+-category%3Aconfig",
        "q=*",
        "since=2026-04-08&until=2026-04-01",
    ] {
        let r = get_with(
            server.port,
            &format!("/api/events?{q}"),
            &[("Authorization", &auth)],
        );
        assert!(
            r.status == 200 || r.status == 400,
            "{}: {}",
            &q[..q.len().min(40)],
            r.status
        );
        r.json();
    }
    // Deeply nested search queries are refused, not a crash.
    let deep = format!("/api/events?q={}a{}", "(".repeat(3000), ")".repeat(3000));
    check(&deep, 400);
    for id in [
        "abc",
        "-1",
        "0",
        "1.5",
        "99999999999999999999999",
        "1e3",
        "%00",
    ] {
        let msg = check(&format!("/api/events/{id}"), 400);
        assert!(msg.contains("event id"), "{id}: {msg}");
    }
    check("/api/events/999999", 404);
    check("/api/events/1?x=1", 400);
    // Path traversal: nothing but the fixed routes exists; no file is ever read by path.
    for path in [
        "/../../etc/passwd",
        "/api/events/../../etc/passwd",
        "/api/events/..%2f..%2fserve-token",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/../serve-token",
        "/serve-token",
        "/FORMAT",
        "/segments/",
        "/app.js/../serve-token",
        "/api/events/1/../../../serve-token",
        "/api/nope",
    ] {
        let r = get_with(server.port, path, &[("Authorization", &auth)]);
        assert!(r.status == 404 || r.status == 400, "{path}: {}", r.status);
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains(&server.token) && !body.contains("root:"),
            "{path}"
        );
        r.json();
    }
    // Malformed requests.
    let huge = format!(
        "GET /api/events?q={} HTTP/1.1\r\nAuthorization: {auth}\r\n\r\n",
        "a".repeat(40_000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (huge.into_bytes(), 431),
        (
            format!(
                "GET / HTTP/1.1\r\n{}\r\n",
                (0..200)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            431,
        ),
        (
            b"POST /api/events HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec(),
            405,
        ),
        (b"DELETE /api/events/1 HTTP/1.1\r\n\r\n".to_vec(), 405),
        (
            b"GET /api/events HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            400,
        ),
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), 505),
        (b"GET http://evil/ HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nbad header\r\n\r\n".to_vec(), 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n".to_vec(), 400),
    ];
    for (req, want) in cases {
        let r = raw(server.port, &req);
        assert_eq!(
            r.status,
            want,
            "{:?}",
            String::from_utf8_lossy(&req[..req.len().min(60)])
        );
        assert_eq!(r.json()["error"]["status"].as_u64(), Some(want as u64));
    }
    // A client that connects and sends nothing, or half a request, does not hold the server.
    let idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    half.write_all(b"GET /api/health HTTP/1.1\r\nHost: x")
        .unwrap();
    // Still serving, after all of it.
    assert_eq!(get_with(server.port, "/api/health", &[]).status, 200);
    assert_eq!(server.get("/api/events?per_page=1").status, 200);
    drop((idle, half));
    // HEAD: headers only.
    let head = raw(
        server.port,
        format!("HEAD /api/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(head.status, 200);
    // Keep-alive: two requests on one connection.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(
        b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\nGET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
}

#[test]
fn stream_delivers_appended_events_and_resumes_without_loss_or_duplicates() {
    let env = data_env();
    let server = start(&env, &[]);
    let before = env.export_events().len() as u64;
    let mut stream = open_stream(&server, None);
    // Nothing old is replayed without Last-Event-ID.
    assert!(read_events(&mut stream, 1, Duration::from_millis(600)).is_empty());
    trigger(&env, "streamed", "FIRST_KEY");
    let got = read_events(&mut stream, 1, Duration::from_secs(10));
    assert_eq!(
        got.len(),
        1,
        "the appended event arrives on the open stream"
    );
    let (first_id, ev) = &got[0];
    assert_eq!(*first_id, before + 1);
    assert_eq!(ev["app"], "streamed");
    assert_eq!(ev["category"], "config");
    assert!(ev["message"].as_str().unwrap().contains("FIRST_KEY"));
    // Disconnect; events land while no one listens.
    drop(stream);
    for i in 0..5 {
        trigger(&env, "streamed", &format!("KEY_{i}"));
    }
    // Resume: exactly the five, in order, then nothing more.
    let mut resumed = open_stream(&server, Some(*first_id));
    let got = read_events(&mut resumed, 6, Duration::from_secs(3));
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (first_id + 1..=first_id + 5).collect::<Vec<_>>());
    // Live again on the resumed stream, while events keep landing during a rotation-free run.
    trigger(&env, "streamed", "LAST_KEY");
    let got = read_events(&mut resumed, 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, first_id + 6);
    // The parameter form of the resume point, for clients that cannot set headers.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.write_all(
        format!(
            "GET /api/events/stream?last_event_id={} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
            first_id + 4,
            server.token
        )
        .as_bytes(),
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let got = read_events(&mut r, 3, Duration::from_secs(3));
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![first_id + 5, first_id + 6]);
    // A bad resume point is a 400.
    let bad = get_with(
        server.port,
        "/api/events/stream",
        &[
            ("Authorization", &format!("Bearer {}", server.token)),
            ("Last-Event-ID", "abc"),
        ],
    );
    assert_eq!(bad.status, 400);
    bad.json();
    // The list sees the new events at once (they are in the not-yet-indexed tail or indexed).
    let v = server.ok_json("/api/events?app=streamed");
    assert_eq!(v["total"].as_u64(), Some(7));
}

const ROW_IDS: &str = "return Array.from(document.querySelectorAll('#events tbody tr')).map(r => Number(r.dataset.id));";

#[test]
fn browser_loads_the_page_applies_a_filter_and_sees_live_events() {
    let env = data_env();
    let server = start(&env, &[]);
    let driver = Driver::start();
    // The token is handed over in the fragment, as `serve` users do.
    let url = format!("http://127.0.0.1:{}/#token={}", server.port, server.token);
    driver.call("POST", "/url", Some(serde_json::json!({"url": url})));
    driver.wait_for(
        "the first page of events",
        "return document.querySelectorAll('#events tbody tr').length === 50;",
    );
    // The fragment is gone from the address bar once read.
    let href = driver.script("return location.href;");
    assert!(!href.as_str().unwrap().contains("token"), "{href}");
    // The same events; the events of one command sit under its row (folded), so compared as
    // sets.
    let mut all: Vec<u64> = serde_json::from_value(driver.script(ROW_IDS)).unwrap();
    let mut want_all: Vec<u64> = cli_ids(&env, &["recent"]).into_iter().take(50).collect();
    all.sort_unstable();
    want_all.sort_unstable();
    assert_eq!(all, want_all);

    // Apply a filter: app + category.
    driver.type_into("#f-app", "api");
    driver.type_into("#f-category", "config");
    driver.click("#apply");
    let want = cli_ids(&env, &["recent", "--app", "api", "--category", "config"]);
    assert!(!want.is_empty());
    let shown: Vec<u64> = want.iter().take(50).copied().collect();
    let js = format!(
        "const ids = Array.from(document.querySelectorAll('#events tbody tr')).map(r => Number(r.dataset.id)); return JSON.stringify(ids) === '{}' ? ids : null;",
        serde_json::to_string(&shown).unwrap()
    );
    driver.wait_for("the filtered events", &js);
    let cells = driver.script(
        "return Array.from(document.querySelectorAll('#events tbody tr')).map(r => [r.cells[2].textContent, r.cells[4].textContent]);",
    );
    for c in cells.as_array().unwrap() {
        assert_eq!(c, &serde_json::json!(["api", "config"]));
    }
    let summary = driver.script("return document.getElementById('summary').textContent;");
    assert!(
        summary
            .as_str()
            .unwrap()
            .starts_with(&format!("{} matching", want.len())),
        "{summary}"
    );

    // A full-text filter as well.
    driver.type_into("#f-q", "RAILS_ENV");
    driver.click("#apply");
    let want_q = cli_ids(
        &env,
        &[
            "search",
            "--query",
            "RAILS_ENV",
            "--app",
            "api",
            "--category",
            "config",
        ],
    );
    let js = format!(
        "const ids = Array.from(document.querySelectorAll('#events tbody tr')).map(r => Number(r.dataset.id)); return JSON.stringify(ids) === '{}' ? ids : null;",
        serde_json::to_string(&want_q.iter().take(50).collect::<Vec<_>>()).unwrap()
    );
    driver.wait_for("the searched events", &js);

    // The detail view: before → after changes of a config change.
    driver.click("#events tbody tr");
    let changes = driver.wait_for(
        "the detail view",
        "const d = document.getElementById('detail'); const li = document.querySelectorAll('#d-changes li'); return !d.hidden && li.length ? Array.from(li).map(l => l.textContent) : null;",
    );
    let first = changes[0].as_str().unwrap();
    assert!(
        first.starts_with("config ") && first.contains(" → "),
        "{first}"
    );

    // Live: an event appended by a trigger appears without a reload.
    driver.type_into("#f-q", "");
    driver.type_into("#f-category", "");
    driver.type_into("#f-app", "live-app");
    driver.click("#apply");
    driver.wait_for(
        "the empty list",
        "return document.getElementById('summary').textContent === 'no matching events';",
    );
    driver.wait_for(
        "the live stream",
        "return document.getElementById('live').className === 'live on';",
    );
    trigger(&env, "live-app", "LIVE_KEY");
    let rows = driver.wait_for(
        "the live event",
        "const r = document.querySelectorAll('#events tbody tr'); return r.length === 1 ? r[0].textContent : null;",
    );
    assert!(rows.as_str().unwrap().contains("LIVE_KEY"), "{rows}");
    // Bad input shows the API's error, not a broken page.
    driver.type_into("#f-since", "yesterday");
    driver.click("#apply");
    let err = driver.wait_for(
        "the error",
        "const e = document.getElementById('error'); return e.hidden ? null : e.textContent;",
    );
    assert!(err.as_str().unwrap().contains("since"), "{err}");
}
