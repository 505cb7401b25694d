//! `http_head`: the request head parser of `serve` (`serve::http::read_request`, which reads one
//! head from a buffered connection and parses it) and the `Host`/`Origin` rules
//! (`serve::guard::HostPolicy`), on arbitrary bytes from the network.
//!
//! Input: a flag byte (the capacity of the small read buffer, and where the connection arrived),
//! then the bytes a client sends.
//!
//! Properties:
//!
//! - nothing panics; the outcome does not depend on how the bytes arrive (a 4 KiB buffer and a
//!   1–8 byte one give the same request or the same error): a head is a function of its bytes;
//! - `Closed` only for input that holds nothing but empty lines;
//! - an accepted request is GET or HEAD, has a path starting with `/`, at most
//!   64 headers with non-empty lower-case names (no space, tab or `:`), no `Transfer-Encoding`,
//!   at most one `Content-Length` (digits, value 0) and at most one `Host`;
//! - **the head ends exactly at its first empty line**: what the reader has not consumed is
//!   exactly the input after it (so a body or a second request can never be read as part of a
//!   head, nor a head's tail as the next request: no smuggling through the parser);
//! - an error is one of 400, 405, 431, 505 (408 needs a clock) with a non-empty message;
//! - the Host rule: when `check` accepts, the request is HTTP/1.0 without `Host`, or its `Host`
//!   names this server — spelled out here with std's address parsers: the name before an
//!   optional `:port` (or a bracketed IPv6 address) is `localhost` or the allowed name (any case,
//!   one trailing dot), or an address that is loopback or the connection's own; an accepted
//!   `Origin` starts with `http://` or `https://`. `check` is deterministic; query strings
//!   decode without panicking.

use std::io::{BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use dokku_audit::serve::guard::HostPolicy;
use dokku_audit::serve::http::{query_pairs, read_request, ReadOutcome, Request, MAX_HEADERS};

/// The name the policy allows besides the loopback ones.
const ALLOWED: &str = "audit.example.com";

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Request(Request, Vec<u8>),
    Closed,
    Bad(u16, String),
}

/// Reads one head through a buffer of `capacity` bytes; returns what is left unread too.
fn read(bytes: &[u8], capacity: usize) -> Outcome {
    let mut r = BufReader::with_capacity(capacity, bytes);
    match read_request(&mut r) {
        ReadOutcome::Request(req) => {
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).expect("reading a slice");
            Outcome::Request(req, rest)
        }
        ReadOutcome::Closed => Outcome::Closed,
        ReadOutcome::Bad(e) => Outcome::Bad(e.status, e.message),
    }
}

/// Where the head ends by the spec: after optional empty lines, the first line that is empty
/// (`\r\n` or `\n`) ends it. `None` when the input has no such line.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut started = false;
    while pos < bytes.len() {
        let end = bytes[pos..].iter().position(|&b| b == b'\n')? + pos + 1;
        let line = &bytes[pos..end];
        let empty = line == b"\n" || line == b"\r\n";
        if empty && started {
            return Some(end);
        }
        started |= !empty;
        pos = end;
    }
    None
}

/// The Host rule spelled out independently of `guard`.
fn names_this_server(value: &str, local: IpAddr) -> bool {
    let host = if value.starts_with('[') {
        match value.find(']') {
            Some(i) => &value[..=i],
            None => return false,
        }
    } else {
        value.split(':').next().unwrap_or_default()
    };
    let lower = host.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name == "localhost" || name == ALLOWED {
        return true;
    }
    let ip = match name.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => match v6.parse::<Ipv6Addr>() {
            Ok(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
            Err(_) => return false,
        },
        None => match name.parse::<Ipv4Addr>() {
            Ok(a) => IpAddr::V4(a),
            Err(_) => return false,
        },
    };
    ip.is_loopback() || ip == local
}

/// The body of the `http_head` fuzz target.
pub fn http_head(data: &[u8]) {
    let (flags, bytes) = match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    };
    let outcome = read(bytes, 4096);
    let small = read(bytes, 1 + (flags & 7) as usize);
    assert_eq!(outcome, small, "the outcome depends on the read buffer");
    match outcome {
        Outcome::Closed => {
            assert!(
                bytes
                    .split(|&b| b == b'\n')
                    .all(|l| l.is_empty() || l == b"\r"),
                "Closed for a non-empty head"
            );
        }
        Outcome::Bad(status, message) => {
            assert!(
                matches!(status, 400 | 405 | 431 | 505),
                "{status} {message}"
            );
            assert!(!message.is_empty());
        }
        Outcome::Request(req, rest) => {
            check_request(&req);
            let end = head_end(bytes).expect("a request without an empty line after its head");
            assert_eq!(
                rest,
                &bytes[end..],
                "the head did not end at its first empty line"
            );
            check_hosts(&req, flags);
        }
    }
}

fn check_request(req: &Request) {
    assert!(
        req.method == "GET" || req.method == "HEAD",
        "{}",
        req.method
    );
    // (A `%3F` decodes to `?` in the path; the query is what followed the first literal `?`.)
    assert!(req.path.starts_with('/'), "{}", req.path);
    assert!(req.headers.len() <= MAX_HEADERS);
    let mut content_length = 0;
    let mut host = 0;
    for (name, value) in &req.headers {
        assert!(!name.is_empty());
        assert!(
            !name.contains([' ', '\t', ':']) && *name == name.to_ascii_lowercase(),
            "{name:?}"
        );
        match name.as_str() {
            "transfer-encoding" => panic!("Transfer-Encoding accepted"),
            "content-length" => {
                content_length += 1;
                assert!(
                    !value.is_empty() && value.bytes().all(|b| b == b'0'),
                    "Content-Length {value:?} accepted"
                );
            }
            "host" => host += 1,
            _ => {}
        }
    }
    assert!(content_length <= 1 && host <= 1, "{:?}", req.headers);
    let _ = query_pairs(&req.query);
}

fn check_hosts(req: &Request, flags: u8) {
    let listen: SocketAddr = "127.0.0.1:8787".parse().expect("address");
    let policy = HostPolicy::new(listen, &[ALLOWED.to_string()]);
    let local: SocketAddr = if flags & 0x80 == 0 {
        listen
    } else {
        "192.0.2.10:8787".parse().expect("address")
    };
    let verdict = policy.check(req, Some(local));
    assert_eq!(verdict, policy.check(req, Some(local)), "not deterministic");
    if verdict.is_ok() {
        match req.header("host") {
            None => assert!(!req.http11, "HTTP/1.1 without Host accepted"),
            Some(h) => assert!(names_this_server(h, local.ip()), "Host {h:?} accepted"),
        }
    }
    if let Some(h) = req.header("host") {
        let allowed = policy.host_allowed(h, Some(local.ip()));
        assert!(!allowed || names_this_server(h, local.ip()), "{h:?}");
    }
    if let Some(o) = req.header("origin") {
        if policy.origin_allowed(o, Some(local)) {
            let lower = o.to_ascii_lowercase();
            assert!(
                lower.starts_with("http://") || lower.starts_with("https://"),
                "{o:?}"
            );
        }
    }
}
