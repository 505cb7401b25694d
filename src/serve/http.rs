//! HTTP/1.1, the small part of it a read-only API needs: parse one request head (bounded: 16 KiB
//! and 64 headers, GET and HEAD only, no bodies), decode its query string, write one response.
//! Everything else is refused with a 4xx JSON error before any handler runs.
//!
//! Framing is strict, because a request whose end two parsers see in different places is how
//! requests are smuggled: a `Transfer-Encoding` header (chunked bodies are not implemented), a
//! second `Content-Length`, a `Content-Length` that is not only digits or is not zero, and a
//! second `Host` are all a 400, after which the connection is closed (nothing after such a head
//! is ever read as a request).

use std::io::{BufRead, Write};

use serde_json::json;

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers accepted.
pub const MAX_HEADERS: usize = 64;

/// Why a request was refused, or a handler's error: becomes a JSON error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {message}")]
pub struct HttpError {
    /// The status code (4xx for the client's mistakes).
    pub status: u16,
    /// One human sentence.
    pub message: String,
}

impl HttpError {
    /// An error with this status.
    pub fn new(status: u16, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad(message: impl Into<String>) -> HttpError {
        HttpError::new(400, message)
    }

    /// The JSON response for it.
    pub fn response(&self) -> Response {
        let body = json!({"error": {"status": self.status, "message": self.message}});
        let mut r = Response::json(self.status, &body);
        if self.status == 401 {
            r.headers
                .push(("WWW-Authenticate", "Bearer realm=\"dokku-audit\"".into()));
        }
        r
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD`.
    pub method: String,
    /// The path, percent-decoded (the part of the target before its first `?`; a `%3F` in it
    /// decodes to `?`).
    pub path: String,
    /// The raw query string (after `?`), undecoded.
    pub query: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `HTTP/1.1` (else `HTTP/1.0`).
    pub http11: bool,
}

impl Request {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What reading a request gave.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A request.
    Request(Request),
    /// The peer closed the connection (or went idle past the timeout) between requests.
    Closed,
    /// A malformed or refused request: answer the error, then close.
    Bad(HttpError),
}

/// Reads one request head from the connection (bounded; see the module documentation).
pub fn read_request(r: &mut impl BufRead) -> ReadOutcome {
    let mut head: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let before = head.len();
        let budget = (MAX_HEAD_BYTES + 1).saturating_sub(before) as u64;
        let n = match std::io::Read::take(&mut *r, budget).read_until(b'\n', &mut head) {
            Ok(n) => n,
            // Nothing of a request yet: an idle keep-alive connection timing out, or a reset.
            Err(_) if head.is_empty() => return ReadOutcome::Closed,
            Err(e) => {
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        ReadOutcome::Bad(HttpError::new(408, "request head not received in time"))
                    }
                    _ => ReadOutcome::Closed,
                }
            }
        };
        if n == 0 {
            return if before == 0 {
                ReadOutcome::Closed
            } else {
                ReadOutcome::Bad(HttpError::bad("connection closed inside the request head"))
            };
        }
        if head.len() > MAX_HEAD_BYTES {
            return ReadOutcome::Bad(HttpError::new(
                431,
                format!("request head larger than {MAX_HEAD_BYTES} bytes"),
            ));
        }
        let line = &head[before..];
        // Empty lines before the request line are allowed (RFC 9112 §2.2).
        if before == 0 && (line == b"\r\n" || line == b"\n") {
            head.clear();
            continue;
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.ends_with(b"\n") {
            // Only the end of the stream stops a line short of its newline (the size limit was
            // checked above).
            return ReadOutcome::Bad(HttpError::bad("connection closed inside the request head"));
        }
    }
    match parse_head(&head) {
        Ok(req) => ReadOutcome::Request(req),
        Err(e) => ReadOutcome::Bad(e),
    }
}

fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
    let text =
        std::str::from_utf8(head).map_err(|_| HttpError::bad("request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(HttpError::bad("malformed request line")),
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HttpError::new(505, "only HTTP/1.0 and HTTP/1.1 are served")),
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::new(
                431,
                format!("more than {MAX_HEADERS} request headers"),
            ));
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.contains([' ', '\t']))
            .ok_or_else(|| HttpError::bad("malformed header line"))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    if method != "GET" && method != "HEAD" {
        return Err(HttpError::new(
            405,
            format!("method {method} not allowed: the API is read-only (GET, HEAD)"),
        ));
    }
    check_framing(&headers)?;
    let mut req = Request {
        method: method.to_string(),
        path: String::new(),
        query: String::new(),
        keep_alive: false,
        http11,
        headers,
    };
    let connection = req
        .header("connection")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    req.keep_alive = if http11 {
        !connection.contains("close")
    } else {
        connection.contains("keep-alive")
    };
    // Origin form only (`/path?query`); an absolute form is for proxies.
    if !target.starts_with('/') {
        return Err(HttpError::bad("request target must be a path"));
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path, false)
        .ok_or_else(|| HttpError::bad("path is not valid percent-encoded UTF-8"))?;
    req.path = path;
    req.query = query.to_string();
    Ok(req)
}

/// The framing rules of the module documentation: no body, and exactly one way to see that.
fn check_framing(headers: &[(String, String)]) -> Result<(), HttpError> {
    let mut content_length = None;
    let mut host = false;
    for (name, value) in headers {
        match name.as_str() {
            "transfer-encoding" => {
                return Err(HttpError::bad(
                    "Transfer-Encoding is not accepted: requests have no body",
                ))
            }
            "content-length" => {
                if content_length.replace(value).is_some() {
                    return Err(HttpError::bad("more than one Content-Length header"));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HttpError::bad("Content-Length must be a number"));
                }
                if value.bytes().any(|b| b != b'0') {
                    return Err(HttpError::bad("requests must not have a body"));
                }
            }
            "host" if std::mem::replace(&mut host, true) => {
                return Err(HttpError::bad("more than one Host header"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes (and `+` as a space in query strings). `None` for a broken escape or
/// bytes that are not UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The query string as decoded `(name, value)` pairs, in order.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, HttpError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k, true)
                .ok_or_else(|| HttpError::bad("query string is not valid percent-encoded UTF-8"))?;
            let v = percent_decode(v, true).ok_or_else(|| {
                HttpError::bad(format!(
                    "parameter {k:?} is not valid percent-encoded UTF-8"
                ))
            })?;
            Ok((k, v))
        })
        .collect()
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers besides Content-Length, Connection and the fixed security headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON body (never cached: audit data).
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        let mut body = serde_json::to_vec(v).unwrap_or_default();
        body.push(b'\n');
        Response::bytes(status, "application/json; charset=utf-8", body)
    }

    /// A body of this type.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                ("Cache-Control", "no-store".into()),
            ],
            body,
        }
    }
}

/// The reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        403 => "Forbidden",
        408 => "Request Timeout",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Headers every response carries: no sniffing, no framing, no referrer, same-origin only.
pub const SECURITY_HEADERS: &str = "X-Content-Type-Options: nosniff\r\n\
X-Frame-Options: DENY\r\n\
Referrer-Policy: no-referrer\r\n\
Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n";

/// Writes a response; the body is left out for HEAD.
pub fn write_response(
    w: &mut impl Write,
    resp: &Response,
    head_only: bool,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes(),
    );
    for (k, v) in &resp.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(SECURITY_HEADERS.as_bytes());
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: {}\r\n\r\n",
            resp.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )
        .as_bytes(),
    );
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> ReadOutcome {
        read_request(&mut std::io::BufReader::new(s.as_bytes()))
    }

    #[test]
    fn parses_a_get() {
        let ReadOutcome::Request(r) =
            read("GET /api/events?app=a%20b&q=x+y HTTP/1.1\r\nHost: x\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(r.path, "/api/events");
        assert!(r.keep_alive);
        assert_eq!(
            query_pairs(&r.query).unwrap(),
            vec![("app".into(), "a b".into()), ("q".into(), "x y".into())]
        );
    }

    #[test]
    fn refuses_what_it_does_not_serve() {
        let status = |s: &str| match read(s) {
            ReadOutcome::Bad(e) => e.status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status("POST / HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("GET  HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), 400);
        assert_eq!(status("GET http://x/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET /%zz HTTP/1.1\r\n\r\n"), 400);
        let huge = format!("GET /?q={} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(status(&huge), 431);
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
        assert!(matches!(read(""), ReadOutcome::Closed));
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x"), 400);
    }

    #[test]
    fn framing_is_unambiguous() {
        let status = |s: &str| match read(s) {
            ReadOutcome::Bad(e) => e.status,
            ReadOutcome::Request(_) => 200,
            ReadOutcome::Closed => 0,
        };
        let with = |h: &str| status(&format!("GET / HTTP/1.1\r\nHost: x\r\n{h}\r\n"));
        assert_eq!(with("Content-Length: 0\r\n"), 200);
        assert_eq!(with("Content-Length: 000\r\n"), 200);
        assert_eq!(with("Content-Length: 0\r\nContent-Length: 38\r\n"), 400);
        assert_eq!(with("Content-Length: 0\r\nContent-Length: 0\r\n"), 400);
        assert_eq!(
            with("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"),
            400
        );
        assert_eq!(with("Transfer-Encoding: chunked\r\n"), 400);
        assert_eq!(with("Transfer-Encoding: identity\r\n"), 400);
        for cl in ["+0", "-0", "0x0", "0 0", "", "0,0", "1"] {
            assert_eq!(with(&format!("Content-Length: {cl}\r\n")), 400, "{cl:?}");
        }
        assert_eq!(with("Host: y\r\n"), 400);
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(percent_decode("a%2Fb", false).as_deref(), Some("a/b"));
        assert_eq!(percent_decode("%", false), None);
        assert_eq!(percent_decode("%ff", false), None);
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
    }
}
