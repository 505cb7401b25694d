//! `GET /api/events/stream`: server-sent events, one per new event (`id:` the event id, `data:`
//! its canonical JSON on one line). It follows the segments like `tail --follow` (a reader: no
//! lock), from the store's end, or from just after `Last-Event-ID` (header, or the
//! `last_event_id` parameter) when a client resumes: the follower skips every id at or below it,
//! so a reconnect loses and repeats nothing. Each stream has its own thread, outside the request
//! pool, and their number is capped.

use std::io::Write;
use std::net::TcpStream;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::http::{query_pairs, HttpError, Request, SECURITY_HEADERS};
use super::Shared;
use crate::store::follow::FollowItem;

/// How often the segments are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A comment line is sent after this long without events: proxies keep the connection, and a
/// client that went away is noticed.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Where a stream starts: after this id.
pub fn start_after(shared: &Shared, req: &Request) -> Result<u64, HttpError> {
    let mut from_param = None;
    for (k, v) in query_pairs(&req.query)? {
        match k.as_str() {
            "last_event_id" => from_param = Some(v),
            "_" => {}
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(HttpError::bad(format!(
                    "unknown parameter {shown:?} (known: last_event_id)"
                )));
            }
        }
    }
    let given = req
        .header("last-event-id")
        .map(str::to_string)
        .or(from_param)
        .filter(|v| !v.trim().is_empty());
    match given {
        Some(v) => {
            let v = v.trim();
            if v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::bad("Last-Event-ID must be an event id"));
            }
            v.parse()
                .map_err(|_| HttpError::bad("Last-Event-ID must be an event id"))
        }
        None => shared
            .store()
            .last_id()
            .map_err(|e| shared.internal(&e.to_string())),
    }
}

/// Serves the stream until the client goes away (a write fails) or the server stops.
pub fn run(shared: &Shared, mut conn: TcpStream, after: u64) {
    let store = shared.store();
    let mut follower = match store.follow_after(after) {
        Ok(f) => f,
        Err(e) => {
            let resp = shared.internal(&e.to_string()).response();
            let _ = super::http::write_response(&mut conn, &resp, false, false);
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n{SECURITY_HEADERS}\
         Connection: close\r\n\r\nretry: 2000\n\n"
    );
    if conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.flush())
        .is_err()
    {
        return;
    }
    let mut last_write = Instant::now();
    while !shared.stopping() {
        let mut out: Vec<u8> = Vec::new();
        let polled = follower.poll(&mut |item| {
            if let FollowItem::Event { id, json } = item {
                out.extend_from_slice(format!("id: {id}\ndata: ").as_bytes());
                out.extend_from_slice(json);
                out.extend_from_slice(b"\n\n");
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = polled {
            // Reported once per poll; the stream keeps trying (a restore swaps directories).
            eprintln!("dokku-audit serve: stream: {e}");
        }
        if out.is_empty() && last_write.elapsed() >= KEEPALIVE {
            out.extend_from_slice(b": keepalive\n\n");
        }
        if !out.is_empty() {
            if conn.write_all(&out).and_then(|()| conn.flush()).is_err() {
                return;
            }
            last_write = Instant::now();
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
