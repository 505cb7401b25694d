//! Queries over the store. This first part is the segment scan behind `export`: filters that
//! are decided on the raw line bytes (id, `ts`, `app` sit at fixed places at the start of the
//! canonical event object), so a full export never runs a JSON parser.

pub mod list;

use std::ops::ControlFlow;

use crate::store::{Damage, ScanItem, Store, StoreError};

/// Filters shared by export and the list commands.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact app name.
    pub app: Option<String>,
    /// Canonical timestamp; events with `ts >= since`.
    pub since: Option<String>,
    /// Canonical timestamp; events with `ts <= until`.
    pub until: Option<String>,
}

impl Filter {
    /// Decides on the canonical event bytes (without the closing `}`).
    pub fn matches_raw(&self, event_open: &[u8], app_needle: Option<&[u8]>) -> bool {
        if self.since.is_some() || self.until.is_some() {
            let Some(ts) = raw_ts(event_open) else {
                return false;
            };
            if self.since.as_deref().is_some_and(|s| ts < s)
                || self.until.as_deref().is_some_and(|u| ts > u)
            {
                return false;
            }
        }
        match app_needle {
            None => true,
            Some(needle) => crate::store::line::memfind(event_open, b",\"app\":")
                .is_some_and(|at| event_open[at + 7..].starts_with(needle)),
        }
    }

    /// The bytes `"app":` must be followed by for the app filter: the JSON string and a comma.
    pub fn app_needle(&self) -> Option<Vec<u8>> {
        self.app.as_ref().map(|a| {
            let mut n = serde_json::to_vec(a).unwrap_or_default();
            n.push(b',');
            n
        })
    }
}

fn raw_ts(event_open: &[u8]) -> Option<&str> {
    let at = crate::store::line::memfind(event_open, b",\"ts\":\"")? + 7;
    std::str::from_utf8(event_open.get(at..at + crate::timefmt::CANONICAL_LEN)?).ok()
}

/// What a scan met besides matching events.
#[derive(Debug, Default)]
pub struct ScanSummary {
    /// Events passed to the sink.
    pub matched: u64,
    /// Damage met (a torn tail is not included: it is normal after a crash).
    pub damage: Vec<Damage>,
}

/// Error from a scan: the store, or the sink (e.g. a closed pipe).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// Streams every matching event, oldest first (log order), as canonical JSON without the
/// closing `}` (the sink appends it), so the bytes are copied, not re-encoded.
pub fn scan_events(
    store: &Store,
    filter: &Filter,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<ScanSummary, ScanError> {
    let needle = filter.app_needle();
    let mut summary = ScanSummary::default();
    let mut failure: Option<std::io::Error> = None;
    store.scan(&mut |item| {
        match item {
            ScanItem::Line { line, .. } => {
                if filter.matches_raw(line.event_open, needle.as_deref()) {
                    if let Err(e) = sink(line.event_open) {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                    summary.matched += 1;
                }
            }
            ScanItem::Damage(d) if d.is_torn_tail() => {}
            ScanItem::Damage(d) => summary.damage.push(d),
        }
        ControlFlow::Continue(())
    })?;
    match failure {
        Some(e) => Err(ScanError::Output(e)),
        None => Ok(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &[u8] = br#"{"id":3,"ts":"2026-04-08T20:00:00Z","app":"my\"app","category":"x""#;

    #[test]
    fn raw_filters() {
        let f = Filter {
            app: Some("my\"app".into()),
            ..Default::default()
        };
        assert!(f.matches_raw(EV, f.app_needle().as_deref()));
        let f = Filter {
            app: Some("my".into()),
            ..Default::default()
        };
        assert!(!f.matches_raw(EV, f.app_needle().as_deref()));
        let f = Filter {
            since: Some("2026-04-08T20:00:00Z".into()),
            until: Some("2026-04-08T20:00:00Z".into()),
            app: None,
        };
        assert!(f.matches_raw(EV, None));
        let f = Filter {
            since: Some("2026-04-08T20:00:01Z".into()),
            ..Default::default()
        };
        assert!(!f.matches_raw(EV, None));
        let f = Filter {
            until: Some("2026-04-08T19:59:59Z".into()),
            ..Default::default()
        };
        assert!(!f.matches_raw(EV, None));
    }
}
