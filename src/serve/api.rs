//! Routes: the page and its two assets, `/api/health`, `/api/events` (a page of a list query),
//! `/api/events/{id}`. Parameters become the same [`ListQuery`] the CLI builds, times go through
//! the CLI's parser, `q` is the `search` command's query: one semantics for both. Every bad
//! parameter is a 400 naming it; unknown parameters are refused (a typo must not silently widen
//! an audit query).

use serde_json::{json, Value};

use super::http::{query_pairs, HttpError, Request, Response};
use super::Shared;
use crate::query::list::{self, ListQuery};

/// Largest `per_page`.
pub const MAX_PER_PAGE: usize = 200;
/// Default `per_page`.
pub const DEFAULT_PER_PAGE: usize = 50;
/// Deepest row a page may reach (`page × per_page`): deeper pages cost more than they are worth;
/// narrow the query with `until` instead.
pub const MAX_DEPTH: usize = 100_000;

const PAGE_HTML: &str = include_str!("page.html");
const PAGE_JS: &str = include_str!("page.js");
const PAGE_CSS: &str = include_str!("page.css");

/// Most `(` in a `q`.
pub const MAX_QUERY_NESTING: usize = 32;

/// The parameters `/api/events` accepts.
pub const EVENT_PARAMS: [&str; 12] = [
    "app",
    "category",
    "action",
    "actor",
    "status",
    "classification",
    "q",
    "since",
    "until",
    "page",
    "per_page",
    "_",
];

/// Answers a request that is not the stream.
pub fn route(shared: &Shared, req: &Request) -> Result<Response, HttpError> {
    let path = req.path.as_str();
    match path {
        "/" | "/index.html" => {
            no_params(req)?;
            Ok(Response::bytes(
                200,
                "text/html; charset=utf-8",
                PAGE_HTML.into(),
            ))
        }
        "/app.js" => Ok(Response::bytes(
            200,
            "text/javascript; charset=utf-8",
            PAGE_JS.into(),
        )),
        "/app.css" => Ok(Response::bytes(
            200,
            "text/css; charset=utf-8",
            PAGE_CSS.into(),
        )),
        "/api/health" => {
            no_params(req)?;
            health(shared)
        }
        _ => {
            if let Some(script) = super::facets::script(path) {
                return Ok(script);
            }
            if !path.starts_with("/api/") {
                return Err(not_found(path));
            }
            shared.authorize(req)?;
            if path == "/api/events" {
                return events(shared, req);
            }
            if path == "/api/facets" {
                return super::facets::facets(shared, req);
            }
            if path == "/api/activity" {
                return super::facets::activity(shared, req);
            }
            if let Some(rest) = path.strip_prefix("/api/apps/") {
                return super::releases::route(shared, req, rest);
            }
            match path.strip_prefix("/api/events/") {
                Some(id) if !id.is_empty() && !id.contains('/') => {
                    no_params(req)?;
                    event(shared, id)
                }
                _ => Err(not_found(path)),
            }
        }
    }
}

fn not_found(path: &str) -> HttpError {
    let shown: String = path.chars().take(100).collect();
    HttpError::new(404, format!("no such resource: {shown}"))
}

fn no_params(req: &Request) -> Result<(), HttpError> {
    // Cache busters from browsers are fine; anything else is a mistake worth reporting.
    match query_pairs(&req.query)?.into_iter().find(|(k, _)| k != "_") {
        Some((k, _)) => Err(HttpError::bad(format!("unknown parameter {k:?}"))),
        None => Ok(()),
    }
}

fn health(shared: &Shared) -> Result<Response, HttpError> {
    let store = shared.store();
    match store.check_readable() {
        Ok(()) => Ok(Response::json(
            200,
            &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
        )),
        Err(e) => Ok(Response::json(
            503,
            &json!({"status": "error", "version": env!("CARGO_PKG_VERSION"), "message": e.to_string()}),
        )),
    }
}

/// `/api/events` parameters, checked.
#[derive(Debug, Clone)]
pub struct EventsParams {
    /// The list query (its limit unused).
    pub query: ListQuery,
    /// 1-based page.
    pub page: usize,
    /// Events per page.
    pub per_page: usize,
    /// The decoded parameters, to build the page links.
    pub pairs: Vec<(String, String)>,
}

fn positive(name: &str, v: &str, max: usize) -> Result<usize, HttpError> {
    let err = || HttpError::bad(format!("{name} must be an integer from 1 to {max}"));
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(err()),
    }
}

/// Checks the parameters of `/api/events`.
pub fn parse_events_params(
    query: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<EventsParams, HttpError> {
    let pairs = query_pairs(query)?;
    let mut q = ListQuery::default();
    let mut page = 1;
    let mut per_page = DEFAULT_PER_PAGE;
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in &pairs {
        let Some(name) = EVENT_PARAMS.iter().find(|p| **p == k.as_str()) else {
            let shown: String = k.chars().take(40).collect();
            return Err(HttpError::bad(format!(
                "unknown parameter {shown:?} (known: {})",
                EVENT_PARAMS[..11].join(", ")
            )));
        };
        if seen.contains(name) {
            return Err(HttpError::bad(format!("parameter {name:?} given twice")));
        }
        seen.push(name);
        // An empty value is an unset filter (what an empty form field sends).
        if v.is_empty() {
            continue;
        }
        let time = |v: &str| {
            crate::timefmt::parse_time_arg(v, now)
                .map(|t| Some(t.timestamp()))
                .map_err(|e| HttpError::bad(format!("{name}: {e}")))
        };
        match *name {
            "app" => q.app = Some(v.clone()),
            "category" => q.category = Some(v.clone()),
            "action" => q.action = Some(v.clone()),
            "actor" => q.actor = Some(v.clone()),
            "status" => q.status = Some(v.clone()),
            "classification" => q.classification = Some(v.clone()),
            "q" if v.trim().is_empty() => {}
            "q" => {
                // The parser recurses on parentheses: bound the depth, not the stack.
                if v.bytes().filter(|b| *b == b'(').count() > MAX_QUERY_NESTING {
                    return Err(HttpError::bad(format!(
                        "q: at most {MAX_QUERY_NESTING} parentheses"
                    )));
                }
                list::check_text(v).map_err(|e| HttpError::bad(format!("q: {e}")))?;
                q.text = Some(v.clone());
            }
            "since" => q.since = time(v)?,
            "until" => q.until = time(v)?,
            "page" => page = positive("page", v, MAX_DEPTH)?,
            "per_page" => per_page = positive("per_page", v, MAX_PER_PAGE)?,
            _ => {}
        }
    }
    if page.saturating_mul(per_page) > MAX_DEPTH {
        return Err(HttpError::bad(format!(
            "page × per_page must be at most {MAX_DEPTH}: narrow the query with until= instead"
        )));
    }
    Ok(EventsParams {
        query: q,
        page,
        per_page,
        pairs,
    })
}

/// The link to another page of the same query.
fn page_link(pairs: &[(String, String)], page: usize) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k != "page" && k != "_" && !v.is_empty())
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parts.push(format!("page={page}"));
    format!("/api/events?{}", parts.join("&"))
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn events(shared: &Shared, req: &Request) -> Result<Response, HttpError> {
    let p = parse_events_params(&req.query, shared.clock.now())?;
    let store = shared.store();
    let offset = (p.page - 1) * p.per_page;
    let page = shared
        .index
        .page(&store, &p.query, offset, p.per_page)
        .map_err(|e| {
            // A query the checks above accepted but that cannot run (an action glob too large
            // for the regex automaton, say) is still the client's query; anything else — the
            // index or the segments failing — is the server's side.
            if e.is_user_error() {
                HttpError::bad(e.to_string())
            } else {
                shared.internal(&e.to_string())
            }
        })?;
    let total = page.total;
    let events = shared
        .cache
        .full_json(&store, &page.rows)
        .map_err(|e| shared.internal(&e.to_string()))?;
    let pages = (total as usize).div_ceil(p.per_page);
    let next = (p.page < pages && p.page * p.per_page < MAX_DEPTH)
        .then(|| page_link(&p.pairs, p.page + 1));
    let prev = (p.page > 1).then(|| page_link(&p.pairs, p.page - 1));
    // The events are written as their canonical bytes: field names and order as everywhere.
    let mut body = Vec::with_capacity(events.len() * 700 + 256);
    body.extend_from_slice(b"{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&e[..]);
    }
    let tail = json!({
        "page": p.page,
        "per_page": p.per_page,
        "total": total,
        "pages": pages,
        "next": next,
        "prev": prev,
    });
    let tail = serde_json::to_vec(&tail).unwrap_or_default();
    body.extend_from_slice(b"],");
    // `tail` is an object: splice its members after the array.
    body.extend_from_slice(tail.get(1..).unwrap_or(b"}"));
    body.push(b'\n');
    let mut resp = Response::bytes(200, "application/json; charset=utf-8", body);
    let mut links = Vec::new();
    if let Some(n) = &next {
        links.push(format!("<{n}>; rel=\"next\""));
    }
    if let Some(pv) = &prev {
        links.push(format!("<{pv}>; rel=\"prev\""));
    }
    if !links.is_empty() {
        resp.headers.push(("Link", links.join(", ")));
    }
    resp.headers.push(("X-Total-Count", total.to_string()));
    Ok(resp)
}

fn event(shared: &Shared, id: &str) -> Result<Response, HttpError> {
    let shown: String = id.chars().take(40).collect();
    if id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::bad(format!(
            "event id must be a positive integer, not {shown:?}"
        )));
    }
    let n: u64 = id.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        HttpError::bad(format!(
            "event id must be a positive integer, not {shown:?}"
        ))
    })?;
    let store = shared.store();
    let e = store
        .find_event(n)
        .map_err(|e| shared.internal(&e.to_string()))?
        .ok_or_else(|| HttpError::new(404, format!("event not found: {n}")))?;
    let changes: Vec<Value> = crate::output::changes::changes(&e)
        .into_iter()
        .map(|c| json!({"field": c.label, "before": c.before, "after": c.after}))
        .collect();
    let event: Value = serde_json::from_slice(&e.to_json_bytes()).unwrap_or(Value::Null);
    Ok(Response::json(
        200,
        &json!({"event": event, "changes": changes}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        crate::timefmt::parse_canonical("2026-04-08T20:00:00Z").unwrap()
    }

    #[test]
    fn params() {
        let p = parse_events_params(
            "app=api&category=config&action=set*&actor=alice&status=success&classification=config_change&q=SECRET&since=7d&until=2026-04-08&page=2&per_page=10",
            now(),
        )
        .unwrap();
        assert_eq!(p.query.app.as_deref(), Some("api"));
        assert_eq!(p.query.action.as_deref(), Some("set*"));
        assert_eq!(p.query.text.as_deref(), Some("SECRET"));
        assert_eq!(p.query.since, Some(now().timestamp() - 7 * 86_400));
        assert_eq!((p.page, p.per_page), (2, 10));
        assert_eq!(
            page_link(&p.pairs, 3),
            "/api/events?app=api&category=config&action=set%2A&actor=alice&status=success&classification=config_change&q=SECRET&since=7d&until=2026-04-08&per_page=10&page=3"
        );
        let bad = |q: &str| parse_events_params(q, now()).unwrap_err().status;
        for q in [
            "page=0",
            "page=-1",
            "per_page=0",
            "per_page=1000",
            "per_page=x",
            "since=yesterday",
            "until=2026-13-01",
            "nope=1",
            "app=a&app=b",
            "q=%22unclosed",
            "page=1000&per_page=200",
            "page=99999999999999999999999",
        ] {
            assert_eq!(bad(q), 400, "{q}");
        }
        assert!(parse_events_params("app=&q=", now())
            .unwrap()
            .query
            .app
            .is_none());
    }
}
