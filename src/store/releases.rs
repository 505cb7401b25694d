//! Release numbers: every successful deploy of an app is release `vN`, numbered per app from 1,
//! decided by the writer when the event is appended (under the writer lock, like its id) and
//! stored in the event as `meta.release`. So a number never changes and never repeats.
//!
//! A release is a `deploy`/`finish` event with status `success` and an app (a source deploy, a
//! release-only deploy, a rebuild; failed deploys take no number). The writer keeps the last
//! number per app in `releases.json` (derived data: `{"through": <last id considered>, "apps":
//! {"<app>": <last number>}}`). When the file is missing or behind the segments, the counters
//! are rebuilt from the events themselves: every `meta.release`, and every `meta.releases_through`
//! map that prune, retention and restore write into their maintenance events (the numbers of the
//! events they remove or replace), so a number is not given twice even after those events are
//! gone. Numbers continue across an app's destroy and re-create (a `v7` of an app name means one
//! deploy, ever). An event that arrives with a number above its app's last (an export imported
//! again) keeps it; any other number is replaced.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Result, StoreError};
use super::line::{memfind, CheckedLine};
use super::reader::{scan_segment_from, ScanItem};
use super::segment::SegmentFiles;
use crate::layout::Layout;
use crate::record::Event;
use crate::safefs::{self, Ownership};

/// The meta key of a release number.
pub const RELEASE_KEY: &str = "release";
/// The meta key of the per-app numbers a maintenance event preserves.
pub const RELEASES_THROUGH_KEY: &str = "releases_through";

/// What a release event's first members are, right after `app`, in canonical order.
const RELEASE_MEMBERS: &[u8] =
    b",\"category\":\"deploy\",\"action\":\"finish\",\"status\":\"success\",";

/// The last release number of each app, and the last event id they account for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every event up to this id has been considered.
    pub through: u64,
    /// Last number per app.
    pub apps: BTreeMap<String, u64>,
    /// Where the line after `through` starts, if it was in the plain active segment: the
    /// next catch-up reads from there instead of from the start of the segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

/// A place in a plain segment: its first id and a byte offset (the start of a line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The segment's first id.
    pub segment: u64,
    /// The byte offset.
    pub offset: u64,
}

impl Counters {
    /// Reads `releases.json` and brings it up to the segments (events up to `last_id`); rebuilds
    /// it from every segment when it is missing, unreadable or claims more than exists.
    pub fn load(paths: &Layout, segments: &[SegmentFiles], last_id: u64) -> Result<Counters> {
        let stored = safefs::read(&paths.releases)
            .ok()
            .and_then(|b| serde_json::from_slice::<Counters>(&b).ok())
            .filter(|c| c.through <= last_id);
        let mut counters = stored.unwrap_or_default();
        if counters.through < last_id {
            counters.catch_up(segments)?;
            counters.through = last_id;
        }
        Ok(counters)
    }

    /// Considers every event after `through` in `segments`.
    fn catch_up(&mut self, segments: &[SegmentFiles]) -> Result<()> {
        let after = self.through;
        // The segments that can hold ids above `after`: the last one starting at or below it
        // and every later one.
        let start = segments
            .iter()
            .rposition(|s| s.first_id <= after.saturating_add(1))
            .unwrap_or(0);
        let last = segments.len().saturating_sub(1);
        let resume = self.resume.take();
        for (i, seg) in segments.iter().enumerate().skip(start) {
            // Only into the same plain segment, and never past its end (a file replaced by
            // hand): then from its start.
            let len = seg
                .plain
                .as_deref()
                .and_then(|p| std::fs::symlink_metadata(p).ok())
                .map_or(0, |m| m.len());
            let from = resume
                .filter(|r| r.segment == seg.first_id && seg.is_plain() && r.offset <= len)
                .map_or(0, |r| r.offset);
            let _flow = scan_segment_from(seg, i == last && seg.is_plain(), from, &mut |item| {
                if let ScanItem::Line { line, .. } = item {
                    if line.id > after {
                        self.consider(&line);
                    }
                }
                ControlFlow::Continue(())
            })?;
        }
        Ok(())
    }

    /// Takes the numbers a stored line carries into account.
    fn consider(&mut self, line: &CheckedLine<'_>) {
        let is_release = release_app_json(line.event_open).is_some();
        let keeps_numbers = line.category() == Some("maintenance")
            && memfind(line.event_open, b"\"releases_through\":").is_some();
        if !is_release && !keeps_numbers {
            return;
        }
        let Ok(ev) = serde_json::from_slice::<Event>(&line.event_json()) else {
            return;
        };
        if let (Some(app), Some(n)) = (&ev.app, ev.meta.get(RELEASE_KEY).and_then(Value::as_u64)) {
            self.raise(app, n);
        }
        if let Some(Value::Object(m)) = ev.meta.get(RELEASES_THROUGH_KEY) {
            for (app, n) in m {
                if let Some(n) = n.as_u64() {
                    self.raise(app, n);
                }
            }
        }
    }

    fn raise(&mut self, app: &str, n: u64) {
        let v = self.apps.entry(app.to_string()).or_insert(0);
        *v = (*v).max(n);
    }

    /// The map a maintenance event keeps (`meta.releases_through`).
    pub fn to_meta(&self) -> Value {
        Value::Object(
            self.apps
                .iter()
                .map(|(a, n)| (a.clone(), Value::from(*n)))
                .collect(),
        )
    }

    /// Writes `releases.json` (atomically; not fsynced: it is rebuilt from the events).
    pub fn save(&self, paths: &Layout, owner: &Ownership) -> Result<()> {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        safefs::write_replace(&paths.releases, &bytes, owner, false)?;
        Ok(())
    }
}

/// The `app` member's JSON if `event_open` (canonical event JSON, closing `}` optional) is a
/// release: `deploy`/`finish`/`success` right after a non-null app, at their fixed places.
fn release_app_json(event_open: &[u8]) -> Option<&[u8]> {
    let start = memfind(event_open, b",\"app\":")? + 7;
    let rest = &event_open[start..];
    let end = memfind(rest, b",\"category\":\"")?;
    let app = &rest[..end];
    (app != b"null" && rest[end..].starts_with(RELEASE_MEMBERS)).then_some(app)
}

/// Numbers the release events of one append, in order. Loads the counters at the first release
/// it meets (an append without a release never reads `releases.json`).
pub struct Numbering<'a> {
    paths: &'a Layout,
    segments: &'a [SegmentFiles],
    last_id: u64,
    counters: Option<Counters>,
}

impl<'a> Numbering<'a> {
    /// For an append after the events in `segments` (the last of which has id `last_id`).
    pub fn new(paths: &'a Layout, segments: &'a [SegmentFiles], last_id: u64) -> Numbering<'a> {
        Numbering {
            paths,
            segments,
            last_id,
            counters: None,
        }
    }

    /// The line to write for `json` (canonical event JSON with the id placeholder): itself, or,
    /// for a release, the event with `meta.release` set to the app's next number.
    pub fn stamp(&mut self, json: &[u8]) -> Result<Option<Vec<u8>>> {
        if release_app_json(json).is_none() {
            return Ok(None);
        }
        let mut ev: Event = serde_json::from_slice(json).map_err(|e| StoreError::Segment {
            segment: "append".into(),
            detail: format!("a release event does not parse: {e}"),
        })?;
        let Some(app) = ev.app.clone() else {
            return Ok(None);
        };
        if self.counters.is_none() {
            self.counters = Some(Counters::load(self.paths, self.segments, self.last_id)?);
        }
        let counters = self.counters.get_or_insert_with(Counters::default);
        let last = counters.apps.get(&app).copied().unwrap_or(0);
        // An event that brings a number above the app's last one keeps it (an export imported
        // again); any other gets the next.
        if let Some(given) = ev.meta.get(RELEASE_KEY).and_then(Value::as_u64) {
            if given > last {
                counters.apps.insert(app, given);
                return Ok(None);
            }
        }
        counters.apps.insert(app, last + 1);
        ev.meta.insert(RELEASE_KEY.into(), Value::from(last + 1));
        Ok(Some(ev.to_json_bytes()))
    }

    /// After the append is durable: saves the counters if a release was numbered (`through` is
    /// the last id written; `resume`, the end of the active segment after it).
    pub fn finish(self, through: u64, resume: Option<Resume>, owner: &Ownership) -> Result<()> {
        match self.counters {
            Some(mut c) => {
                c.through = through;
                c.resume = resume;
                c.save(self.paths, owner)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_deploy_finishes_of_an_app_are_releases() {
        let ev = |app: &str, cat: &str, action: &str, status: &str| {
            format!(
                r#"{{"id":0,"ts":"2026-04-08T20:00:00Z","app":{app},"category":"{cat}","action":"{action}","status":"{status}","classification":null}}"#
            )
        };
        assert!(release_app_json(ev("\"a\"", "deploy", "finish", "success").as_bytes()).is_some());
        for (app, cat, action, status) in [
            ("null", "deploy", "finish", "success"),
            ("\"a\"", "deploy", "finish", "failed"),
            ("\"a\"", "deploy", "receive", "success"),
            ("\"a\"", "config", "finish", "success"),
        ] {
            assert!(
                release_app_json(ev(app, cat, action, status).as_bytes()).is_none(),
                "{app} {cat} {action} {status}"
            );
        }
        // The members must be the event's own, not a look-alike inside `meta`.
        let nested = r#"{"id":0,"ts":"2026-04-08T20:00:00Z","app":"a","category":"config","action":"set","status":"success","meta":{"x":1,"category":"deploy","action":"finish","status":"success","y":2}}"#;
        assert!(release_app_json(nested.as_bytes()).is_none());
    }
}
