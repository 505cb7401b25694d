//! `GET /api/apps/{app}/releases?limit=N&since=T` (the list, `{"app":…,"releases":[…]}`) and
//! `GET /api/apps/{app}/releases/{vN|N|id:N}` (one release in detail): the same queries as the
//! `releases` and `releases:info` commands. 404 for an unknown app or release, 400 for a bad
//! selector or parameter.

use serde_json::Value;

use super::http::{query_pairs, HttpError, Request, Response};
use super::Shared;
use crate::query::releases::{self, ReleasesError, Selector};

/// Default `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;

/// Answers a path under `/api/apps/` (`rest` is what follows it), once authorized.
pub fn route(shared: &Shared, req: &Request, rest: &str) -> Result<Response, HttpError> {
    let mut parts = rest.splitn(3, '/');
    let (Some(app), Some("releases")) = (parts.next(), parts.next()) else {
        return Err(not_found(rest));
    };
    if app.is_empty() || app.len() > 200 {
        return Err(not_found(rest));
    }
    match parts.next() {
        None | Some("") => list(shared, req, app),
        Some(sel) if !sel.contains('/') => info(shared, req, app, sel),
        Some(_) => Err(not_found(rest)),
    }
}

fn not_found(rest: &str) -> HttpError {
    let shown: String = rest.chars().take(100).collect();
    HttpError::new(404, format!("no such resource: /api/apps/{shown}"))
}

fn fail(shared: &Shared, e: ReleasesError) -> HttpError {
    if e.is_not_found() {
        HttpError::new(404, e.to_string())
    } else if e.is_user_error() {
        HttpError::bad(e.to_string())
    } else {
        shared.internal(&e.to_string())
    }
}

fn list(shared: &Shared, req: &Request, app: &str) -> Result<Response, HttpError> {
    let mut limit = DEFAULT_LIMIT;
    let mut since = None;
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in query_pairs(&req.query)? {
        if k != "_" && seen.contains(&k) {
            return Err(HttpError::bad(format!("parameter {k:?} given twice")));
        }
        seen.push(k.clone());
        match k.as_str() {
            "_" => {}
            _ if v.is_empty() => {}
            "limit" => {
                let err =
                    || HttpError::bad(format!("limit must be an integer from 1 to {MAX_LIMIT}"));
                if v.len() > 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(err)?;
            }
            "since" => {
                since = Some(
                    crate::timefmt::parse_time_arg(&v, shared.clock.now())
                        .map_err(|e| HttpError::bad(format!("since: {e}")))?
                        .timestamp(),
                );
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(HttpError::bad(format!(
                    "unknown parameter {shown:?} (known: limit, since)"
                )));
            }
        }
    }
    let store = shared.store();
    let list =
        releases::list(&store, &shared.data_dir, app, limit, since).map_err(|e| fail(shared, e))?;
    Ok(Response::json(
        200,
        &crate::output::releases::json(app, &list),
    ))
}

fn info(shared: &Shared, req: &Request, app: &str, sel: &str) -> Result<Response, HttpError> {
    if let Some((k, _)) = query_pairs(&req.query)?.into_iter().find(|(k, _)| k != "_") {
        return Err(HttpError::bad(format!("unknown parameter {k:?}")));
    }
    // `id:N` may arrive with its colon encoded.
    let sel = sel.replace("%3A", ":").replace("%3a", ":");
    let selector: Selector = sel.parse().map_err(|e| fail(shared, e))?;
    let store = shared.store();
    let info =
        releases::info(&store, &shared.data_dir, app, selector).map_err(|e| fail(shared, e))?;
    let v = serde_json::to_value(&info).unwrap_or(Value::Null);
    Ok(Response::json(200, &v))
}
