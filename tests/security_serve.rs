//! `serve` against the attacks of issue 13 (finding 3), black box: the binary on 127.0.0.1 with an
//! ephemeral port. Each test is a reproduction that the server before the fix failed:
//!
//! - DNS rebinding: a request whose `Host` is not this server (421), a cross-origin `Origin` on
//!   the API (403), and in Chromium a page on `http://rebind.test:PORT` (mapped to 127.0.0.1)
//!   that read every event with `--no-auth`;
//! - slowloris: one deadline for a whole request head (408), 4 × `--threads` connections that
//!   trickle a byte a second do not delay `/api/health`, and the per-address connection cap;
//! - request smuggling: `Content-Length: 0` + `Content-Length: 38` with a request as the body
//!   was answered twice; every conflicting or unsupported framing header is a 400 and a close;
//! - the token cookie: the page kept the token in a `path=/api` cookie, which the browser also
//!   sent to every other port's `/api/…`; the server accepted it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::util;
use crate::util::serve::{data_env, get_with, raw, start, Driver};
use serde_json::json;

/// A connection to the server from a chosen loopback source address (127.0.0.2, …), so that
/// an attacker's connections and a monitor's are different peers.
fn connect_from(src: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    bind(&fd, &SocketAddrV4::new(src, 0))?;
    connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    Ok(TcpStream::from(fd))
}

/// Everything the server sends on a connection until it closes it (at most `wait`), and the
/// status of each response in it.
fn all_responses(mut s: TcpStream, wait: Duration) -> (Vec<u16>, String) {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut bytes = Vec::new();
    let closed = s.read_to_end(&mut bytes).is_ok();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(closed, "the server did not close the connection: {text}");
    let statuses = text
        .split('\n')
        .filter_map(|l| l.strip_prefix("HTTP/1.1 "))
        .map(|l| l[..3].parse().unwrap())
        .collect();
    (statuses, text)
}

/// A data directory with no events (the server only needs it to exist).
fn empty_env() -> util::TestEnv {
    let env = util::TestEnv::new();
    std::fs::create_dir_all(&env.data).unwrap();
    env
}

fn send(port: u16, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(bytes).unwrap();
    s
}

#[test]
fn a_host_that_is_not_this_server_is_421() {
    let env = data_env();
    let server = start(&env, &["--no-auth"]);
    let port = server.port;
    for host in [
        format!("rebind.test:{port}"),
        "rebind.test".into(),
        "localhost.attacker.example".into(),
        format!("127.0.0.1.nip.io:{port}"),
        "10.0.0.1".into(),
    ] {
        for path in ["/", "/api/events", "/api/health", "/api/events/1"] {
            let r = raw(
                port,
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 421, "{host} {path}");
            assert_eq!(r.json()["error"]["status"], 421);
            assert!(r.body.len() < 200, "a short body");
        }
    }
    for host in [
        format!("localhost:{port}"),
        "LOCALHOST".into(),
        format!("127.0.0.1:{port}"),
        "127.0.0.1".into(),
        format!("[::1]:{port}"),
    ] {
        let r = raw(
            port,
            format!(
                "GET /api/events?per_page=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 200, "{host}");
    }
    // HTTP/1.1 requires Host; an HTTP/1.0 request without one is meant for this server.
    assert_eq!(raw(port, b"GET /api/health HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(raw(port, b"GET /api/health HTTP/1.0\r\n\r\n").status, 200);
    // Two Host headers are ambiguous: 400.
    let two =
        format!("GET /api/health HTTP/1.1\r\nHost: localhost\r\nHost: rebind.test:{port}\r\n\r\n");
    assert_eq!(raw(port, two.as_bytes()).status, 400);
}

#[test]
fn allow_host_admits_a_reverse_proxy_name() {
    let env = data_env();
    let server = start(
        &env,
        &[
            "--no-auth",
            "--allow-host",
            "audit.example.com",
            "--allow-host",
            "Other.Example.",
        ],
    );
    let status = |host: &str| {
        raw(
            server.port,
            format!("GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .status
    };
    assert_eq!(status("audit.example.com"), 200);
    assert_eq!(status("Audit.Example.COM:443"), 200);
    assert_eq!(status("other.example"), 200);
    assert_eq!(status("localhost"), 200);
    assert_eq!(status("evil.example.com"), 421);
    assert_eq!(status("audit.example.com.evil.com"), 421);
    // The proxy's page origin is the server's own.
    let r = get_with(
        server.port,
        "/api/events?per_page=1",
        &[("Origin", "https://audit.example.com")],
    );
    assert_eq!(r.status, 200);
    for bad in ["a.com:443", "*.example.com", "http://a.com", ""] {
        let out = env.run(&["serve", "--listen", "127.0.0.1:0", "--allow-host", bad]);
        assert!(!out.status.success(), "{bad:?}");
        assert!(
            util::stderr(&out).contains("--allow-host"),
            "{}",
            util::stderr(&out)
        );
    }
}

#[test]
fn cross_origin_api_requests_are_403() {
    let env = data_env();
    let server = start(&env, &["--no-auth"]);
    let port = server.port;
    for origin in [
        format!("http://rebind.test:{port}"),
        "http://evil.example".into(),
        "http://localhost:3000".into(),
        "null".into(),
        format!("ftp://127.0.0.1:{port}"),
    ] {
        for path in [
            "/api/events",
            "/api/events/1",
            "/api/events/stream",
            "/api/health",
        ] {
            let r = get_with(port, path, &[("Origin", &origin)]);
            assert_eq!(r.status, 403, "{origin} {path}");
            assert_eq!(r.json()["error"]["status"], 403);
        }
    }
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let r = get_with(port, "/api/events?per_page=1", &[("Origin", &origin)]);
        assert_eq!(r.status, 200, "{origin}");
    }
    assert_eq!(get_with(port, "/api/events?per_page=1", &[]).status, 200);
}

#[test]
fn a_request_head_has_one_deadline_not_one_per_read() {
    let env = empty_env();
    let server = start(&env, &["--no-auth"]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    let started = Instant::now();
    let head = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa";
    let mut got = Vec::new();
    // One byte about every second (well inside any per-read timeout), for up to 15 s.
    for b in head.iter().cycle() {
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
        let _ = s.write_all(&[*b]);
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "no 408 after {elapsed:?} of a trickled head: {text:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(4) && elapsed < Duration::from_secs(9),
        "{elapsed:?}"
    );
    eprintln!("trickled head answered 408 and closed after {elapsed:?}");
}

/// Latency figures of a run, in milliseconds: (p50, p95, max).
fn figures(ms: &mut [f64]) -> (f64, f64, f64) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), ms[ms.len() - 1])
}

#[test]
fn slow_heads_from_four_times_the_workers_do_not_starve_health() {
    let env = data_env();
    let threads = 16; // the default --threads
    let server = start(&env, &[]);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let attackers = 4 * threads;
    // The attackers: 4 × 16 connections from 127.0.0.2–5 (16 each: under the per-peer cap, so
    // every one is admitted), each sending one byte of a request head about every second, and
    // reconnecting when the server closes it.
    let (ready_tx, ready_rx) = mpsc::channel();
    let attack = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let head = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
            let src = |i: usize| Ipv4Addr::new(127, 0, 0, 2 + (i / threads) as u8);
            let mut conns: Vec<(TcpStream, usize)> = (0..attackers)
                .map(|i| (connect_from(src(i), port).unwrap(), 0))
                .collect();
            ready_tx.send(()).unwrap();
            let (mut sent, mut reconnects) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                for (i, (conn, at)) in conns.iter_mut().enumerate() {
                    let byte = head.get(*at).copied().unwrap_or(b'a');
                    if conn.write_all(&[byte]).is_err() {
                        if let Ok(c) = connect_from(src(i), port) {
                            (*conn, *at) = (c, 0);
                            reconnects += 1;
                        }
                        continue;
                    }
                    *at += 1;
                    sent += 1;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            (sent, reconnects)
        })
    };
    ready_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // The monitor: /api/health from 127.0.0.1 every 100 ms for 10 s, a new connection each.
    let mut ms = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let t = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut line = String::new();
        let read = BufReader::new(s).read_line(&mut line);
        let took = t.elapsed();
        assert!(
            read.is_ok() && line.starts_with("HTTP/1.1 200"),
            "health did not answer within 5 s while {attackers} slow connections were open \
             (after {} answers): {read:?} {line:?}",
            ms.len()
        );
        ms.push(took.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, reconnects) = attack.join().unwrap();
    let n = ms.len();
    let (p50, p95, max) = figures(&mut ms);
    eprintln!(
        "health under {attackers} slow connections: {n} requests, p50 {p50:.1} ms, p95 {p95:.1} ms, \
         max {max:.1} ms; attackers sent {sent} bytes, reconnected {reconnects} times (408 + close)"
    );
    // Generous bounds for a loaded 2-core machine; a starved server misses them by seconds.
    assert!(n >= 20, "{n}");
    assert!(p50 < 100.0, "p50 {p50:.1} ms");
    assert!(max < 2000.0, "max {max:.1} ms");
    assert!(
        reconnects > 0,
        "the head deadline closed no slow connection"
    );
}

#[test]
fn the_per_peer_cap_turns_excess_connections_away_at_once() {
    let env = empty_env();
    // The default cap, 32 per address. A long head deadline, so that no connection is released
    // by it while the test runs, however loaded the machine: what frees a slot must be a close.
    let server = start(&env, &["--no-auth", "--head-timeout", "120"]);
    let port = server.port;
    let attacker = Ipv4Addr::new(127, 0, 0, 3);
    let mut held: Vec<TcpStream> = (0..32)
        .map(|_| connect_from(attacker, port).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // One more from the same address: a 503 and a close, at once, without sending anything.
    let t = Instant::now();
    let (statuses, text) = all_responses(
        connect_from(attacker, port).unwrap(),
        Duration::from_secs(3),
    );
    assert_eq!(statuses, vec![503], "{text}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Other addresses are not affected: the monitor on 127.0.0.1, another client.
    assert_eq!(get_with(port, "/api/health", &[]).status, 200);
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 4), port).unwrap();
    other
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(all_responses(other, Duration::from_secs(5)).0, vec![200]);
    // Once one of them closes, the address may connect again: released on close (the head
    // deadline is 120 s; the bound below only says "long before that").
    drop(held.pop());
    let until = Instant::now() + Duration::from_secs(60);
    let again = loop {
        let mut s = connect_from(attacker, port).unwrap();
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut line = String::new();
        let mut r = BufReader::new(s.try_clone().unwrap());
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = r.read_line(&mut line);
        if line.starts_with("HTTP/1.1 200") {
            break s;
        }
        assert!(Instant::now() < until, "{line:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The other 31 are still counted: with the new one kept open, the address is full again.
    let (statuses, _) = all_responses(
        connect_from(attacker, port).unwrap(),
        Duration::from_secs(3),
    );
    assert_eq!(statuses, vec![503]);
    drop((again, held));
    drop(server);
    // A lower cap, for a smaller host.
    let server = start(&env, &["--no-auth", "--max-per-peer", "2"]);
    let _held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from(attacker, server.port).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (statuses, _) = all_responses(
        connect_from(attacker, server.port).unwrap(),
        Duration::from_secs(3),
    );
    assert_eq!(statuses, vec![503]);
    for bad in ["0", "5000", "x"] {
        let out = env.run(&["serve", "--listen", "127.0.0.1:0", "--max-per-peer", bad]);
        assert!(!out.status.success(), "{bad}");
    }
    for bad in ["0", "301", "x"] {
        let out = env.run(&["serve", "--listen", "127.0.0.1:0", "--head-timeout", bad]);
        assert!(!out.status.success(), "{bad}");
    }
}

#[test]
fn conflicting_framing_headers_are_400_and_the_connection_closes() {
    let env = data_env();
    let server = start(&env, &["--no-auth"]);
    let smuggled = "GET /api/events HTTP/1.1\r\nHost: xy\r\n\r\n";
    assert_eq!(smuggled.len(), 38);
    let cases = [
        // The reproduction: the second request rode in as a "body" of length 0.
        format!("Content-Length: 0\r\nContent-Length: 38\r\n\r\n{smuggled}"),
        format!("Content-Length: 38\r\nContent-Length: 0\r\n\r\n{smuggled}"),
        format!("Content-Length: 0\r\nContent-Length: 0\r\n\r\n{smuggled}"),
        format!(
            "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n26\r\n{smuggled}\r\n0\r\n\r\n"
        ),
        format!("Transfer-Encoding: chunked\r\n\r\n26\r\n{smuggled}\r\n0\r\n\r\n"),
        format!("Transfer-Encoding: identity\r\n\r\n{smuggled}"),
        format!("Content-Length: +0\r\n\r\n{smuggled}"),
        format!("Content-Length: 0x0\r\n\r\n{smuggled}"),
        format!("Content-Length: 0, 0\r\n\r\n{smuggled}"),
        format!("Content-Length: 38\r\n\r\n{smuggled}"),
    ];
    for tail in &cases {
        let req = format!("GET /api/health HTTP/1.1\r\nHost: localhost\r\n{tail}");
        let (statuses, text) =
            all_responses(send(server.port, req.as_bytes()), Duration::from_secs(5));
        assert_eq!(statuses, vec![400], "{tail:?} → {text}");
    }
    // Plain pipelining (no body, no framing header) still gets both answers.
    let two = format!(
        "GET /api/health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n{}",
        "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let (statuses, _) = all_responses(send(server.port, two.as_bytes()), Duration::from_secs(5));
    assert_eq!(statuses, vec![200, 200]);
}

#[test]
fn the_token_is_never_taken_from_a_cookie_nor_set_in_one() {
    let env = data_env();
    let server = start(&env, &[]);
    let cookie = format!("dokku_audit_token={}", server.token);
    for path in ["/api/events", "/api/events/1", "/api/events/stream"] {
        assert_eq!(
            get_with(server.port, path, &[("Cookie", &cookie)]).status,
            401,
            "{path}"
        );
    }
    for path in ["/", "/app.js", "/app.css", "/api/health", "/api/events"] {
        let r = server.get(path);
        assert!(r.header("Set-Cookie").is_none(), "{path}");
    }
    let js = String::from_utf8(get_with(server.port, "/app.js", &[]).body).unwrap();
    assert!(
        !js.contains("EventSource"),
        "the stream must carry the Authorization header"
    );
}

/// A server of the test's own on another loopback port: records the head of every request it
/// gets (what a browser would send to any other local service).
fn recorder() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            while r.read_line(&mut head).is_ok_and(|n| n > 0) && !head.ends_with("\r\n\r\n") {}
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            );
            if tx.send(head).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn browser_page_keeps_the_token_out_of_cookies_and_streams_with_the_header() {
    let env = data_env();
    let server = start(&env, &[]);
    let driver = Driver::start();
    let url = format!("http://127.0.0.1:{}/#token={}", server.port, server.token);
    driver.call("POST", "/url", Some(json!({"url": url})));
    driver.wait_for(
        "the first page of events",
        "return document.querySelectorAll('#events tbody tr').length === 50;",
    );
    // The live stream is authorised by the header alone.
    driver.wait_for(
        "the live stream",
        "return document.getElementById('live').className === 'live on';",
    );
    // No cookie where a path=/api cookie would show, none in the browser at all.
    let api = format!("http://127.0.0.1:{}/api/health", server.port);
    driver.call("POST", "/url", Some(json!({"url": api})));
    assert_eq!(driver.script("return document.cookie;"), json!(""));
    assert_eq!(driver.call("GET", "/cookie", None), json!([]));
    // What another service on another loopback port receives from this browser.
    let (other, heads) = recorder();
    let there = format!("http://127.0.0.1:{other}/api/events");
    driver.call("POST", "/url", Some(json!({"url": there})));
    let head = heads.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(head.starts_with("GET /api/events "), "{head}");
    assert!(
        !head.contains(&server.token) && !head.to_ascii_lowercase().contains("cookie:"),
        "another port received the token: {head}"
    );
}

#[test]
fn browser_page_on_a_rebound_name_reads_nothing() {
    let env = data_env();
    // --no-auth: the case where the page could read every event.
    let server = start(&env, &["--no-auth"]);
    let driver = Driver::start_with(&["--host-resolver-rules=MAP rebind.test 127.0.0.1".into()]);
    // The control: the page on the server's own address works.
    let own = format!("http://127.0.0.1:{}/", server.port);
    driver.call("POST", "/url", Some(json!({"url": own})));
    driver.wait_for(
        "the events on the server's own address",
        "return document.querySelectorAll('#events tbody tr').length === 50;",
    );
    // The attacker's page: same address and port, its own name.
    let rebound = format!("http://rebind.test:{}/", server.port);
    driver.call("POST", "/url", Some(json!({"url": rebound})));
    assert_eq!(
        driver.script("return location.hostname;"),
        json!("rebind.test")
    );
    let rows = driver.script("return document.querySelectorAll('#events tbody tr').length;");
    assert_eq!(rows, json!(0), "the rebound page shows events");
    let body = driver.script("return document.body ? document.body.textContent : '';");
    assert!(body.as_str().unwrap().contains("421"), "{body}");
    // What a script on that page gets from the API (same origin for the browser).
    driver.script(
        "window.__got = null; fetch('/api/events?per_page=200').then(async r => { \
         window.__got = [r.status, await r.text()]; }, e => { window.__got = [0, String(e)]; });",
    );
    let got = driver.wait_for("the fetch", "return window.__got;");
    assert_eq!(got[0], json!(421), "{got}");
    assert!(!got[1].as_str().unwrap().contains("\"events\""), "{got}");
}
