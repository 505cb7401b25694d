//! Queries over the store. This first part is the segment scan behind `export`: filters that
//! are decided on a checked line's fixed-place members (`ts`, `app`: the codec reads them at
//! the start of the canonical event object), so a full export never runs a JSON parser.

pub mod list;
pub mod releases;

use std::ops::ControlFlow;

use crate::store::{CheckedLine, Damage, ScanItem, Store, StoreError};

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
    /// Decides on a checked line; `app_json` is [`Filter::app_json`], computed once per scan.
    pub fn matches_line(&self, line: &CheckedLine<'_>, app_json: Option<&[u8]>) -> bool {
        if self.since.is_some() || self.until.is_some() {
            let Some(ts) = line.ts() else {
                return false;
            };
            if self.since.as_deref().is_some_and(|s| ts < s)
                || self.until.as_deref().is_some_and(|u| ts > u)
            {
                return false;
            }
        }
        match app_json {
            None => true,
            Some(want) => line.app_json() == Some(want),
        }
    }

    /// The app filter as the JSON string the `app` member must equal.
    pub fn app_json(&self) -> Option<Vec<u8>> {
        self.app
            .as_ref()
            .map(|a| serde_json::to_vec(a).unwrap_or_default())
    }
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
    let app_json = filter.app_json();
    let mut summary = ScanSummary::default();
    let mut failure: Option<std::io::Error> = None;
    store.scan(&mut |item| {
        match item {
            ScanItem::Line { line, .. } => {
                if filter.matches_line(&line, app_json.as_deref()) {
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
    use crate::store::codec::{check_line, encode_line, ChainHash};

    const EV: &[u8] = br#"{"id":3,"ts":"2026-04-08T20:00:00Z","app":"my\"app","category":"x"}"#;

    fn matches(f: &Filter) -> bool {
        let mut line = Vec::new();
        encode_line(EV, &ChainHash::GENESIS, &mut line);
        let checked = check_line(&line[..line.len() - 1]).unwrap();
        f.matches_line(&checked, f.app_json().as_deref())
    }

    #[test]
    fn line_filters() {
        let app = |a: &str| Filter {
            app: Some(a.into()),
            ..Default::default()
        };
        assert!(matches(&app("my\"app")));
        assert!(!matches(&app("my")));
        assert!(!matches(&app("my\"app2")));
        let f = Filter {
            since: Some("2026-04-08T20:00:00Z".into()),
            until: Some("2026-04-08T20:00:00Z".into()),
            app: None,
        };
        assert!(matches(&f));
        let f = Filter {
            since: Some("2026-04-08T20:00:01Z".into()),
            ..Default::default()
        };
        assert!(!matches(&f));
        let f = Filter {
            until: Some("2026-04-08T19:59:59Z".into()),
            ..Default::default()
        };
        assert!(!matches(&f));
    }
}
