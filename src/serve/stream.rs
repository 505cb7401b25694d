//! `GET /api/events/stream`: server-sent events, one per new event (`id:` the event id, `data:`
//! its canonical JSON on one line). It follows the segments like `tail --follow` (a reader: no
//! lock), from the store's end, or from just after `Last-Event-ID` (header, or the
//! `last_event_id` parameter) when a client resumes: the follower skips every id at or below it,
//! so a reconnect loses and repeats nothing. It takes the filters of `/api/events` (not its
//! paging) with the same meaning: each batch of new events is asked the list's query in an
//! in-memory index. Each stream has its own thread, outside the request pool, and their number
//! is capped.

use std::io::Write;
use std::net::TcpStream;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::api::{encode, parse_events_params, EVENT_PARAMS};
use super::http::{query_pairs, HttpError, Request, SECURITY_HEADERS};
use super::Shared;
use crate::query::list::{self, ListQuery};
use crate::record::Event;
use crate::store::follow::FollowItem;

/// How often the segments are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A comment line is sent after this long without events: proxies keep the connection, and a
/// client that went away is noticed.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// The `/api/events` parameters a stream does not take: it has no pages.
const PAGING: [&str; 2] = ["page", "per_page"];

/// Where a stream starts and which events it sends.
#[derive(Debug, Clone)]
pub struct StreamStart {
    /// Events after this id.
    pub after: u64,
    /// Only events matching this (`None`: every event).
    pub filter: Option<ListQuery>,
}

/// Checks a stream request: where it starts (after this id) and its filters.
pub fn start_after(shared: &Shared, req: &Request) -> Result<StreamStart, HttpError> {
    let mut from_param = None;
    let mut filters: Vec<String> = Vec::new();
    for (k, v) in query_pairs(&req.query)? {
        match k.as_str() {
            "last_event_id" => from_param = Some(v),
            "_" => {}
            other if EVENT_PARAMS.contains(&other) && !PAGING.contains(&other) => {
                filters.push(format!("{}={}", encode(&k), encode(&v)));
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                let known: Vec<&str> = EVENT_PARAMS
                    .iter()
                    .filter(|p| !PAGING.contains(p) && **p != "_")
                    .copied()
                    .chain(["last_event_id"])
                    .collect();
                return Err(HttpError::bad(format!(
                    "unknown parameter {shown:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
    }
    // The list's own parsing: the same checks, the same meaning, the same 400s.
    let query = parse_events_params(&filters.join("&"), shared.clock.now())?.query;
    list::check_query(&query).map_err(|e| {
        if e.is_user_error() {
            HttpError::bad(e.to_string())
        } else {
            shared.internal(&e.to_string())
        }
    })?;
    let filter = is_filtered(&query).then_some(query);
    let given = req
        .header("last-event-id")
        .map(str::to_string)
        .or(from_param)
        .filter(|v| !v.trim().is_empty());
    let after = match given {
        Some(v) => {
            let v = v.trim();
            if v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::bad("Last-Event-ID must be an event id"));
            }
            v.parse()
                .map_err(|_| HttpError::bad("Last-Event-ID must be an event id"))?
        }
        None => shared
            .store()
            .last_id()
            .map_err(|e| shared.internal(&e.to_string()))?,
    };
    Ok(StreamStart { after, filter })
}

fn is_filtered(q: &ListQuery) -> bool {
    let ListQuery {
        app,
        category,
        classification,
        status,
        actor,
        action,
        since,
        until,
        text,
        source_type,
        release,
        limit: _,
    } = q;
    [
        app,
        category,
        classification,
        status,
        actor,
        action,
        text,
        source_type,
    ]
    .iter()
    .any(|f| f.is_some())
        || since.is_some()
        || until.is_some()
        || release.is_some()
}

/// The events of a batch (id, canonical JSON) that `filter` keeps, in order. An event whose
/// JSON does not parse cannot be matched, so a filtered stream leaves it out.
fn keep(batch: Vec<(u64, Vec<u8>)>, filter: &ListQuery) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut parsed: Vec<(usize, Event)> = Vec::new();
    for (i, (_, json)) in batch.iter().enumerate() {
        if let Ok(e) = Event::from_json_text(&String::from_utf8_lossy(json)) {
            parsed.push((i, e));
        }
    }
    let events: Vec<Event> = parsed.iter().map(|(_, e)| e.clone()).collect();
    let hits = list::matching_events(&events, filter).map_err(|e| e.to_string())?;
    let wanted: std::collections::HashSet<usize> = hits
        .into_iter()
        .filter_map(|h| parsed.get(h).map(|(i, _)| *i))
        .collect();
    Ok(batch
        .into_iter()
        .enumerate()
        .filter(|(i, _)| wanted.contains(i))
        .map(|(_, x)| x)
        .collect())
}

/// Serves the stream until the client goes away (a write fails) or the server stops.
pub fn run(shared: &Shared, mut conn: TcpStream, start: StreamStart) {
    let store = shared.store();
    let mut follower = match store.follow_after(start.after) {
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
        let mut batch: Vec<(u64, Vec<u8>)> = Vec::new();
        let polled = follower.poll(&mut |item| {
            if let FollowItem::Event { id, json } = item {
                batch.push((id, json.to_vec()));
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = polled {
            // Reported once per poll; the stream keeps trying (a restore swaps directories).
            eprintln!("dokku-audit serve: stream: {e}");
        }
        if let (Some(filter), false) = (&start.filter, batch.is_empty()) {
            batch = match keep(batch, filter) {
                Ok(kept) => kept,
                Err(e) => {
                    // The query was checked at the start: only the in-memory index can fail
                    // here. Ending the stream makes the client reconnect and resume.
                    eprintln!("dokku-audit serve: stream: {e}");
                    return;
                }
            };
        }
        let mut out: Vec<u8> = Vec::new();
        for (id, json) in &batch {
            out.extend_from_slice(format!("id: {id}\ndata: ").as_bytes());
            out.extend_from_slice(json);
            out.extend_from_slice(b"\n\n");
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
