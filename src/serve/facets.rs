//! `GET /api/facets` (the page's filter choices with counts) and `GET /api/activity` (events,
//! deploys and failed deploys per day, for its chart), both counted over the index in one pass
//! ([`crate::query::list::tally`]); also the page's extra scripts.

use serde_json::{json, Value};

use super::api::parse_events_params;
use super::http::{query_pairs, HttpError, Request, Response};
use super::Shared;
use crate::query::list::tally::{self, Tally};
use crate::query::list::ListQuery;

/// Most values listed per facet (the most frequent first); `others` counts the rest.
pub const MAX_FACET_VALUES: usize = 50;
/// Most days `/api/activity` covers.
pub const MAX_DAYS: usize = 366;
/// Days `/api/activity` covers by default.
pub const DEFAULT_DAYS: usize = 30;

const VIEWS_JS: &str = include_str!("views.js");
const APPVIEW_JS: &str = include_str!("appview.js");

/// The page's scripts besides `/app.js`.
pub fn script(path: &str) -> Option<Response> {
    let body = match path {
        "/views.js" => VIEWS_JS,
        "/appview.js" => APPVIEW_JS,
        _ => return None,
    };
    Some(Response::bytes(
        200,
        "text/javascript; charset=utf-8",
        body.into(),
    ))
}

fn run_tally(shared: &Shared, q: &ListQuery) -> Result<Tally, HttpError> {
    tally::tally(&shared.store(), &shared.data_dir, q).map_err(|e| {
        if e.is_user_error() {
            HttpError::bad(e.to_string())
        } else {
            shared.internal(&e.to_string())
        }
    })
}

/// One facet: values by count (descending), then by value.
fn facet(counts: &std::collections::BTreeMap<String, u64>) -> Value {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let others: u64 = v.iter().skip(MAX_FACET_VALUES).map(|(_, n)| **n).sum();
    let values: Vec<Value> = v
        .iter()
        .take(MAX_FACET_VALUES)
        .map(|(k, n)| json!({"value": k, "count": n}))
        .collect();
    json!({"values": values, "others": others})
}

/// `GET /api/facets`: the same parameters as `/api/events` (paging ignored).
pub fn facets(shared: &Shared, req: &Request) -> Result<Response, HttpError> {
    let p = parse_events_params(&req.query, shared.clock.now())?;
    let t = run_tally(shared, &p.query)?;
    let total: u64 = t.categories.values().sum();
    let mut body = json!({"total": total});
    for (name, counts) in [
        ("apps", &t.apps),
        ("categories", &t.categories),
        ("actors", &t.actors),
        ("statuses", &t.statuses),
    ] {
        let f = facet(counts);
        body[name] = f["values"].clone();
        body["others"][name] = f["others"].clone();
    }
    Ok(Response::json(200, &body))
}

/// `GET /api/activity?days=N&app=…`: the last `days` UTC days, today included, oldest first,
/// every day listed (zeros too).
pub fn activity(shared: &Shared, req: &Request) -> Result<Response, HttpError> {
    let mut days = DEFAULT_DAYS;
    let mut q = ListQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in query_pairs(&req.query)? {
        if seen.contains(&k) {
            return Err(HttpError::bad(format!("parameter {k:?} given twice")));
        }
        match k.as_str() {
            "days" if !v.is_empty() => {
                days = v
                    .parse::<usize>()
                    .ok()
                    .filter(|d| (1..=MAX_DAYS).contains(d) && v.len() <= 3)
                    .ok_or_else(|| {
                        HttpError::bad(format!("days must be an integer from 1 to {MAX_DAYS}"))
                    })?
            }
            "app" if !v.is_empty() => q.app = Some(v.clone()),
            "days" | "app" | "_" => {}
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(HttpError::bad(format!(
                    "unknown parameter {shown:?} (known: days, app)"
                )));
            }
        }
        seen.push(k);
    }
    let today = tally::day_of(shared.clock.now().timestamp());
    let first = today - days as i64 + 1;
    q.since = Some(first * 86_400);
    let t = run_tally(shared, &q)?;
    let list: Vec<Value> = (first..=today)
        .map(|d| {
            let c = t.days.get(&d).copied().unwrap_or_default();
            let day = chrono::DateTime::from_timestamp(d * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            json!({"day": day, "events": c.events, "deploys": c.deploys, "failed": c.failed})
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({"days": list, "app": q.app, "today": list.last().map(|d| d["day"].clone())}),
    ))
}
