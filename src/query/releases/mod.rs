//! The releases of one app (issue 17), from the trail: its successful deploys (numbered at
//! capture, `meta.release`) and its failed ones, newest first, each with a one-line description
//! in Heroku's spirit; and one release in detail (`info`).
//!
//! Everything comes from the index's deploy finishes of the app (app + `deploy` + `finish`):
//! the rows carry the number, revision and image, enough to find rollbacks without reading
//! whole events; only the listed releases are read whole (for their descriptions).

mod describe;
mod info;
mod window;

use std::collections::HashMap;

use serde::Serialize;

use crate::index::IndexError;
use crate::query::list::{self, ListQuery, Row};
use crate::record::Event;
use crate::store::Store;

pub use describe::{describe, short};
pub use info::{info, Redeploy, ReleaseInfo};
use window::newest_annotated;

/// Every way a releases query fails.
#[derive(Debug, thiserror::Error)]
pub enum ReleasesError {
    /// The index or the segments failed (or the query was invalid).
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The app has no deploys in the trail.
    #[error("no releases of app {0:?} in the audit trail")]
    NoReleases(String),
    /// No release matches the selector.
    #[error("app {app:?} has no release {selector}")]
    UnknownRelease {
        /// The app.
        app: String,
        /// The selector as given.
        selector: String,
    },
    /// The selector is not `vN`, `N` or `id:N`.
    #[error("invalid release {0:?}: use vN, N (a release number) or id:N (an event id)")]
    BadSelector(String),
}

impl ReleasesError {
    /// Nothing to show (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ReleasesError::NoReleases(_) | ReleasesError::UnknownRelease { .. }
        )
    }

    /// The caller's mistake (HTTP 400, a usage error).
    pub fn is_user_error(&self) -> bool {
        match self {
            ReleasesError::BadSelector(_) => true,
            ReleasesError::Index(e) => e.is_user_error(),
            _ => false,
        }
    }
}

/// Which release: its number or its event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// `vN` or `N`.
    Version(u64),
    /// `id:N`.
    Id(u64),
}

impl std::str::FromStr for Selector {
    type Err = ReleasesError;
    fn from_str(s: &str) -> Result<Selector, ReleasesError> {
        let bad = || ReleasesError::BadSelector(s.chars().take(40).collect());
        let number = |t: &str| {
            (!t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u64>().ok())
                .flatten()
                .filter(|n| *n > 0)
                .ok_or_else(bad)
        };
        if let Some(id) = s.strip_prefix("id:") {
            return Ok(Selector::Id(number(id)?));
        }
        let n = s.strip_prefix('v').unwrap_or(s);
        Ok(Selector::Version(number(n)?))
    }
}

/// One line of the list: a release (with its number) or a failed deploy (without).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    /// The release number; `None` for a failed deploy.
    pub version: Option<u64>,
    /// The deploy finish event's id.
    pub id: u64,
    /// Its time (canonical).
    pub ts: String,
    /// One line in Heroku's spirit.
    pub description: String,
    /// Actor label.
    pub actor: String,
    /// `success` or `failed`.
    pub status: String,
    /// The app's newest release.
    pub current: bool,
    /// The earliest release whose code this release deployed again.
    pub rollback_to: Option<u64>,
    /// Revision.
    pub rev: Option<String>,
    /// Image tag.
    pub image_tag: Option<String>,
    /// Source type.
    pub source_type: Option<String>,
    /// Classification.
    pub classification: Option<String>,
}

/// A deploy finish row and what the app's history says of it.
#[derive(Debug, Clone)]
struct Annotated {
    row: Row,
    rollback_to: Option<u64>,
    current: bool,
}

/// Every deploy finish of the app (the index and the tail), newest first.
fn deploy_rows(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
) -> Result<Vec<Row>, IndexError> {
    let q = ListQuery {
        app: Some(app.to_string()),
        category: Some("deploy".into()),
        action: Some("finish".into()),
        ..Default::default()
    };
    list::run_lean(store, data_dir, &q)
}

fn is_release(r: &Row) -> bool {
    r.status == "success"
}

/// The source image of every image deploy among the rows (by id): the index has the tag Dokku
/// gave the built image (`latest`), the source image is in the command, read whole (image
/// deploys are few).
fn source_images(store: &Store, rows: &[Row]) -> Result<HashMap<u64, String>, IndexError> {
    let images: Vec<Row> = rows
        .iter()
        .filter(|r| is_release(r) && r.source_type.as_deref() == Some("docker-image"))
        .cloned()
        .collect();
    if images.is_empty() {
        return Ok(Default::default());
    }
    Ok(list::full_events(store, &images)?
        .iter()
        .filter_map(|e| describe::source_image(e).map(|i| (e.id, i)))
        .collect())
}

/// Rollbacks and the current release, oldest to newest over the rows (given newest first);
/// `images` the source images of image deploys; `firsts` the earliest release of each code key
/// before the rows (empty when the rows are the whole history).
fn annotate(
    rows: Vec<Row>,
    images: &HashMap<u64, String>,
    firsts: &HashMap<String, u64>,
) -> Vec<Annotated> {
    let newest = rows.iter().filter_map(|r| r.release).max();
    let mut first_of: HashMap<String, u64> = firsts.clone();
    // The code in effect: a release without a revision (a restart) keeps the one before.
    let mut in_effect: Option<String> = None;
    let mut out: Vec<Annotated> = rows
        .into_iter()
        .rev()
        .map(|row| {
            let mut rollback_to = None;
            if is_release(&row) {
                let image_deploy = row.source_type.as_deref() == Some("docker-image");
                let image = images
                    .get(&row.id)
                    .map(String::as_str)
                    .or(row.image_tag.as_deref().filter(|t| *t != "latest"));
                let key = describe::code_key(row.rev.as_deref(), image, image_deploy);
                if let (Some(k), Some(n)) = (&key, row.release) {
                    if in_effect.as_ref() != Some(k) {
                        rollback_to = first_of.get(k).copied().filter(|v| *v < n);
                    }
                    first_of
                        .entry(k.clone())
                        .and_modify(|f| *f = (*f).min(n))
                        .or_insert(n);
                }
                if key.is_some() {
                    in_effect = key;
                }
            }
            Annotated {
                current: row.release.is_some() && row.release == newest,
                rollback_to,
                row,
            }
        })
        .collect();
    out.reverse();
    out
}

fn status_of(e: &Event) -> String {
    if e.status == "success" {
        "success"
    } else {
        "failed"
    }
    .to_string()
}

/// What the events of the same `dokku` command (same correlation id) add to deploys that do not
/// say what caused them: the command of its `user-auth` record (`ps:scale` deploys carry none),
/// the old name of an `apps:rename` (kept as `meta.renamed_from`, for the description only).
fn enrich(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    events: &mut [Event],
) -> Result<(), IndexError> {
    let caused_by_rename = |e: &Event| {
        e.meta.get("caused_by").and_then(serde_json::Value::as_str) == Some("apps:rename")
    };
    let needy: Vec<i64> = events
        .iter()
        .filter(|e| e.status == "success" && e.correlation_id.is_some())
        // A source deploy is described by its revision or image: only a release-only deploy
        // needs its command.
        .filter(|e| {
            caused_by_rename(e)
                || (!e.meta.contains_key("triggered_by_command")
                    && e.classification.as_deref() == Some("release_only"))
        })
        .map(|e| crate::index::epoch(&e.ts))
        .collect();
    let (Some(lo), Some(hi)) = (needy.iter().min(), needy.iter().max()) else {
        return Ok(());
    };
    let mut related = Vec::new();
    for (category, action) in [("command", "invoke"), ("app", "rename")] {
        let q = ListQuery {
            app: Some(app.to_string()),
            category: Some(category.into()),
            action: Some(action.into()),
            since: Some(lo - 3_600),
            until: Some(*hi),
            limit: 200,
            ..Default::default()
        };
        let (rows, _) = list::run(store, data_dir, &q)?;
        related.extend(list::full_events(store, &rows)?);
    }
    for e in events.iter_mut() {
        let Some(c) = e.correlation_id.clone() else {
            continue;
        };
        for r in related
            .iter()
            .filter(|r| r.correlation_id.as_ref() == Some(&c))
        {
            let text = |k: &str| {
                r.meta
                    .get(k)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            if r.category == "app" && caused_by_rename(e) {
                if let Some(old) = text("old_app") {
                    e.meta.insert("renamed_from".into(), old.into());
                }
            } else if r.category == "command" && !e.meta.contains_key("triggered_by_command") {
                if let (Some(cmd), Some(sub)) = (text("command"), text("subcommand")) {
                    e.meta.insert("triggered_by_command".into(), cmd.into());
                    e.meta.insert("triggered_by_subcommand".into(), sub.into());
                }
            }
        }
    }
    Ok(())
}

fn release_of(a: &Annotated, e: &Event) -> Release {
    Release {
        version: a.row.release.filter(|_| e.status == "success"),
        id: e.id,
        ts: e.ts.clone(),
        description: describe(e, a.rollback_to),
        actor: e.actor_label.clone(),
        status: status_of(e),
        current: a.current,
        rollback_to: a.rollback_to,
        rev: e.rev.clone(),
        image_tag: e.image_tag.clone(),
        source_type: e.source_type.clone(),
        classification: e.classification.clone(),
    }
}

/// Rows read whole, in the same order (a row whose event cannot be read is left out).
fn with_events(store: &Store, rows: Vec<Annotated>) -> Result<Vec<(Annotated, Event)>, IndexError> {
    let plain: Vec<Row> = rows.iter().map(|a| a.row.clone()).collect();
    let events = list::full_events(store, &plain)?;
    let by_id: std::collections::HashMap<u64, Event> =
        events.into_iter().map(|e| (e.id, e)).collect();
    Ok(rows
        .into_iter()
        .filter_map(|a| by_id.get(&a.row.id).cloned().map(|e| (a, e)))
        .collect())
}

/// The app's releases and failed deploys, newest first: at most `limit`, at or after `since`
/// (epoch seconds). An app without any deploy is [`ReleasesError::NoReleases`].
pub fn list(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    limit: usize,
    since: Option<i64>,
) -> Result<Vec<Release>, ReleasesError> {
    // `from_index`: the rows carry every column (lean rows of the whole history do not).
    let (annotated, from_index) = match newest_annotated(store, data_dir, app, limit)? {
        Some(a) => (a, true),
        None => {
            let rows = deploy_rows(store, data_dir, app)?;
            let images = source_images(store, &rows)?;
            (annotate(rows, &images, &HashMap::new()), false)
        }
    };
    if annotated.is_empty() {
        return Err(ReleasesError::NoReleases(app.to_string()));
    }
    let shown: Vec<Annotated> = annotated
        .into_iter()
        .filter(|a| since.is_none_or(|s| a.row.ts >= s))
        .take(limit)
        .collect();
    // Only the rows whose description needs more than the index has are read whole.
    let whole: Vec<Annotated> = shown
        .iter()
        .filter(|a| !from_index || window::needs_event(a))
        .cloned()
        .collect();
    let (_, mut events): (Vec<Annotated>, Vec<Event>) =
        with_events(store, whole)?.into_iter().unzip();
    enrich(store, data_dir, app, &mut events)?;
    let mut by_id: HashMap<u64, Event> = events.into_iter().map(|e| (e.id, e)).collect();
    Ok(shown
        .iter()
        .filter_map(|a| match by_id.remove(&a.row.id) {
            Some(e) => Some(release_of(a, &e)),
            None if from_index && !window::needs_event(a) => {
                Some(release_of(a, &window::event_of_row(&a.row)))
            }
            // Not readable: left out, as before.
            None => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, release: Option<u64>, rev: &str) -> Row {
        Row {
            id,
            ts: id as i64,
            status: if release.is_some() {
                "success"
            } else {
                "failed"
            }
            .into(),
            rev: Some(rev.into()),
            release,
            ..Default::default()
        }
    }

    #[test]
    fn rollbacks_and_the_current_release() {
        // Oldest first here; `annotate` takes them newest first.
        let rows = vec![
            row(1, Some(1), "a"),
            row(2, Some(2), "b"),
            row(3, Some(3), "b"), // a restart: same code as the one before, not a rollback
            row(4, None, "c"),    // failed
            row(5, Some(4), "a"), // back to v1
            row(6, Some(5), "a"), // restart after the rollback
            row(7, Some(6), "b"), // back to v2 (the earliest with b)
        ];
        let out = annotate(
            rows.into_iter().rev().collect(),
            &Default::default(),
            &Default::default(),
        );
        let got: Vec<(u64, Option<u64>, bool)> = out
            .iter()
            .rev()
            .map(|a| (a.row.id, a.rollback_to, a.current))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, None, false),
                (2, None, false),
                (3, None, false),
                (4, None, false),
                (5, Some(1), false),
                (6, None, false),
                (7, Some(2), true),
            ]
        );
    }

    #[test]
    fn selectors() {
        assert_eq!("v12".parse::<Selector>().unwrap(), Selector::Version(12));
        assert_eq!("12".parse::<Selector>().unwrap(), Selector::Version(12));
        assert_eq!("id:345".parse::<Selector>().unwrap(), Selector::Id(345));
        for bad in [
            "",
            "v",
            "v0",
            "x1",
            "id:",
            "id:x",
            "-1",
            "v1.2",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }
}
