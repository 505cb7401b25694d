//! Shared by the `serve` test files: the binary on a loopback port, raw HTTP requests, and
//! headless Chromium through chromedriver (W3C WebDriver over HTTP).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, TestEnv};

/// A running `serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(env: &TestEnv, args: &[&str]) -> Server {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut child = env
        .command(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let token = std::fs::read_to_string(env.data.join("serve-token"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    Server { child, port, token }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes, reads one response (Content-Length framed, or to EOF).
pub fn raw(port: u16, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (and close) before it has read everything: ignore write errors.
    let _ = s.write_all(request);
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().unwrap());
    let mut body = Vec::new();
    match len {
        _ if request.starts_with(b"HEAD ") => {}
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        }
        None => {
            let _ = r.read_to_end(&mut body);
        }
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(port, req.as_bytes())
}

impl Server {
    pub fn get(&self, path: &str) -> Resp {
        let auth = format!("Bearer {}", self.token);
        get_with(self.port, path, &[("Authorization", &auth)])
    }
    pub fn ok_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }
}

/// Reads SSE events (id, data) from a stream until `n` arrived or the deadline passed.
pub fn read_events(
    r: &mut BufReader<TcpStream>,
    n: usize,
    deadline: Duration,
) -> Vec<(u64, Value)> {
    let until = Instant::now() + deadline;
    let mut out = Vec::new();
    let mut id = None;
    while out.len() < n && Instant::now() < until {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(e) => panic!("{e}"),
        }
        let line = line.trim_end_matches('\n');
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse::<u64>().unwrap());
        } else if let Some(v) = line.strip_prefix("data: ") {
            let data: Value = serde_json::from_str(v).unwrap();
            let id = id.take().expect("id before data");
            assert_eq!(data["id"].as_u64(), Some(id));
            out.push((id, data));
        }
    }
    out
}

pub fn open_stream(server: &Server, last_event_id: Option<u64>) -> BufReader<TcpStream> {
    open_stream_at(server, "/api/events/stream", last_event_id)
}

/// Opens a stream at `path` (with its parameters) and reads its head (a 200 is asserted).
pub fn open_stream_at(
    server: &Server,
    path: &str,
    last_event_id: Option<u64>,
) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer {}\r\n",
        server.token
    );
    if let Some(id) = last_event_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    let until = Instant::now() + Duration::from_secs(10);
    while !head.ends_with("\r\n\r\n") && Instant::now() < until {
        let _ = r.read_line(&mut head);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    r
}

/// Runs a trigger the way Dokku does: `dokku-audit hook post-config-update APP set KEY`.
pub fn trigger(env: &TestEnv, app: &str, key: &str) {
    let out = env.run(&["hook", "post-config-update", app, "set", key]);
    assert!(out.status.success(), "{}", util::stderr(&out));
}

/// Ids the CLI lists for these arguments (everything: a limit above the event count).
pub fn cli_ids(env: &TestEnv, args: &[&str]) -> Vec<u64> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--limit", "100000", "--format", "jsonl"]);
    env.ok(&all)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Ids the API lists for a query string, walking every page through the `next` links.
pub fn api_ids(server: &Server, query: &str, per_page: usize) -> (Vec<u64>, u64) {
    let mut path = format!("/api/events?{query}&per_page={per_page}");
    let mut ids = Vec::new();
    let mut total = None;
    let mut pages = 0;
    loop {
        let v = server.ok_json(&path);
        pages += 1;
        let t = v["total"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(t), t, "total changed between pages");
        assert_eq!(v["per_page"].as_u64().unwrap() as usize, per_page);
        let events = v["events"].as_array().unwrap();
        assert!(events.len() <= per_page);
        ids.extend(events.iter().map(|e| e["id"].as_u64().unwrap()));
        match v["next"].as_str() {
            Some(next) => {
                assert_eq!(events.len(), per_page, "a page before the last is full");
                path = next.to_string();
            }
            None => break,
        }
    }
    let total = total.unwrap_or(0);
    assert_eq!(pages, (total as usize).div_ceil(per_page).max(1));
    (ids, total)
}

pub fn data_env() -> TestEnv {
    let env = TestEnv::new();
    let file = env.file("demo.jsonl", &util::demo_jsonl(1500, 20));
    env.ok(&["import", file.to_str().unwrap()]);
    env
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium through chromedriver (W3C WebDriver over HTTP). Fails if either is missing:
// CI installs them (.ci/run).

pub struct Driver {
    pub child: Child,
    pub port: u16,
    pub session: String,
    pub _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = wd(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One WebDriver call: JSON in, `value` out.
pub fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open: frame by Content-Length (or chunks).
    let mut r = BufReader::new(s);
    let mut head = String::new();
    let mut len = None;
    let mut chunked = false;
    loop {
        let mut l = String::new();
        r.read_line(&mut l).map_err(|e| e.to_string())?;
        if l.trim_end().is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        head.push_str(&l);
    }
    let mut bytes = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
    } else {
        bytes.resize(len.unwrap_or(0), 0);
        r.read_exact(&mut bytes).map_err(|e| e.to_string())?;
    }
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if head.starts_with("HTTP/1.1 200") {
        Ok(v["value"].clone())
    } else {
        Err(v.to_string())
    }
}

impl Driver {
    pub fn start() -> Driver {
        Driver::start_with(&[])
    }

    /// A session whose Chromium gets these arguments too (`--host-resolver-rules=…`).
    pub fn start_with(extra_args: &[String]) -> Driver {
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|b| which(b))
            .expect("chromium is not installed (apt-get install -y chromium chromium-driver)");
        let port = free_port();
        let child =
            Command::new(which("chromedriver").expect(
                "chromedriver is not installed (apt-get install -y chromium chromium-driver)",
            ))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let until = Instant::now() + Duration::from_secs(20);
        while wd(port, "GET", "/status", None).is_err() {
            assert!(Instant::now() < until, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra_args.iter().cloned());
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
            }
        }}});
        let mut driver = Driver {
            child,
            port,
            session: String::new(),
            _profile: profile,
        };
        let v = wd(port, "POST", "/session", Some(caps)).expect("new session");
        driver.session = v["sessionId"].as_str().unwrap().to_string();
        driver
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(serde_json::json!({"script": js, "args": []})),
        )
    }

    pub fn wait_for(&self, what: &str, js: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.script(js);
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(serde_json::json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css);
        self.call(
            "POST",
            &format!("/element/{el}/clear"),
            Some(serde_json::json!({})),
        );
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            Some(serde_json::json!({"text": text})),
        );
    }

    pub fn click(&self, css: &str) {
        let el = self.element(css);
        self.call(
            "POST",
            &format!("/element/{el}/click"),
            Some(serde_json::json!({})),
        );
    }
}

pub fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}
